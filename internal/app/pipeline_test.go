package app

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/code"
	"scanagent/internal/his"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
)

// fakeRecorder is an outbox that keeps what it is given.
type fakeRecorder struct {
	mu   sync.Mutex
	keys []string
	recs []verify.Report
	err  error
}

func (f *fakeRecorder) EnqueueKeyed(_ context.Context, kind, key string, payload []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	var r verify.Report
	_ = json.Unmarshal(payload, &r)
	f.keys, f.recs = append(f.keys, key), append(f.recs, r)
	return uint64(len(f.recs)), nil
}

type sinkFunc func(his.Event)

func (f sinkFunc) Deliver(_ context.Context, e his.Event) error { f(e); return nil }

const (
	staticCode  = "C7DA29340C1A4C2B9F6E0A12B34C5D6E:1"
	dynamicCode = "D109C4C3B1E94A7F8E6D5C4B3A291807:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"
	idNumber    = "432901198810228888"
)

// Each kind of code is counted on the platform exactly once per visit: a
// dynamic code by verifyQRCode (with the source's 用卡环节), a static code
// by one queued reportHISData, an ID number not at all by the pipeline (it
// carries no name: the HIS reports it through /v1/usage).
func TestPipelineCountsEachVisitOnce(t *testing.T) {
	tests := []struct {
		name        string
		payload     string
		verifyErr   error
		offline     string
		wantReports int
		wantStep    string
		wantVerify  bool
	}{
		{"static verified", staticCode, nil, "refuse", 1, "", true},
		{"dynamic verified: verifyQRCode is the count", dynamicCode, nil, "refuse", 0, "0101015", true},
		{"id number", idNumber, nil, "refuse", 0, "", true},
		{"static offline, handed over unverified", staticCode, &verify.Error{Class: verify.Retryable, Unavailable: true}, "unverified", 1, "", true},
		{"static offline, refused", staticCode, &verify.Error{Class: verify.Retryable, Unavailable: true}, "refuse", 0, "", true},
		{"dynamic offline", dynamicCode, &verify.Error{Class: verify.Retryable, Unavailable: true}, "unverified", 0, "0101015", true},
		{"static rejected", staticCode, &verify.Error{Class: verify.Rejected, Code: 10008}, "unverified", 0, "", true},
		{"garbage", "hello", nil, "refuse", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parser, _ := code.NewParser(code.Options{})
			rec := &fakeRecorder{}
			var got []verify.Request
			var events []his.Event
			p := &pipeline{parser: parser, debounce: code.NewDebouncer(0), offline: tt.offline, outbox: rec,
				reports: map[string]reportDefaults{"counter": {scene: "0101015", channel: "0100"}},
				log:     zerolog.Nop(), stats: &pipelineStats{}, now: time.Now,
				verifier: verifierFunc(func(_ context.Context, r verify.Request) (verify.Identity, error) {
					got = append(got, r)
					if tt.verifyErr != nil {
						return verify.Identity{}, tt.verifyErr
					}
					return verify.Identity{Kind: r.Kind, Verified: r.Kind != "id_card", QRCodeText: r.Text, IDNumber: r.IDNumber, Name: "龙小英"}, nil
				})}
			p.addSink("t", sinkFunc(func(e his.Event) { events = append(events, e) }))
			p.handle(context.Background(), scanner.Scan{Data: []byte(tt.payload), Source: "counter", At: time.Now()})
			if len(events) != 1 {
				t.Fatalf("HIS got %d events, want 1", len(events))
			}
			if len(rec.recs) != tt.wantReports {
				t.Fatalf("queued %d reportHISData, want %d: %+v", len(rec.recs), tt.wantReports, rec.recs)
			}
			for i, r := range rec.recs {
				if r.Scene != "0101015" || r.CardChannel != "0100" || r.CardType != "11" || r.QRCodeText != staticCode || rec.keys[i] != "scan:"+events[0].ID {
					t.Errorf("report %+v key %q", r, rec.keys[i])
				}
			}
			if (len(got) == 1) != tt.wantVerify {
				t.Fatalf("verify calls %d", len(got))
			}
			if tt.wantVerify && (got[0].MedicalStep != tt.wantStep || got[0].UseScene != tt.wantStep) {
				t.Errorf("medicalStep %q useScene %q, want %q", got[0].MedicalStep, got[0].UseScene, tt.wantStep)
			}
			if tt.wantVerify && tt.wantStep != "" && got[0].UseChannel != "0100" {
				t.Errorf("useChannel %q, want the source's 0100", got[0].UseChannel)
			}
		})
	}
}

