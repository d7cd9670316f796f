//go:build windows

package queue

import "syscall"

// noSpaceErrnos are the errors of a write that found the disk full:
// ERROR_HANDLE_DISK_FULL (39), ERROR_DISK_FULL (112), and Go's ENOSPC.
func noSpaceErrnos() []error { return []error{syscall.Errno(39), syscall.Errno(112), syscall.ENOSPC} }
