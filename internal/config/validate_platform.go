package config

import (
	"fmt"
	"strings"

	"scanagent/internal/card"
)

// This file holds the checks that make sure the configuration can produce
// calls the platform accepts: the credentials and URLs of each mode, the
// required fields of verifyQRCode (guide §3.2.11) and reportHISData
// (§3.2.7), and code values from the guide's tables (§3.3).

func (c *Config) validatePlatform(v *validator) {
	p := &c.Platform
	v.oneOf("platform.mode", p.Mode, "direct", "gateway", "off")
	unconfigured := len(c.Unconfigured()) > 0
	switch p.Mode {
	case "direct":
		if !unconfigured {
			v.required("platform.app_id", p.AppID)
			v.required("platform.app_secret", p.AppSecret.Reveal())
			v.required("platform.hospital_id", p.HospitalID)
		}
		v.url("platform.base_url", p.BaseURL, false)
		v.url("platform.token_url", p.TokenURL, false)
		for path, u := range map[string]string{
			"platform.urls.get_health_card_by_qr_code": p.URLs.GetHealthCardByQRCode,
			"platform.urls.verify_qr_code":             p.URLs.VerifyQRCode,
			"platform.urls.report_his_data":            p.URLs.ReportHISData,
			"platform.urls.bind_card_relation":         p.URLs.BindCardRelation,
		} {
			if u != "" {
				v.url(path, u, false)
			}
		}
	case "gateway":
		if !unconfigured {
			c.validateGatewayURLs(v)
			v.required("platform.gateway_token", p.GatewayToken.Reveal())
		}
		if p.AppSecret != "" {
			v.add("platform.app_secret", "must not be set on a terminal in gateway mode: only the gateway holds it")
		}
	}
	c.validateVerifyFields(v)
	v.positive("platform.connect_timeout", p.ConnectTimeout)
	v.positive("platform.request_timeout", p.RequestTimeout)
	v.positive("platform.breaker_cooldown", p.BreakerCooldown)
	v.positive("platform.rate_limit_pause", p.RateLimitPause)
	if p.BreakerFailures < 1 {
		v.add("platform.breaker_failures", "must be at least 1")
	}
	if p.Retries < 0 || p.Retries > 10 {
		v.add("platform.retries", "must be between 0 and 10")
	}
	v.oneOf("platform.report_id_field", p.ReportIDField, "idCardNumber", "idCard")
}

// Unconfigured lists what a fresh install has still to fill in before the
// agent can go live: the platform credentials in direct mode, or the
// gateway and this terminal's token in gateway mode — when none of them is
// set (the shipped configuration). Once any is set, Validate names whatever
// else is missing instead.
func (c *Config) Unconfigured() []string {
	p := &c.Platform
	switch {
	case p.Mode == "direct" && p.AppID == "" && p.AppSecret.Reveal() == "" && p.HospitalID == "":
		return append([]string{"platform.app_id", "platform.app_secret", "platform.hospital_id"}, c.missingVerifyFields()...)
	case p.Mode == "gateway" && len(p.Gateways()) == 0 && p.GatewayToken.Reveal() == "":
		return []string{"platform.gateway_url", "platform.gateway_token"}
	}
	return nil
}

// validateGatewayURLs checks a terminal's gateways: gateway_url, or the
// list gateway_urls (most preferred first), each an http(s) URL, no
// gateway twice.
func (c *Config) validateGatewayURLs(v *validator) {
	p := &c.Platform
	switch {
	case p.GatewayURL != "" && len(p.GatewayURLs) > 0:
		v.add("platform.gateway_urls", "set gateway_url (one gateway) or gateway_urls (several), not both")
	case len(p.GatewayURLs) == 0:
		v.url("platform.gateway_url", p.GatewayURL, true)
	default:
		seen := map[string]bool{}
		for i, u := range p.GatewayURLs {
			path := fmt.Sprintf("platform.gateway_urls[%d]", i)
			v.url(path, u, true)
			if k := strings.TrimRight(u, "/"); seen[k] {
				v.add(path, "%q is listed twice", u)
			} else {
				seen[k] = true
			}
		}
	}
}

// missingVerifyFields lists verifyQRCode's required fields left empty.
func (c *Config) missingVerifyFields() []string {
	p := &c.Platform
	var missing []string
	for _, f := range []struct{ path, val string }{
		{"platform.medical_step", p.MedicalStep},
		{"platform.use_city_code", p.UseCityCode},
		{"platform.use_city_name", p.UseCityName},
		{"platform.hospital_code", p.HospitalCode},
		{"platform.hospital_name", p.HospitalName},
	} {
		if strings.TrimSpace(f.val) == "" {
			missing = append(missing, f.path)
		}
	}
	return missing
}

// validateVerifyFields checks verifyQRCode's required fields. An agent
// that calls the platform itself (mode "direct", which includes a gateway
// server) sends them with every dynamic code; a terminal in mode "gateway"
// does not need them: its gateway fills them in.
func (c *Config) validateVerifyFields(v *validator) {
	p := &c.Platform
	if p.Mode == "direct" && c.Unconfigured() == nil {
		for _, path := range c.missingVerifyFields() {
			v.add(path, "required: verifyQRCode sends it with every dynamic code (guide §3.2.11)")
		}
	}
	if p.MedicalStep != "" {
		v.scene("platform.medical_step", p.MedicalStep)
	}
	v.digits("platform.use_city_code", p.UseCityCode)
}

// reportCodes checks a source's usage-report settings (prefix p names the
// source, e.g. "source[0]"). The scene and channel go into verifyQRCode for
// a dynamic code (medicalStep, useScene, useChannel) and into reportHISData
// for a static code or an ID number, which needs both, and a department for
// the registration scenes.
func (v *validator) reportCodes(p string, s Source) {
	switch {
	case s.Scene != "":
		v.scene(p+".scene", s.Scene)
	case s.CardChannel != "":
		v.add(p+".scene", "required when card_channel is set: a usage report needs both (guide §3.2.7)")
	}
	switch {
	case s.CardChannel != "":
		v.channel(p+".card_channel", s.CardChannel)
	case s.Scene != "":
		v.add(p+".card_channel", "required when scene is set: a usage report needs both (guide §3.2.7)")
	}
	if card.SceneNeedsDepartment(s.Scene) && strings.TrimSpace(s.Department) == "" {
		name, _ := card.SceneName(s.Scene)
		v.add(p+".department", "required for scene %s (%s): reportHISData needs the department for 010101, 0101011 and 0101012 (guide §3.2.7)", s.Scene, name)
	}
}

// scene checks a 用卡环节 code against the guide's table (§3.3.1).
func (v *validator) scene(path, val string) {
	if _, ok := card.SceneName(val); !ok {
		v.add(path, "%q is not a 用卡环节 code of the guide's table (§3.3.1): use one of %s", val, strings.Join(card.Scenes(), ", "))
	}
}

// channel checks a 用卡渠道 code against the guide's table (§3.3.3).
func (v *validator) channel(path, val string) {
	if _, ok := card.ChannelCode(val); ok {
		return
	}
	codes := card.Channels()
	for i, c := range codes {
		name, _ := card.ChannelName(c)
		codes[i] = c + " " + name
	}
	v.add(path, "%q is not a 用卡渠道 of the guide's table (§3.3.3): use one of %s (the code or its name)", val, strings.Join(codes, ", "))
}
