//go:build !windows

package app

import (
	"os"
	"os/signal"
	"syscall"
)

// watchSignals reloads the configuration on SIGHUP.
func (r *reloader) watchSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				r.log.Info().Msg("SIGHUP: reloading the configuration")
				_ = r.request()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
