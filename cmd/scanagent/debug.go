package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"scanagent/internal/agent"
	"scanagent/internal/code"
	"scanagent/internal/verify/sign"
)

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
			return fmt.Errorf("debug sign: %w (check the --in path, or pipe the body on stdin)", err)
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
		return fmt.Errorf("debug sign: %w (give a captured request body: {\"commonIn\":{...},\"req\":{...}})", err)
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
