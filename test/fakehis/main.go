// Command fakehis runs the fake hospital information system:
//
//	go run ./test/fakehis -addr 127.0.0.1:8490 -mllp 127.0.0.1:2575 -secret S -agent http://127.0.0.1:8470
//
// Open http://127.0.0.1:8490/ in a browser: the page connects to the agent's
// WebSocket, shows each patient and posts the usage report back. Pushes
// arrive at /push (HMAC checked); GET /_fake/stats shows what came in.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"scanagent/test/fakehis/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8490", "HTTP listen address (push receiver and browser page)")
	mllp := flag.String("mllp", "", "HL7 MLLP listen address, e.g. 127.0.0.1:2575 (off when empty)")
	secret := flag.String("secret", "", "shared secret of pushed bodies' HMAC")
	charset := flag.String("charset", "utf-8", "HL7 charset: utf-8 or gb18030")
	agent := flag.String("agent", "http://127.0.0.1:8470", "the agent's local API, for the browser page")
	nak := flag.Bool("nak", false, "answer every HL7 message with AE")
	readyFile := flag.String("ready-file", "", "write the HTTP listen address (and the MLLP one, on a second line) here once serving")
	flag.Parse()
	s := server.New(server.Options{Secret: *secret, Charset: *charset, AgentURL: *agent})
	s.SetNAK(*nak)
	mllpAddr := ""
	if *mllp != "" {
		ln, err := net.Listen("tcp", *mllp)
		if err != nil {
			log.Fatal(err)
		}
		go s.ServeMLLP(ln)
		mllpAddr = ln.Addr().String()
		fmt.Fprintf(os.Stderr, "fakehis: MLLP on %s\n", mllpAddr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *readyFile != "" {
		os.WriteFile(*readyFile, []byte(ln.Addr().String()+"\n"+mllpAddr+"\n"), 0o644)
	}
	fmt.Fprintf(os.Stderr, "fakehis: http://%s/ (agent %s)\n", ln.Addr(), *agent)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
