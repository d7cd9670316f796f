// Package etcdtest runs a real etcd server for tests: Debian's etcd-server
// binary (/usr/bin/etcd, or $SCANAGENT_ETCD), on loopback ports, in a
// temporary directory. Without the binary the test is skipped, unless
// CI=true, where it fails: CI installs etcd-server (scripts/ci-deps.sh).
package etcdtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running etcd.
type Server struct {
	// Endpoint is the client URL (http://127.0.0.1:port).
	Endpoint string
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{}
}

// Binary returns the etcd binary, or skips (fails with CI=true) t.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("SCANAGENT_ETCD"), "/usr/bin/etcd"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	msg := "etcd not installed (apt-get install etcd-server, or set SCANAGENT_ETCD): the test needs a real etcd"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs a one-member etcd with fast timings; it is killed when the
// test ends (its log is printed if the test failed).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	s := &Server{Endpoint: client, logPath: filepath.Join(dir, "etcd.log"), done: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer, "--initial-cluster-state", "new",
		"--heartbeat-interval", "10", "--election-timeout", "100")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(s.logPath)
			t.Logf("etcd log:\n%s", tail(string(b), 40))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(client + "/health")
		if err == nil {
			var b [256]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if strings.Contains(string(b[:n]), `"true"`) {
				return s
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("etcd exited at start:\n%s", tail(string(b), 40))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy within 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops etcd at once (SIGKILL) and waits for it.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
