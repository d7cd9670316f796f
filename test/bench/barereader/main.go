//go:build linux

// Command barereader is the baseline of scripts/bench.sh's end-to-end
// measurements: the least a program can do to take scans from a serial
// port to a HIS WebSocket client. It opens the port (a pty of the fake
// scanner), reads it in chunks with blocking read(2) calls, splits the
// bytes on the suffix and writes each frame, as a small JSON message, to
// every WebSocket client connected on loopback, one after the other from
// the reading goroutine. Nothing else: no parsing, no platform, no disk,
// no log, no timers.
//
// It prints "listening ADDR" on stdout once the port is open and the
// listener bound. The WebSocket path is /v1/ws, as the agent's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
)

func main() {
	port := flag.String("port", "", "serial port (pty) to read")
	listen := flag.String("listen", "127.0.0.1:0", "WebSocket listen address")
	suffix := flag.String("suffix", "\r", "frame suffix")
	mode := flag.String("read", "poll", "poll: an os.File read through Go's poller; block: blocking read(2) calls on the fd")
	flag.Parse()
	if err := run(*port, *listen, []byte(*suffix), *mode); err != nil {
		fmt.Fprintln(os.Stderr, "barereader:", err)
		os.Exit(1)
	}
}

type hub struct {
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
}

func run(port, listen string, suffix []byte, mode string) error {
	if port == "" || len(suffix) == 0 {
		return fmt.Errorf("-port and a non-empty -suffix are required")
	}
	fd, err := unix.Open(port, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", port, err)
	}
	if err := raw(fd); err != nil {
		return err
	}
	var read func([]byte) (int, error)
	switch mode {
	case "block":
		read = func(b []byte) (int, error) { return unix.Read(fd, b) }
	case "poll":
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), port)
		read = f.Read
	default:
		return fmt.Errorf("-read %q: poll or block", mode)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	h := &hub{conns: map[*websocket.Conn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		h.mu.Lock()
		h.conns[c] = struct{}{}
		h.mu.Unlock()
		<-c.CloseRead(r.Context()).Done()
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	})
	go func() { _ = http.Serve(ln, mux) }()
	fmt.Printf("listening %s\n", ln.Addr())

	buf := make([]byte, 4096)
	var frame []byte
	for {
		n, err := read(buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return fmt.Errorf("read: %v", err) // the device went away
		}
		frame = append(frame, buf[:n]...)
		for {
			i := bytes.Index(frame, suffix)
			if i < 0 {
				break
			}
			h.broadcast(frame[:i])
			frame = frame[i+len(suffix):]
		}
	}
}

type message struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

func (h *hub) broadcast(frame []byte) {
	msg, _ := json.Marshal(message{Type: "scan", Data: string(frame)})
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Write(ctx, websocket.MessageText, msg)
		cancel()
	}
}

// raw puts the port in raw mode with blocking reads of at least one byte.
func raw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	return nil
}
