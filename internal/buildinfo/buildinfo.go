// Package buildinfo carries the version stamp that the release build writes
// with -ldflags "-X scanagent/internal/buildinfo.Version=... -X ...Commit=...".
package buildinfo

import "runtime"

// Set by the linker; read-only at run time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version report.
func String() string {
	return "scanagent " + Version + " (commit " + Commit + ", " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
