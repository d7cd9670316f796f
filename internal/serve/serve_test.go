package serve

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A port conflict fails the start and leaves nothing listening.
func TestStartBindsAllOrNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, _ := net.Listen("tcp", "127.0.0.1:0")
	freeAddr := free.Addr().String()
	free.Close()
	var g Group
	g.Add(&http.Server{Addr: freeAddr, Handler: http.NotFoundHandler()}, "", "")
	g.Add(&http.Server{Addr: busy.Addr().String(), Handler: http.NotFoundHandler()}, "", "")
	if _, err := g.Start(zerolog.Nop()); err == nil || !strings.Contains(err.Error(), busy.Addr().String()) {
		t.Fatalf("Start = %v, want the busy address named", err)
	}
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the first address is still bound after the failed start: %v", err)
	}
	ln.Close()
}

func TestAddRefusesBrokenTLSPair(t *testing.T) {
	var g Group
	if err := g.Add(&http.Server{}, "/nonexistent/cert.pem", "/nonexistent/key.pem"); err == nil {
		t.Fatal("a missing certificate was accepted")
	}
}

// Start serves on the bound address (logged as "listening"); stop closes it.
func TestServeAndStop(t *testing.T) {
	var g Group
	g.Add(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })}, "", "")
	var logs bytes.Buffer
	stop, err := g.Start(zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	var line struct{ Addr, Message string }
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line.Message != "listening" {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	resp, err := http.Get("http://" + line.Addr + "/")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("served: %v %v", resp, err)
	}
	resp.Body.Close()
	stop()
	if _, err := http.Get("http://" + line.Addr + "/"); err == nil {
		t.Fatal("still serving after stop")
	}
}
