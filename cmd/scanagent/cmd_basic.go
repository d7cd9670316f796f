package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"scanagent/internal/agent"
	"scanagent/internal/buildinfo"
	"scanagent/internal/code"
	"scanagent/internal/config"
	"scanagent/internal/verify/sign"
)

func cmdVersion(_ context.Context, args []string, sio IO) error {
	fs := newFlags("version", "scanagent version", sio)
	if err := parseAll(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(sio.Out, buildinfo.String())
	return nil
}

func cmdConfigSample(_ context.Context, args []string, sio IO) error {
	fs := newFlags("config sample", "scanagent config sample", sio)
	if err := parseAll(fs, args); err != nil {
		return err
	}
	_, err := sio.Out.Write(config.Sample)
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
		return config.Config{}, &UsageError{Msg: "missing -c FILE"}
	}
	return config.LoadEnv(path, sio.Env)
}

func cmdConfigCheck(_ context.Context, args []string, sio IO) error {
	fs := newFlags("config check", "scanagent config check -c FILE", sio)
	path := configFlag(fs)
	if err := parseAll(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path, sio)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(sio.Out, e)
			}
			return fmt.Errorf("%s: %d problem(s)", *path, len(errs))
		}
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(sio.Out, "warning:", w)
	}
	fmt.Fprintln(sio.Out, "ok")
	return nil
}

func cmdDebugSign(_ context.Context, args []string, sio IO) error {
	fs := newFlags("debug sign", "scanagent debug sign [--secret S] [--in FILE]  (secret also from SCANAGENT_APP_SECRET; body from stdin by default)", sio)
	secret := fs.String("secret", "", "appSecret (prefer the SCANAGENT_APP_SECRET environment variable: flags show in process lists)")
	in := fs.String("in", "", "file holding the request body {\"commonIn\":{...},\"req\":{...}} (default stdin)")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if *secret == "" {
		*secret, _ = sio.Env("SCANAGENT_APP_SECRET")
	}
	if *secret == "" {
		return &UsageError{Msg: "debug sign: no secret: pass --secret or set SCANAGENT_APP_SECRET"}
	}
	var r io.Reader = sio.In
	if *in != "" && *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("debug sign: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return fmt.Errorf("debug sign: read body: %w", err)
	}
	body, err := sign.ParseBody(data)
	if err != nil {
		return fmt.Errorf("debug sign: %w", err)
	}
	text := sign.Text(body.CommonIn, body.Req)
	fmt.Fprintln(sio.Out, text)
	fmt.Fprintln(sio.Out, sign.Sign(text, *secret))
	return nil
}

func cmdDebugParse(_ context.Context, args []string, sio IO) error {
	fs := newFlags("debug parse", "scanagent debug parse [-c FILE] [PAYLOAD]  (payload from stdin when omitted)", sio)
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var raw []byte
	switch fs.NArg() {
	case 0:
		b, err := io.ReadAll(io.LimitReader(sio.In, code.MaxLen+1))
		if err != nil {
			return fmt.Errorf("debug parse: read payload: %w", err)
		}
		raw = b
	case 1:
		raw = []byte(fs.Arg(0))
	default:
		return &UsageError{Msg: "debug parse: one payload at most (quote it)"}
	}
	opts := code.Options{}
	if *path != "" {
		c, err := loadConfig(*path, sio)
		if err != nil {
			return err
		}
		opts = agent.ParserOptions(c)
	}
	p, err := code.NewParser(opts)
	if err != nil {
		return err
	}
	c, err := p.Parse(raw)
	if err != nil {
		return fmt.Errorf("debug parse: %w", err)
	}
	enc := json.NewEncoder(sio.Out)
	enc.SetEscapeHTML(false)
	return enc.Encode(c)
}
