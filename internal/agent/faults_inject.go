//go:build faultinject

package agent

import (
	"os"

	"scanagent/internal/card"
)

// afterHandoffFault, in binaries built with -tags faultinject (the crash
// tests' only), kills the process right after the first visit reached the
// HIS and before its usage report is committed, when
// SCANAGENT_FAULT=exit-after-handoff.
func afterHandoffFault() func(card.Visit) {
	if os.Getenv("SCANAGENT_FAULT") != "exit-after-handoff" {
		return nil
	}
	return func(v card.Visit) {
		if v.Kind == card.KindEHCStatic && v.Identity != nil {
			os.Exit(86)
		}
	}
}
