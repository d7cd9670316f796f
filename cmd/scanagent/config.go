package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"scanagent/configs"
	"scanagent/internal/config"
)

func cmdConfigSample(_ context.Context, args []string, sio IO) error {
	fs := newFlags("config sample", "scanagent config sample [--shipped]", sio)
	shipped := fs.Bool("shipped", false, "print the configuration the packages install (no credentials: \"not configured yet\")")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	out := config.Sample
	if *shipped {
		out = configs.Shipped()
	}
	_, err := sio.Out.Write(out)
	return err
}

// configFlag registers -c/--config.
func configFlag(fs *flag.FlagSet) *string {
	p := fs.String("c", "", "configuration file")
	fs.StringVar(p, "config", "", "configuration file (same as -c)")
	return p
}

func loadConfig(path string, sio IO) (config.Config, error) {
	if path == "" {
		return config.Config{}, &UsageError{Msg: "missing -c FILE: name the configuration file, e.g. -c " + defaultConfigPath()}
	}
	cfg, err := config.LoadEnv(path, sio.Env)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrNotExist):
		err = fmt.Errorf("%w (check the path; the packages install %s)", err, defaultConfigPath())
	case errors.Is(err, os.ErrPermission):
		err = fmt.Errorf("%w (the configuration holds secrets: run as root, or from an Administrator prompt on Windows)", err)
	case errors.As(err, new(config.Errors)):
		err = fmt.Errorf("%w\nfix the lines above (scanagent config check -c %s lists them)", err, path)
	}
	return cfg, err
}

// configCommand parses the flags of a command that takes only -c FILE and
// loads that file.
func configCommand(name, synopsis string, args []string, sio IO) (cfg config.Config, path string, err error) {
	fs := newFlags(name, synopsis, sio)
	p := configFlag(fs)
	if err := parseAll(fs, args); err != nil {
		return config.Config{}, *p, err
	}
	cfg, err = loadConfig(*p, sio)
	return cfg, *p, err
}

func cmdConfigCheck(_ context.Context, args []string, sio IO) error {
	cfg, path, err := configCommand("config check", "scanagent config check -c FILE", args, sio)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(sio.Out, e)
			}
			return fmt.Errorf("%s: %d problem(s): fix the lines above, then run config check again", path, len(errs))
		}
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(sio.Out, "warning:", w)
	}
	if missing := cfg.Unconfigured(); missing != nil {
		fmt.Fprintln(sio.Out, "not configured yet: fill in", strings.Join(missing, ", "))
		return fmt.Errorf("%s is not configured yet: the agent will idle until it is", path)
	}
	fmt.Fprintln(sio.Out, "ok")
	return nil
}
