// Package configs embeds the annotated sample configuration so the binary
// can print it (`scanagent config sample`), the demo can run on it, and
// tests can prove it valid; Shipped derives from it the configuration the
// packages install.
package configs

import (
	"bytes"
	_ "embed"
	"regexp"
)

// Sample is scanagent.toml: every key, annotated, pointing at the demo's
// fake platform on loopback with the guide's example credentials.
//
//go:embed scanagent.toml
var Sample []byte

// shippedEdits turn the sample into the packaged configuration: no
// credentials, no hospital, the production platform (the defaults).
var shippedEdits = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?m)^(app_id|app_secret|hospital_id|use_city_code|use_city_name|hospital_code|hospital_name) = "[^"]*"`), `$1 = ""`},
	{regexp.MustCompile(`(?m)^(base_url|token_url) = "http://127\.0\.0\.1[^"]*"\n`), ""},
	{regexp.MustCompile(`(?m)^allowed_origins = \["http://127\.0\.0\.1:8490"\]`), `allowed_origins = []`},
	{regexp.MustCompile(`(?s)# As shipped, this file points.*?platform\.app_secret_file\.\n`), `# NOT CONFIGURED YET: the agent starts, serves its status page and waits.
# Fill in platform.app_id, hospital_id and the secret (app_secret, or better
# app_secret_file / SCANAGENT_APP_SECRET), and the verifyQRCode fields
# use_city_code, use_city_name, hospital_code and hospital_name — or set
# platform.mode = "gateway" with gateway_url and gateway_token — then check
# with "scanagent config check -c FILE" and restart the service.
`},
}

// Shipped is the configuration the .deb and the MSI install: the sample
// with the platform credentials and the hospital's details empty, and the
// platform's production URLs. `config check` calls it "not configured
// yet", and the service idles, saying what to fill in, until it is.
func Shipped() []byte {
	out := bytes.Clone(Sample)
	for _, e := range shippedEdits {
		out = e.re.ReplaceAll(out, []byte(e.with))
	}
	return out
}
