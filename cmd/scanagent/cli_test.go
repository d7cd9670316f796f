package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"scanagent/internal/config"
)

type result struct {
	out, err string
	code     int
}

func run(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	sio := IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Service: func(string) string { return "not installed (test)" }} // never this machine's service manager
	err := Run(context.Background(), args, sio)
	if err != nil {
		errb.WriteString(err.Error())
	}
	return result{out.String(), errb.String(), ExitCode(err)}
}

const guideBody = `{"commonIn":{"appToken":"","requestId":"DB4D975748A84309977EA25224C0F5CF","hospitalId":"90003","timestamp":"1525392000"},"req":{"appId":"a1a2e0bde41574ad8ea9a4bb58022oop"}}`

func TestDebugSignGolden(t *testing.T) {
	env := map[string]string{"SCANAGENT_APP_SECRET": "8c8e763f443ef983ac33aef1c7085cfb"}
	r := run(t, guideBody, env, "debug", "sign")
	want := "appId=a1a2e0bde41574ad8ea9a4bb58022oop&hospitalId=90003&requestId=DB4D975748A84309977EA25224C0F5CF&timestamp=1525392000\nTsccMUMTHfOiEovR2hMlRXcQqctRFmPbpPIZdxXCJ/o=\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("debug sign = %d %q %q", r.code, r.out, r.err)
	}
	f := filepath.Join(t.TempDir(), "body.json")
	os.WriteFile(f, []byte(guideBody), 0o600)
	if r := run(t, "", nil, "debug", "sign", "--secret", "8c8e763f443ef983ac33aef1c7085cfb", "--in", f); r.out != want {
		t.Fatalf("--in/--secret: %q %q", r.out, r.err)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[platform]\nmode = \"off\"\nbogus = 1\n[agent]\noffline = \"x\"\n"), 0o600)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, config.Sample, 0o600)
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		outHas string
		errHas string
	}{
		{"no args", "", nil, 2, "", "missing command"},
		{"help", "", []string{"help"}, 0, "Commands:", ""},
		{"-h", "", []string{"-h"}, 0, "Commands:", ""},
		{"unknown command", "", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"unknown subcommand", "", []string{"config", "nope"}, 2, "", `unknown command "nope"`},
		{"unknown flag", "", []string{"version", "-x"}, 2, "", "not defined: -x"},
		{"sub -h", "", []string{"debug", "parse", "-h"}, 0, "", "Usage: scanagent debug parse"},
		{"version", "", []string{"version"}, 0, "scanagent ", ""},
		{"sample", "", []string{"config", "sample"}, 0, "[platform]", ""},
		{"check ok", "", []string{"config", "check", "-c", good}, 0, "ok\n", ""},
		{"check bad", "", []string{"config", "check", "-c", bad}, 1, `bad.toml:3:1: unknown key "platform.bogus"`, "problem"},
		{"check missing -c", "", []string{"config", "check"}, 2, "", "missing -c"},
		{"check missing file", "", []string{"config", "check", "-c", filepath.Join(dir, "none.toml")}, 1, "", "no such file"},
		{"sign no secret", guideBody, []string{"debug", "sign"}, 2, "", "no secret"},
		{"sign bad json", "{not json", []string{"debug", "sign", "--secret", "s"}, 1, "", "not a JSON object"},
		{"parse static", "", []string{"debug", "parse", "C7DA29340C1A4C2B9F6E0A12B34C5D6E:1"}, 0, `"kind":"ehc_static"`, ""},
		{"parse stdin", "]Q1432901198810228888\r\n", []string{"debug", "parse"}, 0, `{"kind":"id_card","idNumber":"432901198810228888","symbology":"]Q1"}`, ""},
		{"parse dynamic", "", []string{"debug", "parse", "D109C4C3B1E94A7F8E6D5C4B3A291807:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"}, 0, `"orgCode":"35020001001"`, ""},
		{"parse garbage", "", []string{"debug", "parse", "hello"}, 1, "", "code rejected (unknown)"},
		{"parse bad checksum builtin", "", []string{"debug", "parse", "101102199809089988"}, 1, "", "bad_checksum"},
		{"parse custom needs -c", "", []string{"debug", "parse", "HC0012345678"}, 1, "", "rejected"},
		{"parse custom with -c", "", []string{"debug", "parse", "-c", good, "HC0012345678"}, 0, `"type":"hospital_card"`, ""},
		{"parse two args", "", []string{"debug", "parse", "a", "b"}, 2, "", "one payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.stdin, nil, tt.args...)
			if r.code != tt.code || !strings.Contains(r.out, tt.outHas) || !strings.Contains(r.err, tt.errHas) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tt.code, r.out, r.err)
			}
		})
	}
}

func TestPortsJSON(t *testing.T) {
	r := run(t, "", nil, "ports", "--json")
	var inv struct {
		Serial       []map[string]any `json:"serial"`
		HID          []map[string]any `json:"hid"`
		HIDSupported *bool            `json:"hidSupported"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.out), &inv) != nil || inv.Serial == nil || inv.HID == nil || inv.HIDSupported == nil {
		t.Fatalf("ports --json: %+v", r)
	}
	if r := run(t, "", nil, "ports"); r.code != 0 || !strings.Contains(r.out, "SERIAL PORT") || !strings.Contains(r.out, "HID DEVICE") {
		t.Fatalf("ports: %+v", r)
	}
}

// install validates the configuration before touching the service manager.
func TestInstallRefusesBadConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.toml")
	// Half the credentials: invalid (none at all is "not configured yet",
	// which installs and idles).
	os.WriteFile(bad, []byte("[platform]\nmode = \"direct\"\napp_id = \"a1a2e0bde41574ad8ea9a4bb58022oop\"\n"), 0o600)
	r := run(t, "", nil, "install", "-c", bad)
	if r.code != 1 || !strings.Contains(r.err, "does not validate") || !strings.Contains(r.err, "platform.app_secret: required") {
		t.Fatalf("install with a bad config: %+v", r)
	}
	if r := run(t, "", nil, "install"); r.code != 2 || !strings.Contains(r.err, "-c FILE is required") {
		t.Fatalf("install without -c: %+v", r)
	}
}
