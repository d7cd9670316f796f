package main

import (
	"context"

	"scanagent/internal/agent"
)

func cmdRun(ctx context.Context, args []string, sio IO) error {
	cfg, _, err := configCommand("run", "scanagent run -c FILE", args, sio)
	if err != nil {
		return err
	}
	return agent.Run(ctx, cfg, runOptions(sio))
}
