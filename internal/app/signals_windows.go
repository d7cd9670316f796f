package app

// watchSignals: Windows has no SIGHUP; reload with POST /v1/reload from
// this machine, or restart the service.
func (r *reloader) watchSignals() (stop func()) { return func() {} }
