// Command scanagent reads patient codes from barcode scanners, verifies them
// with the e-Health Card platform, hands the identity to the HIS and reports
// card usage through a durable outbox. main only wires: see internal/app.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"scanagent/internal/app"
)

func main() {
	// SIGHUP first of all: the shipped unit reloads with kill -HUP, and a
	// reload that arrives while the agent starts must not kill it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	sio := app.StdIO()
	sio.Hangup = hup
	err := app.Run(ctx, os.Args[1:], sio)
	stop()
	if err != nil && app.ExitCode(err) != 0 {
		fmt.Fprintln(os.Stderr, "scanagent:", err)
	}
	os.Exit(app.ExitCode(err))
}
