//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"scanagent/test/fakehis/server"
	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// The identity goes to the HIS before the usage report is committed (the
// patient does not wait for the disk). An agent killed exactly between the
// two — the HIS has the identity, the outbox does not have the report yet —
// still reports that visit, once, after it restarts: the report was in the
// outbox's journal before the hand-off. The kill is deterministic: a build
// with -tags faultinject exits at that point.
func TestReportSurvivesKillBetweenHandoffAndCommit(t *testing.T) {
	faulty := filepath.Join(t.TempDir(), "scanagent-faultinject")
	if out, err := exec.Command("go", "build", "-tags", "faultinject", "-o", faulty, "scanagent/cmd/scanagent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	fakeHIS := server.New(server.Options{Secret: "push-secret-0123456789"})
	hisSrv := httptest.NewServer(fakeHIS.Handler())
	defer hisSrv.Close()
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	s.his = fmt.Sprintf("[his.api]\nenabled = false\n[his.push]\nenabled = true\nurl = \"%s/push\"\nsecret = \"push-secret-0123456789\"", hisSrv.URL)
	cfgPath := s.config("baud = 115200", "")
	card := platform.BuiltinCards()[1].QRCodeText

	a := &agent{t: t, events: make(chan event, 4096), done: make(chan struct{}), cmd: &exec.Cmd{Env: append(os.Environ(), "SCANAGENT_FAULT=exit-after-handoff")}}
	startBinary(t, a, faulty, cfgPath)
	a.waitFor("scanner connected", 10*time.Second)
	s.dev.Type([]byte(card))
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the faulty agent did not exit after the hand-off")
	}
	var ee *exec.ExitError
	if !errors.As(a.err, &ee) || ee.ExitCode() != 86 {
		t.Fatalf("agent exit %v, want the fault's 86", a.err)
	}
	pushes := fakeHIS.Stats().Pushes
	if len(pushes) != 1 || pushes[0].Identity == nil {
		t.Fatalf("the HIS got %d pushes, want the identity once", len(pushes))
	}
	if n := len(s.platform.Stats().Reports); n != 0 {
		t.Fatalf("platform has %d reports before the restart", n)
	}

	b := s.start(cfgPath) // the normal build, same files
	waitUntil(t, "the report of the handed-over scan", func() bool { return len(s.platform.Stats().Reports) >= 1 })
	time.Sleep(500 * time.Millisecond) // a second one would arrive now
	st := s.platform.Stats()
	if len(st.Reports) != 1 || st.Usage[card] != 1 {
		t.Fatalf("platform has %d reports, %d for the card; want exactly 1", len(st.Reports), st.Usage[card])
	}
	b.stop(syscall.SIGTERM, 10*time.Second)
}
