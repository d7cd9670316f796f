package config

import (
	"os"
	"testing"
)

// A configuration file is whatever hospital IT typed: any bytes parse to a
// config or to errors that say what is wrong, never a panic.
func FuzzParse(f *testing.F) {
	if shipped, err := os.ReadFile("../../configs/scanagent.toml"); err == nil {
		f.Add(shipped)
	}
	f.Add([]byte("[agent]\ndata_dir = \"/tmp/x\"\n[platform]\nmode = \"off\"\n"))
	f.Add([]byte("[[source]]\nname = \"a\"\ntype = \"serial\"\nport = \"COM3\"\nsuffix = \"0x03\"\n"))
	f.Add([]byte("[queue]\nmax_records = -1\nbatch_window = \"1h\"\n[his.api]\nlisten = \"[::1]:99999\"\n"))
	noEnv := func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml", noEnv)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if errs := c.Validate(); len(errs) > 0 {
			t.Fatalf("Parse accepted a config its own Validate refuses: %v", errs)
		}
	})
}
