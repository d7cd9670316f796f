package verify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// HTTPOptions configures the HTTP client used towards a platform.
type HTTPOptions struct {
	ConnectTimeout time.Duration
	RequestTimeout time.Duration
	// CAFile holds extra PEM certificates to trust besides the system pool.
	CAFile string
}

// NewHTTPClient returns an http.Client with connect, TLS and overall
// timeouts. Certificate verification is always on.
func NewHTTPClient(o HTTPOptions) (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("ca_file: no PEM certificates found")
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   o.ConnectTimeout,
		TLSClientConfig:       tlsConf,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.RequestTimeout,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, Timeout: o.RequestTimeout, CheckRedirect: noRedirect}, nil
}

// noRedirect stops a client at the first redirect and hands the 30x
// answer back: a platform, gateway or proxy that redirects is answered as
// a configuration error, never followed (a 307/308 would re-send the
// signed request, token included, to wherever it points, even plain http).
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// withoutRedirects returns a copy of c (a default client when nil) that
// does not follow redirects, sharing c's transport.
func withoutRedirects(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: 5 * time.Second, CheckRedirect: noRedirect}
	}
	cp := *c
	cp.CheckRedirect = noRedirect
	return &cp
}

func isRedirect(status int) bool { return status >= 300 && status < 400 }

// redirectTarget returns where a redirect points, resolved against the
// request and without query, fragment or credentials; "" when resp is no
// redirect or names no valid target.
func redirectTarget(resp *http.Response) string {
	if !isRedirect(resp.StatusCode) {
		return ""
	}
	u, err := resp.Location()
	if err != nil {
		return ""
	}
	return bareURL(u)
}

// bareURL is u without query, fragment or credentials.
func bareURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

// redirectMsg describes a refused redirect from requested to target.
func redirectMsg(status int, requested, target string) string {
	if u, err := url.Parse(requested); err == nil {
		requested = bareURL(u)
	}
	if target == "" {
		return fmt.Sprintf("HTTP %d redirect from %s without a valid Location, not followed", status, requested)
	}
	msg := fmt.Sprintf("HTTP %d redirect from %s to %s, not followed", status, requested, target)
	if strings.HasPrefix(target, "http://") {
		msg += " (the target is plain http: the request would travel unencrypted)"
	}
	return msg
}
