package agent

import "os"

// watchHangups reloads the configuration on each signal from hup (SIGHUP:
// main subscribes on its first line, so a reload asked for while the agent
// starts waits in the channel and is applied once the agent is up). A nil
// channel (Windows, tests) never fires; there POST /v1/reload reloads.
func (r *reloader) watchHangups(hup <-chan os.Signal) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				r.log.Info().Msg("SIGHUP: reloading the configuration")
				_ = r.request()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
