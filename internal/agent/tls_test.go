package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"scanagent/internal/testcert"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
)

type syncWriter struct {
	ch chan string
}

func (w syncWriter) Write(p []byte) (int, error) {
	select {
	case w.ch <- string(p):
	default:
	}
	return len(p), nil
}

func TestLocalAPIOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath, pool := testcert.Write(t, dir, "api", time.Time{})
	cfg, err := config.Parse([]byte(fmt.Sprintf("[agent]\ndata_dir = %q\n[platform]\nmode = \"off\"\n[his.api]\nlisten = \"127.0.0.1:0\"\ntls_cert = %q\ntls_key = %q\n", dir, certPath, keyPath)),
		"tls.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := syncWriter{ch: make(chan string, 100)}
	a, err := build(cfg, zerolog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	var addr string
	for addr == "" {
		select {
		case line := <-logs.ch:
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "listening" && m["tls"] == true {
				addr, _ = m["addr"].(string)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no TLS listener")
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		// Go's server answers plain HTTP on a TLS port with a 400; any
		// answer is fine as long as it is not the API.
		r, _ := http.Get("http://" + addr + "/v1/status")
		if r != nil && r.StatusCode == 200 {
			t.Fatal("plain HTTP served the API on the TLS port")
		}
	}
	cancel()
	if err := <-done; err != nil && !strings.Contains(err.Error(), "context") {
		t.Fatal(err)
	}
}
