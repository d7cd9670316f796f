//go:build !faultinject

package agent

import "scanagent/internal/card"

// afterHandoffFault is the crash tests' fault point; without the
// faultinject build tag there is none.
func afterHandoffFault() func(card.Visit) { return nil }
