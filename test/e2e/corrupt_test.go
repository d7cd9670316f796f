//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"scanagent/test/fakeplatform/platform"
	"scanagent/test/fakescanner/device"
)

// TestCorruptOutbox damages the outbox of a stopped agent in each way a
// disk or a power cut does (a record page overwritten, the file cut
// short, a zero-byte file) and starts the real binary on it: the agent
// starts, moves the file aside, says how many records it salvaged, serves
// scans, and delivers every salvaged report exactly once, including those
// whose last attempt had an unknown outcome (they keep their requestId;
// the fake platform rejects a reused one with 10054).
func TestCorruptOutbox(t *testing.T) {
	const n = 150
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		// some: records must be salvaged (else none can be).
		some bool
	}{
		{"record page", smashRecordPage, true},
		{"truncated", cutLastPage, true},
		{"zero bytes", func(t *testing.T, path string) { os.Truncate(path, 0) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
			s.logLevel = "info"
			s.his = "[queue]\nencrypt = false # the test finds its records in the raw pages\nretry_min = \"50ms\"\nretry_max = \"300ms\"\n[his.api]\nlisten = \"127.0.0.1:0\""
			cfg := s.config("baud = 115200", "")
			path := filepath.Join(s.dir, "outbox.db")

			// The platform processes reports but the answers are lost: the
			// first attempts end unknown, then the breaker holds the rest.
			s.platform.SetFaults(platform.Faults{APIs: []string{"reportHISData"}, Reset: true, AfterProcess: true})
			a := s.start(cfg)
			addr := a.apiAddr()
			for i := 0; i < n; i++ {
				if code := queueUsage(t, addr, fmt.Sprintf("dmg-%03d", i)); code != http.StatusAccepted {
					t.Fatalf("report %d: HTTP %d", i, code)
				}
			}
			a.stop(syscall.SIGTERM, 10*time.Second)
			before := reportsByDepartment(s.platform)
			tc.damage(t, path)

			s.platform.SetFaults(platform.Faults{})
			a = s.start(cfg)
			dmg := firstLogged(a, "outbox damaged: moved aside, readable records salvaged into a fresh file")
			salvaged := int(dmg["salvaged"].(float64))
			aside := dmg.str("movedTo")
			if !strings.HasPrefix(aside, path+".corrupt-") || (salvaged > 0) != tc.some || salvaged > n {
				t.Fatalf("salvage: %v", dmg)
			}
			if _, err := os.Stat(aside); err != nil {
				t.Fatalf("damaged file not kept: %v", err)
			}
			if opened := firstLogged(a, "outbox open"); int(opened["pending"].(float64)) != salvaged {
				t.Fatalf("the outbox opened with %v records, %d salvaged", opened["pending"], salvaged)
			}
			t.Logf("%d of %d records salvaged (%v lost); %d had reached the platform", salvaged, n, dmg["lost"], len(before))

			// It serves scans.
			s.dev.Type([]byte("432901198810228888"))
			if e := a.waitFor("scan", 5*time.Second); e.str("kind") != "id_card" || e.str("error") != "" {
				t.Fatalf("scan after salvage: %v", e)
			}
			s.dev.Type([]byte(platform.BuiltinCards()[0].QRCodeText))
			if e := a.waitFor("scan", 5*time.Second); e["verified"] != true {
				t.Fatalf("scan after salvage: %v", e)
			}
			// The status page shows the alarm; the backlog drains.
			addr = a.apiAddr()
			if st := statusBody(t, addr); !strings.Contains(st, aside) {
				t.Fatalf("/v1/status does not name the damaged file %s:\n%s", aside, st)
			}
			waitUntil(t, "the salvaged backlog delivered", func() bool { return outboxDepth(t, addr) == 0 })
			after := reportsByDepartment(s.platform)
			for dep, c := range after {
				if c > 1 {
					t.Fatalf("report %s counted %d times", dep, c)
				}
			}
			if len(after) < salvaged {
				t.Fatalf("%d salvaged, %d reports on the platform (%d before)", salvaged, len(after), len(before))
			}
			// With every record salvaged, those sent before with an unknown
			// outcome were replayed with their requestId, and the platform
			// said 10054, not counting them again.
			if dups := s.platform.Stats().Duplicates; salvaged == n && dups < len(before) {
				t.Fatalf("%d reports had reached the platform, %d replays answered 10054", len(before), dups)
			}
		})
	}
}

