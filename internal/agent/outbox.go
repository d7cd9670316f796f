package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/logging"
	"scanagent/internal/queue"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

// platformSender adapts the platform client to the outbox: it decodes a
// record, makes the call with the record's requestId and turns the answer
// into a verdict (SPEC §4).
type platformSender struct {
	p     verify.Upstream
	pause time.Duration
	now   func() time.Time
}

var _ queue.Sender = platformSender{}

func (s platformSender) Send(ctx context.Context, kind string, payload []byte, requestID string) queue.Verdict {
	switch kind {
	case card.RecordReport:
		return send(s, payload, func(r card.Report) error { return s.p.ReportHISData(ctx, r, requestID) })
	case card.RecordBind:
		return send(s, payload, func(b card.Binding) error { return s.p.BindCardRelation(ctx, b, requestID) })
	}
	return queue.Verdict{Outcome: queue.Dead, Reason: fmt.Sprintf("unknown record kind %q", kind)}
}

// send decodes a record and makes its call; an unreadable record is dead.
func send[T any](s platformSender, payload []byte, call func(T) error) queue.Verdict {
	var rec T
	if err := json.Unmarshal(payload, &rec); err != nil {
		return queue.Verdict{Outcome: queue.Dead, Reason: fmt.Sprintf("unreadable %T record: %v", rec, err)}
	}
	return verdict(visit.Decide(call(rec), s.now(), s.pause))
}

// outcomes maps the policy's outcomes onto the outbox's.
var outcomes = map[visit.Outcome]queue.Outcome{visit.Delivered: queue.Delivered, visit.Retry: queue.Retry,
	visit.Duplicate: queue.Duplicate, visit.Pause: queue.Pause, visit.Dead: queue.Dead}

// verdict is the outbox's form of the policy's decision.
func verdict(d visit.Decision) queue.Verdict {
	return queue.Verdict{Outcome: outcomes[d.Outcome], Unknown: d.Unknown, RetryAfter: d.RetryAfter, Reason: d.Reason}
}

// QueueOptions maps the configuration onto the outbox's options, for the
// CLI: a generated key is read, never made.
func QueueOptions(c config.Config, log zerolog.Logger) (queue.Options, error) {
	return queueOptions(c, false, log)
}

func queueOptions(c config.Config, create bool, log zerolog.Logger) (queue.Options, error) {
	q := c.Queue
	o := queue.Options{Path: q.Path, MaxRecords: q.MaxRecords, MaxBytes: q.MaxBytes, FullPolicy: q.FullPolicy,
		BatchWindow: q.BatchWindow.D(), Concurrency: q.Concurrency, RetryMin: q.RetryMin.D(), RetryMax: q.RetryMax.D(), Log: log}
	if !q.Encrypt {
		return o, nil
	}
	if q.Key == "" {
		k, err := generatedKey(q.GeneratedKeyPath(), create, log)
		o.Key = k
		return o, err
	}
	k, err := config.DecodeKey(q.Key.Reveal())
	if err != nil {
		return o, fmt.Errorf("queue.key: %w", err)
	}
	o.Key = k
	return o, nil
}

// generatedKey reads the outbox key generated on the first start, making
// it now when create is set and it is missing: 32 random bytes, hex, in a
// file only the service's user can read (the data folder is restricted to
// the service on Windows too).
func generatedKey(path string, create bool, log zerolog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		b = []byte(hex.EncodeToString(key) + "\n")
		if err = writeNew(path, b); err == nil {
			log.Info().Str("path", path).Msg("outbox encryption key generated: back it up with the outbox (without it queued records cannot be read)")
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // the outbox was never opened by the agent: nothing sealed yet
	}
	if err != nil {
		return nil, fmt.Errorf("outbox key %s: %w", path, err)
	}
	k, err := config.DecodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("outbox key %s: %w", path, err)
	}
	return k, nil
}

// writeNew creates path with b, readable by the owner only, and syncs it;
// it never replaces an existing file.
func writeNew(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// openOutbox opens the configured outbox (refusing a second agent on the
// same file); nil when platform.mode = "off". It outlives configuration
// reloads.
func openOutbox(c config.Config, log zerolog.Logger) (*queue.Queue, error) {
	if c.Platform.Mode == "off" {
		return nil, nil
	}
	o, err := queueOptions(c, true, logging.Component(log, "outbox"))
	if err != nil {
		return nil, err
	}
	ob, err := queue.Open(o)
	if err != nil {
		return nil, err
	}
	st := ob.Stats()
	log.Info().Str("path", c.Queue.Path).Int("pending", st.Depth()).Int("dead", st.Dead).Msg("outbox open")
	return ob, nil
}

// attach wires an open outbox into the agent's producers.
func (a *agent) attach(ob *queue.Queue) {
	if ob == nil || a.platform == nil {
		return
	}
	a.outbox = ob
	timed := a.obs.outbox(ob) // measures each commit
	a.pipe.SetOutbox(timed)
	if a.api != nil {
		a.api.SetRecorder(usageRecorder{visit.Recorder{Outbox: timed, Defaults: visit.DefaultReport(a.reports)}})
	}
}
