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
	// One table, a header row per section: no blank or padding-only rows.
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL PORT\tVID:PID\tSERIAL NUMBER\tPRODUCT")
	if len(inv.Serial) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	for _, p := range inv.Serial {
		id := "-"
		if p.USB {
			id = strings.ToLower(p.VID + ":" + p.PID)
		}
		fmt.Fprintln(tw, strings.Join([]string{p.Name, id, dash(p.SerialNumber), dash(p.Product)}, "\t"))
	}
	fmt.Fprintln(tw, "HID DEVICE\tVID:PID\tUSAGE PAGE\tPRODUCT (LAYOUT)")
	if len(inv.HID) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	for _, h := range inv.HID {
		prod := strings.TrimSpace(h.Manufacturer + " " + h.Product)
		if h.Layout != "" {
			prod += " (" + h.Layout + ")"
		}
		fmt.Fprintln(tw, strings.Join([]string{h.Path, h.VID + ":" + h.PID, dash(h.UsagePage), dash(prod)}, "\t"))
	}
	tw.Flush()
	for _, n := range inv.Notes {
		fmt.Fprintln(sio.Out, "note:", n)
	}
	return nil
}

// dash stands in for an empty cell, so no row ends in padding.
func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
