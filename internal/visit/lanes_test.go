package visit_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/visit"
)

// A source's scans reach the HIS in the order they were read, and a scan
// waiting on the platform holds back only its own source.
func TestLanesKeepOrderAndIndependence(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	release := make(chan struct{})
	entered := make(chan struct{})
	blocking := verifierFunc(func(ctx context.Context, r card.Request) (card.Identity, error) {
		close(entered)
		<-release
		return card.Identity{QRCodeText: r.Text}, nil
	})
	var mu sync.Mutex
	var order []string
	delivered := make(chan string, 10)
	p := visit.New(visit.Options{Parser: parser, EHC: blocking, Log: zerolog.Nop()})
	p.AddSink("his", sinkFunc(func(v card.Visit) {
		mu.Lock()
		order = append(order, v.Source+":"+string(v.Kind))
		mu.Unlock()
		delivered <- v.Source
	}))
	scans := make(chan card.Scan)
	done := make(chan struct{})
	go func() { runLanes(p, scans); close(done) }()
	now := time.Now()
	scans <- card.Scan{Data: []byte(staticCode), Source: "a", At: now}
	<-entered // a's first scan waits on the platform
	scans <- card.Scan{Data: []byte(idNumber), Source: "a", At: now}
	scans <- card.Scan{Data: []byte(idNumber), Source: "b", At: now}
	if got := <-delivered; got != "b" {
		t.Fatalf("first hand-off from %q, want b (a is waiting on the platform)", got)
	}
	close(release)
	close(scans)
	<-done
	want := []string{"b:id_card", "a:ehc_static", "a:id_card"}
	if !slices.Equal(order, want) {
		t.Fatalf("hand-offs %q, want %q", order, want)
	}
}

// A scan waits for the platform at most the budget: then the HIS hears
// "platform slow", or, for a static code under offline = "unverified", gets
// it unverified (and it is reported). A caller that gives up is a timeout.
func TestPlatformBudget(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	hang := verifierFunc(func(ctx context.Context, _ card.Request) (card.Identity, error) {
		<-ctx.Done()
		return card.Identity{}, &card.Error{API: "getHealthCardByQRCode", Class: card.Retryable, Msg: "request canceled", Unknown: true, Err: ctx.Err()}
	})
	tests := []struct {
		name, payload, offline string
		cancelCaller           bool
		his                    string
		records                int
	}{
		{"static, refuse", staticCode, visit.OfflineRefuse, false, "refused platform_slow", 0},
		{"static, unverified", staticCode, visit.OfflineUnverified, false, "unverified offline", 1},
		{"dynamic", dynamicCode, visit.OfflineUnverified, false, "refused platform_slow", 0},
		{"caller gave up", staticCode, visit.OfflineRefuse, true, "refused retryable", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ob := &fakeOutbox{}
			var got card.Visit
			p := visit.New(visit.Options{Parser: parser, EHC: hang, Offline: tt.offline, Budget: 10 * time.Millisecond,
				Reports: map[string]card.ReportDefaults{source: {Scene: "0101015", Channel: "0100"}}, Log: zerolog.Nop()})
			p.SetOutbox(ob)
			p.AddSink("his", sinkFunc(func(v card.Visit) { got = v }))
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancelCaller {
				cancel()
			}
			p.Handle(ctx, card.Scan{Data: []byte(tt.payload), Source: source, At: time.Now()})
			cancel()
			if his(got) != tt.his || len(ob.records) != tt.records {
				t.Fatalf("HIS told %q (%+v), %d records; want %q, %d", his(got), got.Error, len(ob.records), tt.his, tt.records)
			}
			if got.Error != nil && got.Error.Code == "platform_slow" && got.Error.Message != "platform slow: retry or use an ID card" {
				t.Fatalf("message %q", got.Error.Message)
			}
			if got.PlatformLatency <= 0 {
				t.Fatalf("platformMs not set: %+v", got)
			}
		})
	}
}

