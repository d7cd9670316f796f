package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"scanagent/internal/scanner"
)

func cmdPorts(_ context.Context, args []string, sio IO) error {
	fs := newFlags("ports", "scanagent ports [--json]", sio)
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	if err := parseAll(fs, args); err != nil {
		return err
	}
	inv := scanner.ListPorts()
	if *asJSON {
		enc := json.NewEncoder(sio.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	}
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL PORT\tVID:PID\tSERIAL NUMBER\tPRODUCT")
	if len(inv.Serial) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	for _, p := range inv.Serial {
		id := "-"
		if p.USB {
			id = strings.ToLower(p.VID + ":" + p.PID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, id, p.SerialNumber, p.Product)
	}
	fmt.Fprintln(tw, "\t\t\t")
	fmt.Fprintln(tw, "HID DEVICE\tVID:PID\tUSAGE PAGE\tPRODUCT (LAYOUT)")
	if len(inv.HID) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t")
	}
	for _, h := range inv.HID {
		prod := strings.TrimSpace(h.Manufacturer + " " + h.Product)
		if h.Layout != "" {
			prod += " (" + h.Layout + ")"
		}
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\n", h.Path, h.VID, h.PID, h.UsagePage, prod)
	}
	tw.Flush()
	for _, n := range inv.Notes {
		fmt.Fprintln(sio.Out, "note:", n)
	}
	return nil
}
