//go:build unix

package queue

import "syscall"

// noSpaceErrnos are the errors of a write that found the disk (or the
// user's quota) full.
func noSpaceErrnos() []error { return []error{syscall.ENOSPC, syscall.EDQUOT} }
