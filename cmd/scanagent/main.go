// Command scanagent reads patient codes from barcode scanners, verifies them
// with the e-Health Card platform, hands the identity to the HIS and reports
// card usage through a durable outbox.
//
// This package is the command line: one file per command group (run,
// service, status, doctor, queue, config, debug, ports), flag parsing and output
// formatting. The agent itself is built, run, reloaded and stopped by
// internal/agent; main only wires.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGHUP first of all: the shipped unit reloads with kill -HUP, and a
	// reload that arrives while the agent starts must not kill it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	sio := StdIO()
	sio.Hangup = hup
	err := Run(ctx, os.Args[1:], sio)
	stop()
	if err != nil && ExitCode(err) != 0 && err.Error() != "" {
		fmt.Fprintln(os.Stderr, "scanagent:", err)
	}
	os.Exit(ExitCode(err))
}
