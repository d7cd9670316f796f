//go:build !windows

package main

import "scanagent/internal/config"

// runUnderServiceManager: systemd and SysV start service-run as a plain
// process; kardianos runs it (service.go).
func runUnderServiceManager(*program, error) (bool, error) { return false, nil }

// configureInstalledService: the unit file (or SysV script) kardianos writes
// already restarts on failure; the packaged systemd unit sets permissions.
func configureInstalledService(config.Config) error { return nil }
