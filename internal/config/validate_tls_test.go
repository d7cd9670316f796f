package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"scanagent/internal/testcert"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsFiles are the certificate files of one test run.
type tlsFiles struct {
	cert, key        string // a matching pair
	otherKey         string // the key of another pair
	expCert, expKey  string // a matching pair that expired yesterday
	garbage, missing string // not PEM; no such file
}

func newTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	var f tlsFiles
	f.cert, f.key, _ = testcert.Write(t, dir, "good", time.Now().Add(24*time.Hour))
	_, f.otherKey, _ = testcert.Write(t, dir, "other", time.Now().Add(24*time.Hour))
	f.expCert, f.expKey, _ = testcert.Write(t, dir, "expired", time.Now().Add(-24*time.Hour))
	f.garbage, f.missing = filepath.Join(dir, "garbage.pem"), filepath.Join(dir, "missing.pem")
	writeFile(t, f.garbage, "not a certificate\n")
	return f
}

func TestTLSSettingsAreLoaded(t *testing.T) {
	f := newTLSFiles(t)
	tests := []struct {
		name, cert, key string
		want            string // "" = valid; else the suffix after "his.api." / "gateway."
	}{
		{"matching pair", f.cert, f.key, ""},
		{"expired pair still loads", f.expCert, f.expKey, ""},
		{"no TLS", "", "", ""},
		{"cert without key", f.cert, "", "tls_key: required when tls_cert is set"},
		{"key without cert", "", f.key, "tls_cert: required when tls_key is set"},
		{"cert missing", f.missing, f.key, "tls_cert: cannot read"},
		{"key missing", f.cert, f.missing, "tls_key: cannot read"},
		{"cert not PEM", f.garbage, f.key, "tls_cert: no PEM certificate"},
		{"key not PEM", f.cert, f.garbage, "tls_key: "},
		{"key is a certificate", f.cert, f.cert, "tls_key: "},
		{"cert is a key", f.key, f.key, "tls_cert: no PEM certificate"},
		{"mismatched pair", f.cert, f.otherKey, "tls_key: does not match tls_cert"},
	}
	for _, section := range []string{"his.api", "gateway"} {
		for _, tt := range tests {
			t.Run(section+"/"+tt.name, func(t *testing.T) {
				c := parseValid(t)
				if section == "gateway" {
					c.Gateway.Enabled = true
					c.Gateway.Terminals = []Terminal{{ID: "t1", Token: "0123456789abcdef"}}
					c.Gateway.TLSCert, c.Gateway.TLSKey = tt.cert, tt.key
				} else {
					c.HIS.API.TLSCert, c.HIS.API.TLSKey = tt.cert, tt.key
				}
				var want []string
				if tt.want != "" {
					want = []string{section + "." + tt.want}
				}
				wantFieldErrors(t, c.Validate(), want)
			})
		}
	}
}

// A disabled server's TLS files are not read.
func TestTLSOfDisabledServersIgnored(t *testing.T) {
	c := parseValid(t)
	c.HIS.API.Enabled = false
	c.HIS.API.TLSCert, c.HIS.API.TLSKey = "/nonexistent/api.crt", "/nonexistent/api.key"
	c.Gateway.TLSCert, c.Gateway.TLSKey = "/nonexistent/gw.crt", ""
	wantFieldErrors(t, c.Validate(), nil)
}

// `config check` and `run` read the file through Parse: a broken pair is
// refused with the field path and the reason.
func TestParseRefusesBrokenTLS(t *testing.T) {
	f := newTLSFiles(t)
	in := validDirect + "[his.api]\ntls_cert = " + quote(f.cert) + "\ntls_key = " + quote(f.otherKey) + "\n"
	_, err := Parse([]byte(in), "t.toml", noEnv)
	if err == nil || !strings.Contains(err.Error(), "his.api.tls_key: does not match tls_cert") {
		t.Fatalf("err = %v", err)
	}
}

func quote(s string) string { return "'" + s + "'" }

func TestExpiredCertificateIsAWarning(t *testing.T) {
	f := newTLSFiles(t)
	c := parseValid(t)
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings without TLS: %v", w)
	}
	c.HIS.API.TLSCert, c.HIS.API.TLSKey = f.expCert, f.expKey
	c.Gateway.Enabled = true
	c.Gateway.Terminals = []Terminal{{ID: "t1", Token: "0123456789abcdef"}}
	c.Gateway.TLSCert, c.Gateway.TLSKey = f.cert, f.key
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("expired certificate is an error: %v", errs)
	}
	w := c.Warnings()
	if len(w) != 1 || w[0].Path != "his.api.tls_cert" || !strings.Contains(w[0].Msg, "expired") {
		t.Fatalf("warnings = %v, want one his.api.tls_cert expired", w)
	}
}
