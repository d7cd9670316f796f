package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"scanagent/internal/loopback"
)

var (
	reDigits  = regexp.MustCompile(`^[0-9]+$`)
	reHex4    = regexp.MustCompile(`^(0x)?[0-9A-Fa-f]{4}$`)
	reName    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	logLevels = []string{"trace", "debug", "info", "warn", "error"}
)

type validator struct{ errs Errors }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{path, fmt.Sprintf(format, args...)})
}

func (v *validator) required(path, val string) bool {
	if strings.TrimSpace(val) == "" {
		v.add(path, "required")
		return false
	}
	return true
}

func (v *validator) oneOf(path, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		v.add(path, "must be one of %s, not %q", strings.Join(allowed, ", "), val)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration")
	}
}

func (v *validator) digits(path, val string) {
	if val != "" && !reDigits.MatchString(val) {
		v.add(path, "must be a numeric code, not %q", val)
	}
}

// url checks a platform URL: https, or http only towards a loopback host
// (the fakes and a local gateway on the same PC).
func (v *validator) url(path, val string, allowLAN bool) {
	if !v.required(path, val) {
		return
	}
	u, err := url.Parse(val)
	if err != nil || u.Host == "" {
		v.add(path, "must be an absolute URL")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowLAN && !loopback.Host(u.Hostname()) {
			v.add(path, "must use https (plain http is allowed only to a loopback address)")
		}
	default:
		v.add(path, "must be an http(s) URL")
	}
}

// Validate checks every field and returns all problems found.
func (c *Config) Validate() Errors {
	v := &validator{}
	v.oneOf("agent.offline", c.Agent.Offline, "refuse", "unverified")
	v.required("agent.data_dir", c.Agent.DataDir)
	v.positive("agent.shutdown_timeout", c.Agent.ShutdownTimeout)
	v.positive("agent.platform_budget", c.Agent.PlatformBudget)

	v.oneOf("log.level", c.Log.Level, logLevels...)
	v.oneOf("log.format", c.Log.Format, "auto", "json", "console")
	if c.Log.MaxSizeMB <= 0 {
		v.add("log.max_size_mb", "must be positive")
	}

	c.validatePlatform(v)
	c.validateHeartbeat(v)
	c.validateGateway(v)
	c.validateSKM(v)
	c.validateCode(v)
	c.validateSources(v)
	c.validateQueue(v)
	c.validateHIS(v)
	return v.errs
}

func (c *Config) validateGateway(v *validator) {
	g := &c.Gateway
	if !g.Enabled {
		if g.HA.Enabled {
			v.add("gateway.ha.enabled", "needs gateway.enabled = true: only gateways elect a token holder")
		}
		return
	}
	if c.Platform.Mode != "direct" {
		v.add("gateway.enabled", "a gateway must itself run with platform.mode = \"direct\"")
	}
	if _, _, err := net.SplitHostPort(g.Listen); err != nil {
		v.add("gateway.listen", "must be host:port")
	}
	v.keyPair("gateway", g.TLSCert, g.TLSKey)
	if len(g.Terminals) == 0 {
		v.add("gateway.terminal", "at least one terminal is required")
	}
	seen := map[string]bool{}
	for i, t := range g.Terminals {
		p := fmt.Sprintf("gateway.terminal[%d]", i)
		if v.required(p+".id", t.ID) && seen[t.ID] {
			v.add(p+".id", "duplicate terminal id %q", t.ID)
		}
		seen[t.ID] = true
		if len(t.Token.Reveal()) < 16 {
			v.add(p+".token", "required, at least 16 characters")
		}
	}
	c.validateFleet(v)
	c.validateHA(v)
}

func (c *Config) validateSKM(v *validator) {
	s := &c.SKM
	if !s.Enabled {
		return
	}
	v.url("skm.base_url", s.BaseURL, false)
	v.required("skm.app_mark", s.AppMark)
	v.required("skm.app_secret", s.AppSecret.Reveal())
	v.oneOf("skm.timestamp_unit", s.TimestampUnit, "ms", "s")
	v.oneOf("skm.cipher", s.Cipher, "aes-128-ecb", "sm4-ecb", "none")
	if s.Cipher != "none" && len(s.CipherKey.Reveal()) != 16 {
		v.add("skm.cipher_key", "must be exactly 16 bytes for %s", s.Cipher)
	}
	order := slices.Clone(s.SignOrder)
	slices.Sort(order)
	if !slices.Equal(order, []string{"appmark", "appsecret", "timestamp"}) {
		v.add("skm.sign_order", "must list appmark, appsecret and timestamp once each")
	}
	v.positive("skm.timeout", s.Timeout)
	if len(s.Hosts) == 0 {
		v.add("skm.hosts", "at least one host is required")
	}
}

