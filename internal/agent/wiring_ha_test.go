package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/ha"
	"scanagent/internal/verify"
)

func parse(t *testing.T, toml string) config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(toml), "w.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A terminal without [skm] of its own verifies Su Kang Codes through its
// gateways; with several, on the one that answers.
func TestTerminalVerifiesSKMThroughGateway(t *testing.T) {
	kinds := make(chan card.Kind, 4)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req card.Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		kinds <- req.Kind
		w.Write([]byte(`{"result":{"name":"张三","level":"green"}}`))
	}))
	defer gw.Close()
	cfg := parse(t, fmt.Sprintf("[agent]\ndata_dir = %q\n[platform]\nmode = \"gateway\"\ngateway_urls = [\"http://127.0.0.1:1\", %q]\ngateway_token = \"0123456789abcdef\"\n[his.api]\nenabled = false\n", t.TempDir(), gw.URL))
	a, err := build(cfg, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.skm.(*verify.Gateway); !ok {
		t.Fatalf("skm verifier = %T, want the gateway client", a.skm)
	}
	id, err := a.skm.Verify(context.Background(), card.Request{Kind: card.KindSKM, Text: "https://skm.jszwfw.gov.cn/x?c=1"})
	if err != nil || id.Name != "张三" || len(kinds) != 1 || <-kinds != card.KindSKM {
		t.Fatalf("SKM through the gateway: %+v %v", id, err)
	}
}

// A follower with followers_serve = false answers terminals 503, marked
// as not processed; its status stays served.
func TestFollowerAnswers503(t *testing.T) {
	node, err := ha.New(ha.Options{Endpoints: []string{"127.0.0.1:1"}, Key: make([]byte, 32), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	h := leaderOnly(node, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/verify", strings.NewReader("{}")))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get(verify.UnservedHeader) == "" {
		t.Fatalf("follower answered %d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status on a follower: %d", rec.Code)
	}
}
