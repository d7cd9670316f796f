package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Duration is a time.Duration written as a Go duration string ("250ms").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 500ms, 5s, 2m)", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Secret is a credential. It prints as [redacted] in every format so a
// dumped configuration never carries it; Reveal returns the value.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String redacts.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText redacts.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText stores the value.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// GoString redacts (for %#v).
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// Errors is a list of configuration problems, one per line when printed.
type Errors []error

func (e Errors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "\n")
}

// FieldError is a validation problem at a field path such as
// "platform.hospital_id" or "source[1].baud".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Env gives environment variables; os.LookupEnv in production.
type Env func(string) (string, bool)

// Load reads, parses and validates the file at path, with secrets from the
// process environment.
func Load(path string) (Config, error) {
	return LoadEnv(path, os.LookupEnv)
}

// LoadEnv is Load with an explicit environment.
func LoadEnv(path string, env Env) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, env)
}

// Parse decodes data (named name in messages) over the defaults, resolves
// secrets and validates. Every problem found is returned in Errors.
func Parse(data []byte, name string, env Env) (Config, error) {
	c := Default()
	c.Path = name
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeErrors(name, err)
	}
	c.fill()
	errs := c.resolveSecrets(env)
	errs = append(errs, c.Validate()...)
	if len(errs) > 0 {
		return Config{}, errs
	}
	return c, nil
}

func decodeErrors(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make(Errors, 0, len(strict.Errors))
		for i := range strict.Errors {
			de := &strict.Errors[i]
			row, col := de.Position()
			errs = append(errs, fmt.Errorf("%s:%d:%d: unknown key %q", name, row, col, strings.Join(de.Key(), ".")))
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			msg = strings.Join(k, ".") + ": " + msg
		}
		return Errors{fmt.Errorf("%s:%d:%d: %s", name, row, col, msg)}
	}
	return Errors{fmt.Errorf("%s: %w", name, err)}
}

// fill completes defaults that depend on other fields or on the host.
func (c *Config) fill() {
	if c.Agent.TerminalID == "" {
		if h, err := os.Hostname(); err == nil {
			c.Agent.TerminalID = h
		}
	}
	for i := range c.Sources {
		c.Sources[i].applyDefaults()
		if c.Sources[i].Name == "" {
			c.Sources[i].Name = fmt.Sprintf("source%d", i)
		}
	}
	if c.Queue.Path == "" {
		c.Queue.Path = filepath.Join(c.Agent.DataDir, "outbox.db")
	}
}

type secretRef struct {
	path string
	val  *Secret
	file string
	env  string
}

func (c *Config) secretRefs() []secretRef {
	refs := []secretRef{
		{"platform.app_secret", &c.Platform.AppSecret, c.Platform.AppSecretFile, "SCANAGENT_APP_SECRET"},
		{"platform.gateway_token", &c.Platform.GatewayToken, c.Platform.GatewayTokenFile, "SCANAGENT_GATEWAY_TOKEN"},
		{"skm.app_secret", &c.SKM.AppSecret, c.SKM.AppSecretFile, "SCANAGENT_SKM_APP_SECRET"},
		{"skm.cipher_key", &c.SKM.CipherKey, c.SKM.CipherKeyFile, "SCANAGENT_SKM_CIPHER_KEY"},
		{"queue.key", &c.Queue.Key, c.Queue.KeyFile, "SCANAGENT_QUEUE_KEY"},
		{"his.api.token", &c.HIS.API.Token, c.HIS.API.TokenFile, "SCANAGENT_HIS_TOKEN"},
		{"his.push.secret", &c.HIS.Push.Secret, c.HIS.Push.SecretFile, "SCANAGENT_PUSH_SECRET"},
		{"gateway.ha.token_key", &c.Gateway.HA.TokenKey, c.Gateway.HA.TokenKeyFile, "SCANAGENT_HA_TOKEN_KEY"},
		{"gateway.fleet_token", &c.Gateway.FleetToken, c.Gateway.FleetTokenFile, "SCANAGENT_FLEET_TOKEN"},
	}
	for i := range c.Gateway.Terminals {
		t := &c.Gateway.Terminals[i]
		refs = append(refs, secretRef{fmt.Sprintf("gateway.terminal[%d].token", i), &t.Token, t.TokenFile, ""})
	}
	return refs
}

// resolveSecrets applies, in rising precedence, the inline value, the
// *_file path and the SCANAGENT_* environment variable.
func (c *Config) resolveSecrets(env Env) Errors {
	var errs Errors
	for _, r := range c.secretRefs() {
		if r.file != "" {
			if *r.val != "" {
				errs = append(errs, &FieldError{r.path, "set either the value or " + r.path + "_file, not both"})
				continue
			}
			b, err := os.ReadFile(r.file)
			if err != nil {
				errs = append(errs, &FieldError{r.path + "_file", fmt.Sprintf("cannot read secret file: %v", err)})
				continue
			}
			*r.val = Secret(strings.TrimSpace(string(b)))
		}
		if r.env != "" && env != nil {
			if v, ok := env(r.env); ok && v != "" {
				*r.val = Secret(v)
			}
		}
	}
	return errs
}

func defaultDataDir() string {
	if runtime.GOOS == "windows" {
		if pd := os.Getenv("ProgramData"); pd != "" {
			return filepath.Join(pd, "scanagent")
		}
		return `C:\ProgramData\scanagent`
	}
	return "/var/lib/scanagent"
}
