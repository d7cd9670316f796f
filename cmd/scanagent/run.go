package main

import (
	"context"

	"scanagent/internal/agent"
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
	return agent.Run(ctx, cfg, runOptions(sio))
}