// TestDiskFullOutbox runs the agent with its data on a 2 MiB tmpfs (root
// only; skipped where mounting is not permitted). While the platform
// rate-limits reports (delivery pauses, so it frees nothing), reports are
// queued until the disk is full and then refused, at once. The agent is
// restarted on the full disk (a filler file takes the last bytes) with
// the platform back: it starts, serves scans and delivers the whole
// backlog while the disk stays full; once the backlog is gone and the
// filler removed, reports are accepted again.
func TestDiskFullOutbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	s := newSetup(t, device.Options{Baud: 115200, Suffix: "\r"})
	data := filepath.Join(s.dir, "data")
	os.Mkdir(data, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", data).Run() })
	s.logLevel = "info"
	s.his = fmt.Sprintf("[queue]\npath = %q\nretry_min = \"50ms\"\nretry_max = \"300ms\"\n[his.api]\nlisten = \"127.0.0.1:0\"", filepath.Join(data, "outbox.db"))
	cfg := s.config("baud = 115200", "")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte("[platform]\n"), []byte("[platform]\nrate_limit_pause = \"5s\"\n"), 1), 0o600)
	s.platform.SetFaults(platform.Faults{APIs: []string{"reportHISData"}, ResultCode: 21007})
	a := s.start(cfg)
	addr := a.apiAddr()
	accepted := 0
	for ; ; accepted++ {
		if accepted == 60000 {
			t.Fatal("the disk never filled up")
		}
		if code := queueUsage(t, addr, fmt.Sprintf("full-%05d-%s", accepted, strings.Repeat("科", 50))); code != http.StatusAccepted {
			t.Logf("refused after %d reports: HTTP %d", accepted, code)
			break
		}
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		if code := queueUsage(t, addr, "refused"); code == http.StatusAccepted {
			t.Fatalf("report %d on a full disk accepted", i)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("20 refusals took %v", d)
	}
	a.stop(syscall.SIGTERM, 10*time.Second)

	filler, _ := os.Create(filepath.Join(data, "filler"))
	io.Copy(filler, io.LimitReader(zeros{}, 4<<20)) // until the disk is full
	filler.Close()
	s.platform.SetFaults(platform.Faults{})
	a = s.start(cfg)
	addr = a.apiAddr()
	s.dev.Type([]byte("432901198810228888"))
	if e := a.waitFor("scan", 5*time.Second); e.str("kind") != "id_card" {
		t.Fatalf("scan on a full disk: %v", e)
	}
	waitUntil(t, "the backlog delivered while the disk is full", func() bool { return outboxDepth(t, addr) == 0 })
	if counts := reportsByDepartment(s.platform); len(counts) != accepted {
		t.Fatalf("%d reports accepted, %d delivered", accepted, len(counts))
	}
	os.Remove(filepath.Join(data, "filler"))
	waitUntil(t, "reports accepted again", func() bool { return queueUsage(t, addr, "after") == http.StatusAccepted })
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// firstLogged returns the first event a logged with message msg.
func firstLogged(a *agent, msg string) event {
	a.t.Helper()
	for _, line := range strings.Split(a.log(), "\n") {
		var e event
		if json.Unmarshal([]byte(line), &e) == nil && e.str("message") == msg {
			return e
		}
	}
	a.t.Fatalf("the agent did not log %q", msg)
	return nil
}

func queueUsage(t *testing.T, addr, department string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"qrCodeText": platform.BuiltinCards()[0].QRCodeText, "scene": "010101", "department": department, "cardChannel": "0200"})
	resp, err := http.Post("http://"+addr+"/v1/usage", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func statusBody(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func outboxDepth(t *testing.T, addr string) int {
	var st struct {
		Queue struct {
			Depth int `json:"depth"`
		} `json:"queue"`
	}
	if err := json.Unmarshal([]byte(statusBody(t, addr)), &st); err != nil {
		t.Fatal(err)
	}
	return st.Queue.Depth
}

// countsByDepartment counts the reports the platform accepted, by the
// department the test gave each.
func reportsByDepartment(p *platform.Server) map[string]int {
	out := map[string]int{}
	for _, r := range p.Stats().Reports {
		if d := r.Req["department"]; strings.HasPrefix(d, "dmg-") || strings.HasPrefix(d, "full-") {
			out[d]++
		}
	}
	return out
}

// liveLeaves returns the page size and the ids of the leaf pages in use
// that hold the test's reports, found with bbolt's page information.
func liveLeaves(t *testing.T, path string) (int, []int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, _ := os.ReadFile(path)
	ps := db.Info().PageSize
	var ids []int
	_ = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type == "free" {
				id++
				continue
			}
			if info.Type == "leaf" && bytes.Contains(raw[id*ps:(id+1+info.OverflowCount)*ps], []byte(`"dmg-`)) {
				ids = append(ids, id)
			}
			id += 1 + info.OverflowCount
		}
	})
	if len(ids) < 3 {
		t.Fatalf("the reports fill only %d pages", len(ids))
	}
	return ps, ids
}

// smashRecordPage overwrites the header of a page of reports.
func smashRecordPage(t *testing.T, path string) {
	ps, ids := liveLeaves(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xEE}, 64), int64(ids[len(ids)/2]*ps)); err != nil {
		t.Fatal(err)
	}
}

// cutLastPage cuts the file short by its last page in use.
func cutLastPage(t *testing.T, path string) {
	liveLeaves(t, path) // the reports are there to lose
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	_ = db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	ps := db.Info().PageSize
	db.Close()
	if err := os.Truncate(path, size-int64(ps)); err != nil {
		t.Fatal(err)
	}
}
