package serve

import (
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

func TestServeAndStop(t *testing.T) {
	var g Group
	g.Add(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })}, "", "")
	stop, err := g.Start(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
