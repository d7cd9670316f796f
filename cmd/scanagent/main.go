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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], app.StdIO())
	stop()
	if err != nil && app.ExitCode(err) != 0 {
		fmt.Fprintln(os.Stderr, "scanagent:", err)
	}
	os.Exit(app.ExitCode(err))
}
