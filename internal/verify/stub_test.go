package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
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

// upstreamStub is an Upstream of funcs; nil funcs succeed.
type upstreamStub struct {
	report func(ctx context.Context, r card.Report, requestID string) error
}

func (upstreamStub) Verify(context.Context, card.Request) (card.Identity, error) {
	return card.Identity{}, nil
}
func (u upstreamStub) ReportHISData(ctx context.Context, r card.Report, requestID string) error {
	if u.report == nil {
		return nil
	}
	return u.report(ctx, r, requestID)
}
func (upstreamStub) BindCardRelation(context.Context, card.Binding, string) error { return nil }

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

// startGateway serves up as a gateway for one terminal whose token is "t".
func startGateway(t *testing.T, up Upstream) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewGatewayServer(up, map[string]string{"counter-01": "t"}, nil, zerolog.Nop()).Handler())
	t.Cleanup(srv.Close)
	return srv
}
