package verify

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// stubPlatform serves getAppToken with a valid token and hands every other
// API call to api.
func stubPlatform(t *testing.T, api http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Write([]byte(`{"commonOut":{"resultCode":0},"rsp":{"appToken":"tok","expiresIn":7200}}`))
			return
		}
		api(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// stubEHC is a direct client of a stub platform.
func stubEHC(url string, c *clock) *EHC {
	return NewEHC(EHCOptions{AppID: "a", AppSecret: "s", HospitalID: "1", BaseURL: url, TokenURL: url + "/token",
		HTTP: &http.Client{Timeout: 5 * time.Second}, BreakerFailures: 1, BreakerCooldown: 30 * time.Second, Now: c.Now, Log: zerolog.Nop()})
}

// stubGateway is a terminal's client of a stub gateway.
func stubGateway(url string, c *clock) *Gateway {
	return NewGateway(GatewayOptions{URL: url, Token: "t", HTTP: &http.Client{Timeout: 5 * time.Second}, BreakerFailures: 1, BreakerCooldown: 30 * time.Second, Now: c.Now})
}

// hits counts the requests a server received.
type hits struct{ n atomic.Int32 }

func (h *hits) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.n.Add(1)
		w.Write([]byte(`{"commonOut":{"resultCode":0},"rsp":{"appToken":"stolen","expiresIn":7200}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}
