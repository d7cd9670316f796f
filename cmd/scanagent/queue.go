package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/agent"
	"scanagent/internal/card"
	"scanagent/internal/mask"
	"scanagent/internal/queue"
)

func queueCommands() map[string]command {
	return map[string]command{
		"stats": {summary: "counts by kind and state, oldest age, delivered, dead letters", run: cmdQueueStats},
		"list":  {summary: "list pending records or dead letters (--dead), masked", run: cmdQueueList},
		"retry": {summary: "move dead letters back to the queue (all, or --seq N,M)", run: cmdQueueRetry},
		"purge": {summary: "delete dead letters (--dead) or pending records (--pending); needs --yes", run: cmdQueuePurge},
	}
}

// openQueueFor opens the configured outbox for the CLI: read-only for
// reading commands, which works beside a stopped agent only; a running
// agent holds the file, and the message says so.
func openQueueFor(path string, readOnly bool, sio IO) (*queue.Queue, error) {
	cfg, err := loadConfig(path, sio)
	if err != nil {
		return nil, err
	}
	o, err := agent.QueueOptions(cfg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	o.ReadOnly, o.OpenTimeout = readOnly, 500*time.Millisecond
	q, err := queue.Open(o)
	if err != nil {
		if errors.Is(err, queue.ErrLocked) {
			return nil, fmt.Errorf("%w\nthe running agent holds the outbox: read its state with `scanagent status -c %s` (or %s/v1/status), or stop the service to use this command",
				err, path, apiOf(cfg.HIS.API, 0).base)
		}
		return nil, err
	}
	return q, nil
}

func queueFlags(name, synopsis string, sio IO) (*flag.FlagSet, *string) {
	fs := newFlags("queue "+name, synopsis, sio)
	return fs, configFlag(fs)
}

// parseAndOpen parses a queue command's flags and opens the outbox.
func parseAndOpen(fs *flag.FlagSet, path *string, args []string, readOnly bool, sio IO) (*queue.Queue, error) {
	if err := parseAll(fs, args); err != nil {
		return nil, err
	}
	return openQueueFor(*path, readOnly, sio)
}

func cmdQueueStats(_ context.Context, args []string, sio IO) error {
	fs, path := queueFlags("stats", "scanagent queue stats -c FILE [--json]", sio)
	asJSON := fs.Bool("json", false, "print JSON")
	q, err := parseAndOpen(fs, path, args, true, sio)
	if err != nil {
		return err
	}
	defer q.Close()
	st := q.Stats()
	if *asJSON {
		return json.NewEncoder(sio.Out).Encode(st)
	}
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "pending\t%d\n", st.Depth())
	for k, n := range st.Pending {
		fmt.Fprintf(tw, "  %s\t%d\n", k, n)
	}
	if !st.Oldest.IsZero() {
		fmt.Fprintf(tw, "oldest\t%s (%s ago)\n", st.Oldest.In(card.CST).Format(card.TimeLayout), st.OldestAge.Round(time.Second))
	}
	fmt.Fprintf(tw, "dead letters\t%d\n", st.Dead)
	fmt.Fprintf(tw, "delivered\t%d (of which %d confirmed by 10054)\n", st.Delivered, st.Duplicates)
	fmt.Fprintf(tw, "retries\t%d\n", st.Retries)
	fmt.Fprintf(tw, "dropped\t%d\n", st.Dropped)
	fmt.Fprintf(tw, "file size\t%d bytes\n", st.FileSize)
	tw.Flush()
	return nil
}

// maskedPayload shows what a record carries without personal data.
func maskedPayload(kind string, p []byte) string {
	switch kind {
	case card.RecordReport:
		var r card.Report
		if json.Unmarshal(p, &r) == nil {
			s := fmt.Sprintf("scene=%s channel=%s cardType=%s time=%s", r.Scene, r.CardChannel, r.CardType, r.Time)
			if r.QRCodeText != "" {
				s += " qr=" + mask.QR(r.QRCodeText)
			}
			if r.IDCardNumber != "" {
				s += " id=" + mask.ID(r.IDCardNumber) + " name=" + mask.Name(r.Name)
			}
			return s
		}
	case card.RecordBind:
		var b card.Binding
		if json.Unmarshal(p, &b) == nil {
			return "patid=" + mask.ID(b.PatID) + " qr=" + mask.QR(b.QRCodeText)
		}
	}
	return fmt.Sprintf("(%d bytes)", len(p))
}

func cmdQueueList(_ context.Context, args []string, sio IO) error {
	fs, path := queueFlags("list", "scanagent queue list -c FILE [--dead] [--limit N]", sio)
	dead := fs.Bool("dead", false, "list dead letters instead of pending records")
	limit := fs.Int("limit", 100, "at most this many records (0: all)")
	q, err := parseAndOpen(fs, path, args, true, sio)
	if err != nil {
		return err
	}
	defer q.Close()
	recs, err := q.List(*dead, *limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tKIND\tENQUEUED (CST)\tATTEMPTS\tSTATE\tRECORD\tLAST ERROR")
	for _, r := range recs {
		state := "waiting"
		switch {
		case !r.DeadAt.IsZero():
			state = "dead"
		case r.Unknown:
			state = "unresolved " + r.RequestID[:min(8, len(r.RequestID))]
		case !r.NextAttempt.IsZero():
			state = "retry " + r.NextAttempt.In(card.CST).Format("01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Seq, r.Kind, r.Enqueued.In(card.CST).Format(card.TimeLayout), r.Attempts, state, maskedPayload(r.Kind, r.Payload), r.LastError)
	}
	tw.Flush()
	if len(recs) == 0 {
		fmt.Fprintln(sio.Out, "(none)")
	}
	return nil
}

func cmdQueueRetry(_ context.Context, args []string, sio IO) error {
	fs, path := queueFlags("retry", "scanagent queue retry -c FILE [--seq N,M,...]", sio)
	seqs := fs.String("seq", "", "comma-separated sequence numbers (default: every dead letter)")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	var ids []uint64
	for _, s := range strings.Split(*seqs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return &UsageError{Msg: fmt.Sprintf("queue retry: bad --seq %q: give the SEQ numbers `scanagent queue list --dead` shows, e.g. --seq 12,15", s)}
		}
		ids = append(ids, n)
	}
	q, err := openQueueFor(*path, false, sio)
	if err != nil {
		return err
	}
	defer q.Close()
	n, err := q.RetryDead(ids...)
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.Out, "%d dead letter(s) moved back to the queue\n", n)
	return nil
}

func cmdQueuePurge(_ context.Context, args []string, sio IO) error {
	fs, path := queueFlags("purge", "scanagent queue purge -c FILE (--dead | --pending) --yes", sio)
	dead := fs.Bool("dead", false, "delete every dead letter")
	pending := fs.Bool("pending", false, "delete every pending record (they will never reach the platform)")
	yes := fs.Bool("yes", false, "confirm: the records are deleted for good")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if *dead == *pending {
		return &UsageError{Msg: "queue purge: give exactly one of --dead or --pending"}
	}
	if !*yes {
		return &UsageError{Msg: "queue purge deletes records for good: add --yes to confirm"}
	}
	q, err := openQueueFor(*path, false, sio)
	if err != nil {
		return err
	}
	defer q.Close()
	n, err := q.Purge(*dead)
	if err != nil {
		return err
	}
	fmt.Fprintf(sio.Out, "%d record(s) deleted\n", n)
	return nil
}
