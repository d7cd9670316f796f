package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/kardianos/service"

	"scanagent/internal/agent"
	"scanagent/internal/config"
)

// The system service is one thin adapter over kardianos/service: the
// service manager runs `scanagent service-run -c FILE`, whose Start runs
// the same agent.Run as `scanagent run`, and whose Stop cancels its context
// and waits for the drain — so service stop and Ctrl-C share one path.
//
// On Windows, service-run talks to the SCM itself (service_windows.go):
// kardianos guesses "interactive" from the parent process, which fails under
// Wine, and a configuration that does not load must still reach the SCM and
// the event log instead of timing out the start. The same file sets what
// kardianos cannot: three recovery actions (restart after 5 s, 30 s, 60 s;
// the count resets after a day), recovery on non-crash failures, and an ACL
// of SYSTEM + Administrators on the data directory (the outbox holds
// patients' data).

const serviceName = "scanagent"

func serviceConfig(cfgPath string) *service.Config {
	return &service.Config{
		Name:        serviceName,
		DisplayName: "scanagent barcode agent",
		Description: "Reads patient codes from barcode scanners, verifies them with the e-Health Card platform and hands them to the HIS.",
		Arguments:   []string{"service-run", "-c", cfgPath},
		Option: service.KeyValue{
			// Windows: automatic start. The delayed start and the recovery
			// actions are set by configureInstalledService: kardianos sets
			// one recovery action only, and its DelayedAutoStart deletes the
			// new service where the SCM refuses that setting (Wine).
			"StartType": "automatic",
			// systemd / SysV.
			"Restart":     "on-failure",
			"LogOutput":   false,
			"UserService": false,
		},
	}
}

// program is the service's life: Start runs the agent, Stop drains it.
type program struct {
	cfg    config.Config
	sio    IO
	cancel context.CancelFunc
	done   chan error
	logger service.Logger
}

func (p *program) Start(s service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() {
		err := agent.Run(ctx, p.cfg, runOptions(p.sio))
		p.done <- err
		if err != nil && ctx.Err() == nil {
			// A failure the agent could not ride out (outbox locked, port
			// taken): tell the event log / journal and exit non-zero so the
			// service manager's recovery restarts us.
			_ = p.logger.Errorf("scanagent stopped: %v", err)
			os.Exit(1)
		}
	}()
	_ = p.logger.Infof("scanagent started (config %s)", p.cfg.Path)
	return nil
}

func (p *program) Stop(s service.Service) error {
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			_ = p.logger.Warningf("scanagent stopped with an error: %v", err)
			return nil
		}
	case <-time.After(p.cfg.Agent.ShutdownTimeout.D() + 2*time.Second):
		_ = p.logger.Warning("scanagent did not stop within the shutdown timeout")
	}
	_ = p.logger.Info("scanagent stopped")
	return nil
}

// cmdServiceRun is what the service manager starts.
func cmdServiceRun(_ context.Context, args []string, sio IO) error {
	fs := newFlags("service-run", "scanagent service-run -c FILE   (started by the service manager)", sio)
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, loadErr := loadConfig(*path, sio)
	p := &program{cfg: cfg, sio: sio}
	if handled, err := runUnderServiceManager(p, loadErr); handled {
		return err
	}
	if loadErr != nil {
		return loadErr
	}
	s, err := service.New(p, serviceConfig(cfg.Path))
	if err != nil {
		return err
	}
	if p.logger, err = s.Logger(nil); err != nil {
		return err
	}
	return s.Run()
}

// cmdService returns the command for one service control action.
func cmdService(action string) func(context.Context, []string, IO) error {
	return func(_ context.Context, args []string, sio IO) error {
		fs := newFlags(action, "scanagent "+action+" [-c FILE]", sio)
		path := configFlag(fs)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if err := noArgs(fs); err != nil {
			return err
		}
		cfgPath := *path
		var cfg config.Config
		if action == "install" {
			if cfgPath == "" {
				return &UsageError{Msg: "install: -c FILE is required (the service runs with that configuration)"}
			}
			abs, err := filepath.Abs(cfgPath)
			if err != nil {
				return err
			}
			// Refuse to install a service that cannot start.
			if cfg, err = config.LoadEnv(abs, sio.Env); err != nil {
				return fmt.Errorf("install: the configuration does not validate:\n%w\nfix it (scanagent config check -c %s), then install again", err, abs)
			}
			cfgPath = abs
		}
		s, err := service.New(&program{}, serviceConfig(cfgPath))
		if err != nil {
			return err
		}
		if err := service.Control(s, action); err != nil {
			return fmt.Errorf("%s: %w%s", action, err, privilegeHint())
		}
		if action == "install" {
			if err := configureInstalledService(cfg); err != nil {
				return fmt.Errorf("install: the service is installed but not fully configured: %w%s", err, privilegeHint())
			}
		}
		fmt.Fprintf(sio.Out, "%s: done (%s)\n", action, service.ChosenSystem().String())
		return nil
	}
}

func privilegeHint() string {
	if runtime.GOOS == "windows" {
		return " (run from an Administrator prompt)"
	}
	if os.Geteuid() != 0 {
		return " (run as root, e.g. with sudo)"
	}
	return ""
}
