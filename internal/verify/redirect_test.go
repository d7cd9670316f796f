package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
)

// A redirect from the platform, a gateway or the Su Kang Code service is
// never followed (a 307/308 would re-send the signed request and its token
// wherever it points, even to plain http): it is a configuration error
// that names the target without its query.
func TestRedirectsNotFollowed(t *testing.T) {
	var target hits
	dst := target.server(t)
	loc := dst.URL + "/steal?appToken=SECRET-TOKEN#frag"
	ctx := context.Background()
	clients := map[string]func(url string) error{
		"direct, default client": func(url string) error {
			_, err := NewEHC(EHCOptions{AppID: "a", AppSecret: "s", HospitalID: "1", BaseURL: url, TokenURL: url + "/token", BreakerFailures: 1}).
				Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: "x:1"})
			return err
		},
		"direct, caller's client": func(url string) error {
			return NewEHC(EHCOptions{AppID: "a", AppSecret: "s", HospitalID: "1", BaseURL: url, TokenURL: url + "/token", BreakerFailures: 1, HTTP: &http.Client{Timeout: 5 * time.Second}}).
				ReportHISData(ctx, card.Report{}, card.NewRequestID())
		},
		"gateway": func(url string) error {
			return NewGateway(GatewayOptions{URL: url, Token: "t", BreakerFailures: 1}).ReportHISData(ctx, card.Report{}, card.NewRequestID())
		},
		"skm": func(url string) error {
			_, err := NewSKM(SKMOptions{BaseURL: url, ScanPath: "/scan", Cipher: "none", Log: zerolog.Nop()}).
				Verify(ctx, card.Request{Kind: card.KindSKM, Text: "https://jsstm.jszwfw.gov.cn/jkm/2?t=GREEN0001"})
			return err
		},
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, loc, status)
		}))
		t.Cleanup(src.Close)
		for name, call := range clients {
			t.Run(name+"/"+http.StatusText(status), func(t *testing.T) {
				e := wantClass(t, call(src.URL), card.Fatal, 0)
				msg := e.Error()
				if !strings.Contains(msg, dst.URL+"/steal") || !strings.Contains(msg, "plain http") {
					t.Errorf("error does not name the plain-http target: %s", msg)
				}
				if strings.Contains(msg, "SECRET") || strings.Contains(msg, "frag") {
					t.Errorf("error carries the target's query: %s", msg)
				}
				if e.Unknown {
					t.Errorf("a refused redirect is not an unknown outcome: %+v", e)
				}
			})
		}
	}
	if n := target.n.Load(); n != 0 {
		t.Fatalf("redirect followed: the target got %d requests", n)
	}
}

// NewHTTPClient, the client the agent builds, stops at the redirect.
func TestNewHTTPClientDoesNotFollow(t *testing.T) {
	var target hits
	dst := target.server(t)
	src := httptest.NewServer(http.RedirectHandler(dst.URL, http.StatusTemporaryRedirect))
	t.Cleanup(src.Close)
	c, err := NewHTTPClient(HTTPOptions{ConnectTimeout: time.Second, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Post(src.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || target.n.Load() != 0 {
		t.Fatalf("status %d, target hit %d times: want the 307 back and no request to its target", resp.StatusCode, target.n.Load())
	}
}
