// Package serve runs the agent's HTTP servers (the HIS's local API, the
// gateway for terminals): a TLS pair is loaded when its server is added, so
// a broken file stops the start; every address is bound before any is
// served, so a port conflict fails the start instead of leaving half an
// agent; a stop gives requests a grace second, then closes the streams
// (WebSocket, SSE) that outlive it.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Group is a set of HTTP servers started and stopped together.
type Group struct {
	servers []entry
}

type entry struct {
	srv *http.Server
	tls bool
}

// Add adds a server; with a certificate it serves HTTPS (TLS 1.2 or newer).
func (g *Group) Add(srv *http.Server, certFile, keyFile string) error {
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	}
	g.servers = append(g.servers, entry{srv: srv, tls: certFile != ""})
	return nil
}

// Start binds every server's address, then serves them all; the returned
// func shuts them down and waits for them.
func (g *Group) Start(log zerolog.Logger) (stop func(), err error) {
	lns := make([]net.Listener, 0, len(g.servers))
	for _, e := range g.servers {
		ln, err := net.Listen("tcp", e.srv.Addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", e.srv.Addr, err)
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	for i, e := range g.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.serve(lns[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("addr", e.srv.Addr).Msg("server failed")
			}
		}()
		log.Info().Str("addr", lns[i].Addr().String()).Bool("tls", e.tls).Msg("listening")
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, e := range g.servers {
			if err := e.srv.Shutdown(ctx); err != nil {
				_ = e.srv.Close() // streams that outlive the grace second
			}
		}
		wg.Wait()
	}, nil
}

func (e entry) serve(ln net.Listener) error {
	if e.tls {
		return e.srv.ServeTLS(ln, "", "")
	}
	return e.srv.Serve(ln)
}
