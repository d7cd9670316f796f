//go:build !windows

// Command fakescanner is a fake serial barcode scanner on a pseudo-terminal:
//
//	go run ./test/fakescanner -link /tmp/scanner [-baud 9600] [-suffix cr|lf|crlf|none] [-aim ]Q1] [-repeat N -every 200ms] [-file FILE]
//
// It types each line of stdin (or -file) like a real device. The lines
// "unplug" and "replug" pull and reinsert the cable; "sleep 500ms" pauses.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"scanagent/test/fakescanner/device"
)

func main() {
	link := flag.String("link", "", "path of the symlink to the pty slave (required)")
	baud := flag.Int("baud", 9600, "baud rate to pace the bytes at (0: no pacing)")
	suffix := flag.String("suffix", "cr", "frame suffix: cr, lf, crlf, none")
	aim := flag.String("aim", "", "AIM symbology prefix to send, e.g. ]Q1")
	repeat := flag.Int("repeat", 0, "extra times each payload is sent (held trigger)")
	every := flag.Duration("every", 200*time.Millisecond, "interval between repeats")
	file := flag.String("file", "", "read payloads from this file instead of stdin")
	hold := flag.Bool("hold", true, "keep the device plugged after the input ends, until SIGINT/SIGTERM")
	flag.Parse()
	if *link == "" {
		flag.Usage()
		os.Exit(2)
	}
	sfx, ok := map[string]string{"cr": "\r", "lf": "\n", "crlf": "\r\n", "none": ""}[*suffix]
	if !ok {
		log.Fatalf("bad -suffix %q", *suffix)
	}
	d, err := device.New(device.Options{Link: *link, Baud: *baud, Suffix: sfx, AIM: *aim, Repeat: *repeat, Every: *every})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Fprintf(os.Stderr, "fakescanner: %s -> %s\n", *link, d.Path())

	var in io.Reader = os.Stdin
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		in = f
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 8192), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-sig:
			return
		case line, ok := <-lines:
			if !ok {
				if *hold {
					<-sig
				}
				return
			}
			if err := command(d, line); err != nil {
				fmt.Fprintln(os.Stderr, "fakescanner:", err)
			}
		}
	}
}

func command(d *device.Device, line string) error {
	switch {
	case line == "unplug":
		return d.Unplug()
	case line == "replug":
		return d.Replug()
	case strings.HasPrefix(line, "sleep "):
		dur, err := time.ParseDuration(strings.TrimPrefix(line, "sleep "))
		if err != nil {
			return err
		}
		time.Sleep(dur)
		return nil
	case line == "":
		return nil
	}
	return d.Type([]byte(line))
}
