package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
	"scanagent/internal/logging"
	"scanagent/internal/scanner"
)

func cmdRun(ctx context.Context, args []string, sio IO) error {
	fs := newFlags("run", "scanagent run -c FILE", sio)
	path := configFlag(fs)
	if err := parseAll(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, sio)
	if err != nil {
		return err
	}
	return runConfig(ctx, cfg, sio)
}

// runConfig runs the agent on cfg until ctx ends: the one path shared by
// `run` and the service. A reload (SIGHUP, POST /v1/reload) rebuilds the
// agent from the file while the outbox stays open; a bad file is refused
// and the running configuration keeps going.
func runConfig(ctx context.Context, cfg config.Config, sio IO) error {
	log, closer, err := logging.New(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, File: cfg.Log.File,
		MaxSizeMB: cfg.Log.MaxSizeMB, MaxBackups: cfg.Log.MaxBackups, MaxAgeDays: cfg.Log.MaxAgeDays, Stderr: sio.Err})
	if err != nil {
		return err
	}
	defer closer.Close()
	ob, err := openOutbox(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return err
	}
	if ob != nil {
		defer ob.Close()
	}
	rl := newReloader(cfg, sio.Env, log)
	stopSignals := rl.watchHangups(sio.Hangup)
	defer stopSignals()
	var prev *carried
	for {
		for _, w := range cfg.Warnings() {
			log.Warn().Str("field", w.Path).Msg(w.Msg)
		}
		a, err := buildAgent(cfg, log, prev)
		if err != nil {
			log.Error().Err(err).Msg("cannot start")
			return err
		}
		a.attach(ob)
		a.reload = rl.request
		actx, cancel := context.WithCancel(ctx)
		next := make(chan config.Config, 1)
		go func() {
			select {
			case c := <-rl.accepted:
				next <- c
				cancel()
			case <-actx.Done():
			}
		}()
		err = a.run(actx)
		cancel()
		select {
		case c := <-next:
			if ctx.Err() == nil {
				log.Info().Str("file", c.Path).Msg("configuration reloaded: scanners, platform client and HIS API rebuilt; outbox kept")
				cfg, prev = c, a.carry()
				continue
			}
		default:
		}
		if err != nil {
			log.Error().Err(err).Msg("stopped with an error")
		}
		return err
	}
}

// reloader validates a new configuration before the running one is
// replaced.
type reloader struct {
	current  config.Config
	env      config.Env
	log      zerolog.Logger
	mu       sync.Mutex
	accepted chan config.Config
}

func newReloader(cfg config.Config, env config.Env, log zerolog.Logger) *reloader {
	return &reloader{current: cfg, env: env, log: log, accepted: make(chan config.Config, 1)}
}

// request loads and validates the file; on success the agent is rebuilt
// with it, otherwise the error says why and nothing changes.
func (r *reloader) request() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := config.LoadEnv(r.current.Path, r.env)
	if err == nil && (c.Queue.Path != r.current.Queue.Path || c.Queue.Encrypt != r.current.Queue.Encrypt || c.Platform.Mode == "off" && r.current.Platform.Mode != "off") {
		err = errors.New("queue settings and switching the platform off need a restart, not a reload")
	}
	if err != nil {
		r.log.Error().Err(err).Msg("reload refused; the running configuration stays")
		return err
	}
	r.current = c
	select {
	case r.accepted <- c:
	default: // a reload is already pending; it will read the newest file
	}
	return nil
}

func cmdPorts(_ context.Context, args []string, sio IO) error {
	fs := newFlags("ports", "scanagent ports [--json]", sio)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	inv := scanner.ListPorts()
	if *asJSON {
		enc := json.NewEncoder(sio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL PORT\tVID:PID\tSERIAL NUMBER\tPRODUCT")
	if len(inv.Serial) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	for _, p := range inv.Serial {
		id := "-"
		if p.USB {
			id = strings.ToLower(p.VID + ":" + p.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, id, p.SerialNumber, p.Product)
	}
	fmt.Fprintln(tw, "\t\t\t")
	fmt.Fprintln(tw, "HID DEVICE\tVID:PID\tUSAGE PAGE\tPRODUCT (LAYOUT)")
	if len(inv.HID) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	for _, h := range inv.HID {
		prod := strings.TrimSpace(h.Manufacturer + " " + h.Product)
		if h.Layout != "" {
			prod += " (" + h.Layout + ")"
		}
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\n", h.Path, h.VID, h.PID, h.UsagePage, prod)
	}
	tw.Flush()
	for _, n := range inv.Notes {
		fmt.Fprintln(sio.Out, "note:", n)
	}
	return nil
}