// Past the budget the scan stops waiting, but the platform call goes on to
// its own timeout: a hung platform still counts as failing (the breaker
// opens and later scans fail at once), which a cancelled call would not.
func TestBudgetLeavesTheCallRunning(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	release := make(chan struct{})
	finished := make(chan error, 1)
	slowPlatform := verifierFunc(func(ctx context.Context, _ card.Request) (card.Identity, error) {
		<-release
		finished <- ctx.Err()
		return card.Identity{}, &card.Error{Class: card.Retryable, Unavailable: true, Msg: "timeout"}
	})
	var got card.Visit
	p := visit.New(visit.Options{Parser: parser, EHC: slowPlatform, Budget: 10 * time.Millisecond, Log: zerolog.Nop()})
	p.AddSink("his", sinkFunc(func(v card.Visit) { got = v }))
	p.Handle(context.Background(), card.Scan{Data: []byte(staticCode), Source: source, At: time.Now()})
	if his(got) != "refused platform_slow" {
		t.Fatalf("HIS told %q", his(got))
	}
	close(release)
	if err := <-finished; err != nil {
		t.Fatalf("the platform call was cancelled at the budget: %v", err)
	}
}

// gatedOutbox is a fakeOutbox whose commits wait for release.
type gatedOutbox struct {
	fakeOutbox
	entered chan struct{}
	release chan struct{}
}

func (g *gatedOutbox) EnqueueKeyed(ctx context.Context, kind, key string, payload []byte) (uint64, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.fakeOutbox.EnqueueKeyed(ctx, kind, key, payload)
}

// A lane hands the next scan over while the previous scan's record is
// still being committed (the journal holds it meanwhile), and Run returns
// only once every record is committed.
func TestLaneDoesNotWaitForTheDisk(t *testing.T) {
	parser, _ := code.NewParser(code.Options{})
	ob := &gatedOutbox{entered: make(chan struct{}, 4), release: make(chan struct{})}
	p := visit.New(visit.Options{Parser: parser, EHC: verifierFunc(func(_ context.Context, r card.Request) (card.Identity, error) {
		return card.Identity{IDNumber: idNumber, QRCodeText: r.Text}, nil
	}), Log: zerolog.Nop(),
		Reports: map[string]card.ReportDefaults{"a": {Scene: "0101015", Channel: "0100"}}})
	p.SetOutbox(ob)
	delivered := make(chan card.Kind, 4)
	p.AddSink("his", sinkFunc(func(v card.Visit) { delivered <- v.Kind }))
	scans := make(chan card.Scan)
	done := make(chan struct{})
	go func() { runLanes(p, scans); close(done) }()
	scans <- card.Scan{Data: []byte(staticCode), Source: "a", At: time.Now()}
	<-delivered
	<-ob.entered // the first record's commit is under way, and held
	scans <- card.Scan{Data: []byte(idNumber), Source: "a", At: time.Now()}
	select {
	case k := <-delivered:
		if k != card.KindIDCard {
			t.Fatalf("second hand-off %q, want the ID number", k)
		}
	case <-time.After(10 * time.Second): // a guard against a hang, not a timing
		t.Fatal("the second scan waits for the first one's commit")
	}
	if n := ob.journaled(); n != 1 {
		t.Fatalf("%d records journaled during the commit, want 1", n)
	}
	close(scans)
	select {
	case <-done:
		t.Fatal("Run returned before the record was committed")
	default:
	}
	close(ob.release)
	<-done
	if len(ob.records) != 1 || ob.journaled() != 0 {
		t.Fatalf("records %q, %d still journaled; want one committed, none journaled", ob.records, ob.journaled())
	}
}

// runLanes submits every scan of scans to p's lanes, in order, then
// closes them.
func runLanes(p *visit.Pipeline, scans <-chan card.Scan) {
	l := p.Start(context.Background())
	for sc := range scans {
		l.Submit(sc, nil)
	}
	l.Close()
}