// A refused report (disk full) does not keep the identity from the HIS, and
// is counted.
func TestPipelineReportRefusedStillHandsOver(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	rec := &fakeRecorder{err: errors.Join(queue.ErrFull, errors.New("no space left on device"))}
	var events []his.Event
	p := &pipeline{parser: parser, debounce: code.NewDebouncer(0), offline: "refuse", outbox: rec,
		reports: map[string]reportDefaults{"counter": {scene: "010105", channel: "0100"}}, log: zerolog.Nop(), refusedLog: zerolog.Nop(),
		stats: &pipelineStats{}, now: time.Now,
		verifier: verifierFunc(func(_ context.Context, r verify.Request) (verify.Identity, error) {
			return verify.Identity{Kind: r.Kind, Verified: true, QRCodeText: r.Text, Name: "龙小英"}, nil
		})}
	p.addSink("t", sinkFunc(func(e his.Event) { events = append(events, e) }))
	for i := 0; i < 3; i++ {
		p.handle(context.Background(), scanner.Scan{Data: []byte(staticCode), Source: "counter", At: time.Now()})
	}
	if len(events) != 3 || events[0].Identity == nil || p.stats.ReportsRefused.Load() != 3 {
		t.Fatalf("events %d refused %d", len(events), p.stats.ReportsRefused.Load())
	}
}

// The HIS reporting a scan the agent already reported (or reporting it
// twice) names the same visit: the same outbox key, so one record.
func TestUsageOfAScanIsKeyedByTheScan(t *testing.T) {
	rec := &fakeRecorder{}
	u := usageRecorder{q: rec, reports: map[string]reportDefaults{}, now: time.Now}
	for _, key := range []string{"a", "b"} {
		if _, err := u.RecordUsage(context.Background(), his.Usage{ScanID: "s1", QRCodeText: staticCode, Scene: "010105", CardType: "11", IdempotencyKey: key}); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.keys) != 2 || rec.keys[0] != "scan:s1" || rec.keys[1] != "scan:s1" {
		t.Fatalf("keys %q, want the scan's key twice", rec.keys)
	}
}

// verdictOf maps each platform answer to what the outbox does with the
// record's requestId (SPEC §4).
func TestVerdictOf(t *testing.T) {
	now := func() time.Time { return time.Unix(0, 0) }
	tests := []struct {
		name    string
		err     error
		outcome queue.Outcome
		unknown bool
	}{
		{"accepted", nil, queue.Delivered, false},
		{"token refused: id spent, retry with a new one", &verify.Error{Class: verify.TokenExpired, Code: 21004}, queue.Retry, false},
		{"timeout after send", &verify.Error{Class: verify.Retryable, Unknown: true}, queue.Retry, true},
		{"not sent", &verify.Error{Class: verify.Retryable}, queue.Retry, false},
		{"replay", &verify.Error{Class: verify.Duplicate, Code: 10054}, queue.Duplicate, false},
		{"rate limit", &verify.Error{Class: verify.RateLimited, Code: 10034}, queue.Pause, false},
		{"signature", &verify.Error{Class: verify.Fatal, Code: 21006}, queue.Dead, false},
		{"context ended mid-call", context.Canceled, queue.Retry, true},
	}
	for _, tt := range tests {
		v := verdictOf(tt.err, now, time.Hour)
		if v.Outcome != tt.outcome || v.Unknown != tt.unknown {
			t.Errorf("%s: %+v, want outcome %d unknown %v", tt.name, v, tt.outcome, tt.unknown)
		}
	}
}
