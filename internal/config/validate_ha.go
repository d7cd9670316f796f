package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// validateHA checks [gateway.ha] of an enabled gateway.
func (c *Config) validateHA(v *validator) {
	h := &c.Gateway.HA
	if !h.Enabled {
		return
	}
	if len(h.Endpoints) == 0 {
		v.add("gateway.ha.endpoints", "at least one etcd endpoint is required (three for a cluster that survives the loss of one)")
	}
	tls := h.TLSCert != "" || h.CAFile != ""
	for i, e := range h.Endpoints {
		path := fmt.Sprintf("gateway.ha.endpoints[%d]", i)
		if msg := checkEndpoint(e, tls); msg != "" {
			v.add(path, "%s", msg)
		}
	}
	v.keyPair("gateway.ha", h.TLSCert, h.TLSKey)
	if h.CAFile != "" {
		if _, err := os.ReadFile(h.CAFile); err != nil {
			v.add("gateway.ha.ca_file", "cannot read: %v", err)
		}
	}
	if strings.TrimSpace(h.Prefix) == "" || !strings.HasPrefix(h.Prefix, "/") {
		v.add("gateway.ha.prefix", "must start with / (e.g. \"/scanagent/\")")
	}
	// The fence needs the lease to outlive a whole getAppToken call.
	if min := c.Platform.RequestTimeout.D() + 2*time.Second; h.LeaseTTL.D() < min || h.LeaseTTL.D() > 5*time.Minute {
		v.add("gateway.ha.lease_ttl", "must be between platform.request_timeout + 2s (%v) and 5m: the leader fetches a token only while its lease outlasts the call", min)
	} else if h.LeaseTTL.D()%time.Second != 0 {
		v.add("gateway.ha.lease_ttl", "must be whole seconds (etcd leases count seconds)")
	}
	if _, err := DecodeKey(h.TokenKey.Reveal()); err != nil {
		v.add("gateway.ha.token_key", "required, the same on every gateway: the token is stored in etcd sealed with it; %v (or token_key_file, or SCANAGENT_HA_TOKEN_KEY)", err)
	}
	if h.MinFetchInterval.D() < time.Second {
		v.add("gateway.ha.min_fetch_interval", "must be at least 1s: every getAppToken invalidates the token all gateways use")
	}
	v.positive("gateway.ha.token_wait", h.TokenWait)
}

// checkEndpoint checks one etcd endpoint: host:port or an http(s) URL;
// with TLS configured it must not be plain http.
func checkEndpoint(e string, tls bool) string {
	if !strings.Contains(e, "://") {
		if _, _, err := net.SplitHostPort(e); err != nil {
			return fmt.Sprintf("must be host:port or an http(s) URL, not %q", e)
		}
		return ""
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Sprintf("must be host:port or an http(s) URL without a path, not %q", e)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("must be an http(s) URL, not %q", e)
	case u.Scheme == "http" && tls:
		return "is plain http while tls_cert / ca_file are set: use https"
	}
	return ""
}
