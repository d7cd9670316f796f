package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/config"
	"scanagent/internal/logging"
	"scanagent/internal/sdnotify"
)

// RunOptions are the process's streams and signals the agent uses.
type RunOptions struct {
	// Stderr receives the log when the configuration logs to the console.
	Stderr io.Writer
	// Env resolves ${VAR} secrets when the configuration is reloaded.
	Env config.Env
	// Hangup delivers SIGHUP (reload the configuration); nil: never.
	Hangup <-chan os.Signal
}

// Run runs the agent on cfg until ctx ends: the one path shared by `run`
// and the service. A reload (SIGHUP, POST /v1/reload) rebuilds the
// agent from the file while the outbox stays open; a bad file is refused
// and the running configuration keeps going.
func Run(ctx context.Context, cfg config.Config, o RunOptions) error {
	log, closer, err := logging.New(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, File: cfg.Log.File,
		MaxSizeMB: cfg.Log.MaxSizeMB, MaxBackups: cfg.Log.MaxBackups, MaxAgeDays: cfg.Log.MaxAgeDays, Stderr: o.Stderr})
	if err != nil {
		return err
	}
	defer closer.Close()
	file := cfg // as read; the reloader compares new files with it
	cfg, unconfigured := idleIfUnconfigured(cfg, log)
	ob, err := openOutbox(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return err
	}
	if ob != nil {
		defer ob.Close()
	}
	rl := newReloader(file, o.Env, log)
	stopSignals := rl.watchHangups(o.Hangup)
	defer stopSignals()
	// One registry for the process: counters and histograms survive reloads.
	prev := &carried{started: time.Now(), obs: newObserver()}
	for {
		for _, w := range cfg.Warnings() {
			log.Warn().Str("field", w.Path).Msg(w.Msg)
		}
		a, err := build(cfg, log, prev)
		if err != nil {
			log.Error().Err(err).Msg("cannot start")
			return err
		}
		a.unconfigured, a.notify = unconfigured, notifier(o.Env)
		a.attach(ob)
		a.obs.follow(a)
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
				_ = a.notify.Notify("RELOADING=1")
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
	if err == nil && r.current.Unconfigured() != nil {
		err = errors.New("the agent was started not configured: restart it to start scanning with the new configuration")
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

// notifier is the systemd notifier of the process's environment.
func notifier(env config.Env) sdnotify.Notifier {
	return sdnotify.New(func(k string) string {
		if env == nil {
			return ""
		}
		v, _ := env(k)
		return v
	})
}