func (c *Config) validateCode(v *validator) {
	v.positive("code.debounce", c.Code.Debounce+1) // 0 disables
	seen := map[string]bool{}
	for i, cc := range c.Code.Custom {
		p := fmt.Sprintf("code.custom[%d]", i)
		if !reName.MatchString(cc.Name) {
			v.add(p+".name", "must be lower-case letters, digits, _ or -, starting with a letter")
		} else if seen[cc.Name] {
			v.add(p+".name", "duplicate custom type %q", cc.Name)
		}
		seen[cc.Name] = true
		if _, err := regexp.Compile(cc.Pattern); err != nil || cc.Pattern == "" {
			v.add(p+".pattern", "invalid regular expression: %v", err)
		}
	}
}

// ParseSuffix turns a source's suffix setting into bytes; nil means none
// (frames end by inter-character gap).
func ParseSuffix(s string) ([]byte, error) {
	switch strings.ToLower(s) {
	case "cr":
		return []byte{'\r'}, nil
	case "lf":
		return []byte{'\n'}, nil
	case "crlf":
		return []byte{'\r', '\n'}, nil
	case "tab":
		return []byte{'\t'}, nil
	case "none":
		return nil, nil
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hex.DecodeString(s[2:])
		if err == nil && len(b) >= 1 && len(b) <= 4 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be cr, lf, crlf, tab, none or 1-4 hex bytes like 0x03, not %q", s)
}

// ParseUSBID parses a 4-hex-digit USB vendor or product id.
func ParseUSBID(s string) (uint16, error) {
	if !reHex4.MatchString(s) {
		return 0, fmt.Errorf("must be 4 hex digits like 0c2e, not %q", s)
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 16)
	return uint16(n), err
}

func (c *Config) validateSources(v *validator) {
	seen := map[string]bool{}
	for i, s := range c.Sources {
		p := fmt.Sprintf("source[%d]", i)
		if seen[s.Name] {
			v.add(p+".name", "duplicate source name %q", s.Name)
		}
		seen[s.Name] = true
		v.oneOf(p+".type", s.Type, "serial", "hid", "evdev")
		usb := func(required bool) {
			for _, f := range []struct{ name, val string }{{"vid", s.VID}, {"pid", s.PID}} {
				if f.val == "" {
					if required {
						v.add(p+"."+f.name, "required")
					}
					continue
				}
				if _, err := ParseUSBID(f.val); err != nil {
					v.add(p+"."+f.name, "%v", err)
				}
			}
		}
		switch s.Type {
		case "serial":
			if s.Port == "" && s.VID == "" {
				v.add(p+".port", "set port (COM3, /dev/ttyACM0) or vid and pid")
			}
			if s.Port != "" && s.VID != "" {
				v.add(p+".port", "set either port or vid/pid, not both")
			}
			usb(s.VID != "" || s.PID != "")
			if s.Baud < 300 || s.Baud > 921600 {
				v.add(p+".baud", "must be between 300 and 921600")
			}
			if s.DataBits < 5 || s.DataBits > 8 {
				v.add(p+".data_bits", "must be 5, 6, 7 or 8")
			}
			v.oneOf(p+".parity", s.Parity, "none", "odd", "even", "mark", "space")
			v.oneOf(p+".stop_bits", s.StopBits, "1", "1.5", "2")
			if _, err := ParseSuffix(s.Suffix); err != nil {
				v.add(p+".suffix", "%v", err)
			}
			v.positive(p+".gap", s.Gap)
		case "hid":
			usb(true)
			v.oneOf(p+".layout", s.Layout, "auto", "honeywell", "newland")
		case "evdev":
			v.required(p+".device", s.Device)
		}
		if s.MaxFrame < 1 || s.MaxFrame > 4096 {
			v.add(p+".max_frame", "must be between 1 and 4096")
		}
		v.reportCodes(p, s)
	}
}

// DecodeKey decodes a 32-byte key given as 64 hex characters or Base64.
func DecodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, fmt.Errorf("must be 32 bytes as 64 hex characters or Base64")
}

