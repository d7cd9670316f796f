package configs

import (
	"bytes"
	"testing"
)

// Every edit of the shipped configuration still applies to the sample
// (an edit that no longer matches would ship the demo's credentials).
func TestShippedEditsApply(t *testing.T) {
	for i, e := range shippedEdits {
		if !e.re.Match(Sample) {
			t.Errorf("edit %d (%s) matches nothing in the sample", i, e.re)
		}
	}
	s := Shipped()
	for _, leak := range []string{"8c8e763f443ef983ac33aef1c7085cfb", "a1a2e0bde41574ad8ea9a4bb58022oop", "127.0.0.1:8480", "示例医院"} {
		if bytes.Contains(s, []byte(leak)) {
			t.Errorf("the shipped configuration carries %q", leak)
		}
	}
}
