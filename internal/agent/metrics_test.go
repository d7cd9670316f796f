package agent

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
)

// The metrics page is valid exposition format: one HELP/TYPE per family,
// every sample line "name{labels} value".
func TestMetricsFormat(t *testing.T) {
	cfg, err := config.Parse([]byte("[platform]\nmode = \"off\"\n[[source]]\nname = \"a\"\nport = \"/dev/null-a\"\n[[source]]\nname = \"b\"\nport = \"/dev/null-b\"\n"), "m.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go a.sup.Run(ctx, a.sources, func(card.Scan) {})
	time.Sleep(50 * time.Millisecond)
	cancel()
	var buf bytes.Buffer
	a.metrics(&buf)
	seen := map[string]bool{}
	sample := regexp.MustCompile(`^[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[0-9.e+]+$`)
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" {
			key := f[1] + " " + f[2]
			if seen[key] {
				t.Fatalf("repeated %q:\n%s", key, buf.String())
			}
			seen[key] = true
			continue
		}
		if !sample.MatchString(line) {
			t.Fatalf("bad sample line %q", line)
		}
	}
	if !strings.Contains(buf.String(), `scanagent_source_connected{source="b"} 0`) {
		t.Fatalf("missing source b:\n%s", buf.String())
	}
}
