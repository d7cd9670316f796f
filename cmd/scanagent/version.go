package main

import (
	"context"
	"fmt"

	"scanagent/internal/buildinfo"
)

func cmdVersion(_ context.Context, args []string, sio IO) error {
	fs := newFlags("version", "scanagent version", sio)
	if err := parseAll(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(sio.Out, buildinfo.String())
	return nil
}
