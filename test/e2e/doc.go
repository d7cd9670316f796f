// Package e2e holds the integration tests that build the real scanagent
// binary and drive it, as a separate process, with the fake scanner (a pty),
// the fake platform and the fake HIS. Linux only (they need ptys).
package e2e