func (c *Config) validateQueue(v *validator) {
	q := &c.Queue
	v.required("queue.path", q.Path)
	if q.MaxRecords < 1 {
		v.add("queue.max_records", "must be positive")
	}
	if q.MaxBytes < 1<<20 {
		v.add("queue.max_bytes", "must be at least 1048576 (1 MiB)")
	}
	v.oneOf("queue.full_policy", q.FullPolicy, "reject", "drop_oldest")
	if q.BatchWindow < 0 || q.BatchWindow.D() > time.Second {
		v.add("queue.batch_window", "must be between 0 (commit at once; producers that arrive during a commit share the next) and 1s")
	}
	if q.Concurrency < 1 || q.Concurrency > 64 {
		v.add("queue.concurrency", "must be between 1 and 64")
	}
	v.positive("queue.retry_min", q.RetryMin)
	if q.RetryMax < q.RetryMin {
		v.add("queue.retry_max", "must not be below queue.retry_min")
	}
	if q.Encrypt && q.Key != "" { // no key: one is generated (GeneratedKeyPath)
		if _, err := DecodeKey(q.Key.Reveal()); err != nil {
			v.add("queue.key", "%v", err)
		}
	}
}

func (c *Config) validateHIS(v *validator) {
	if p := c.HIS.Push; p.Enabled {
		// Plain http is allowed: HIS servers on the LAN often have no TLS;
		// the HMAC protects the body's integrity, not its confidentiality.
		v.url("his.push.url", p.URL, true)
		if len(p.Secret.Reveal()) < 16 {
			v.add("his.push.secret", "required, at least 16 characters")
		}
		v.positive("his.push.timeout", p.Timeout)
		if p.Retries < 0 || p.Retries > 5 {
			v.add("his.push.retries", "must be between 0 and 5")
		}
	}
	if h := c.HIS.HL7; h.Enabled {
		if _, _, err := net.SplitHostPort(h.Addr); err != nil {
			v.add("his.hl7.addr", "must be host:port")
		}
		v.oneOf("his.hl7.charset", strings.ToLower(h.Charset), "utf-8", "gb18030")
		if h.Template != "" {
			if _, err := template.New("hl7").Parse(h.Template); err != nil {
				v.add("his.hl7.template", "%v", err)
			}
		}
		v.positive("his.hl7.timeout", h.Timeout)
	}
	c.validateAPI(v)
}

func (c *Config) validateAPI(v *validator) {
	a := &c.HIS.API
	if !a.Enabled {
		return
	}
	v.keyPair("his.api", a.TLSCert, a.TLSKey)
	if a.MaxStreamClients < 1 {
		v.add("his.api.max_stream_clients", "must be at least 1")
	}
	for i, o := range a.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Host == "" || u.Path != "" {
			v.add(fmt.Sprintf("his.api.allowed_origins[%d]", i), "must be an origin like http://his.local:8080, not %q", o)
		}
	}
	for i, h := range a.AllowedHosts {
		if !validHost(h) {
			v.add(fmt.Sprintf("his.api.allowed_hosts[%d]", i), "must be a host name or IP address, optionally with :port (his.local, 10.0.0.5:8470, [::1]:8470), not %q", h)
		}
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		v.add("his.api.listen", "must be host:port")
		return
	}
	if !loopback.Host(host) {
		if !a.AllowRemote {
			v.add("his.api.listen", "binds beyond loopback: set his.api.allow_remote = true and a token to allow it")
		} else if len(a.Token.Reveal()) < 16 {
			v.add("his.api.token", "required (at least 16 characters) when the API is reachable from the network")
		}
	}
}

var reHostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)

// validHost accepts what a Host header may carry: a DNS name or an IP
// address (IPv6 bare or in brackets), with or without a port.
func validHost(h string) bool {
	host := h
	if hp, port, err := net.SplitHostPort(h); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
		host = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		host = h[1 : len(h)-1]
	}
	if strings.HasPrefix(h, "[") {
		return strings.Contains(host, ":") && net.ParseIP(host) != nil
	}
	return net.ParseIP(host) != nil || len(host) <= 253 && reHostName.MatchString(host)
}
