// Package fleet owns the fleet view of a hospital's terminals: the
// heartbeat a terminal sends its gateway (what it holds, its bounds, its
// validation and masking: Heartbeat, Decode, Clip), the registries where
// gateways keep the last heartbeat of each terminal (Memory for a single
// gateway; Etcd, under <prefix>fleet/, shared by the gateways of
// [gateway.ha]) and what a viewer sees of them (View: online, silent,
// colour, sort order; Count for the metrics).
//
// The gateway server declares the registry interface it consumes and
// serves the view; the agent builds a heartbeat from its status and wires
// a registry in. fleet imports no stage: only mask, and the etcd client.
package fleet

import (
	"time"
)

// Health levels a terminal reports: the agent's health verdict (the
// "health" of its /v1/status).
const (
	HealthOK           = "ok"
	HealthDegraded     = "degraded"
	HealthCritical     = "critical"
	HealthUnconfigured = "unconfigured"
)

// Bounds of a heartbeat: a terminal cannot make a gateway store more than
// MaxBody bytes, whatever it sends.
const (
	// MaxBody bounds a heartbeat's encoded size (the gateway refuses a
	// larger body). A heartbeat within the other bounds always fits.
	MaxBody = 32 << 10
	// MaxName bounds a name: campus, version, scanner name, reason code.
	MaxName = 64
	// MaxText bounds the terminal's last error; MaxScannerText a
	// scanner's (in characters).
	MaxText        = 256
	MaxScannerText = 128
	// MaxScanners and MaxReasons bound the lists.
	MaxScanners = 16
	MaxReasons  = 16
	// MaxCount bounds every counter and age.
	MaxCount = 1 << 40
)

// Heartbeat is what a terminal tells its gateway about itself, every
// platform.heartbeat_interval. Terminal is set by the gateway from the
// terminal's bearer token, never taken from the body. Texts carry no
// personal data nor secrets: they are masked by the terminal (Clip) and
// again by the gateway (Decode).
type Heartbeat struct {
	Terminal string `json:"terminal"`
	Campus   string `json:"campus,omitempty"`
	Version  string `json:"version"`
	// Health is the agent's health level; Reasons its reason codes.
	Health   string    `json:"health"`
	Reasons  []string  `json:"reasons,omitempty"`
	Scanners []Scanner `json:"scanners"`
	Queue    Queue     `json:"queue"`
	LastScan time.Time `json:"lastScan,omitzero"`
	// LastError is the last problem the terminal's health reported (the
	// message of its first reason), kept after it cleared; LastErrorAt is
	// when the terminal last saw it.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
}

// Scanner is one scanner of a terminal: the JSON of the agent's scanner
// state, as its /v1/status shows it.
type Scanner struct {
	Name       string    `json:"name"`
	Connected  bool      `json:"connected"`
	Since      time.Time `json:"since,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
	Scans      int64     `json:"scans"`
	Reconnects int64     `json:"reconnects"`
}

// Queue is a terminal's outbox: records waiting, dead letters, and the
// age of the oldest waiting record.
type Queue struct {
	Depth                int   `json:"depth"`
	Dead                 int   `json:"dead"`
	OldestPendingSeconds int64 `json:"oldestPendingSeconds"`
}

// Terminal is a terminal as a registry holds it: its last heartbeat, when
// a gateway received it and which, and whether it is online (heard from
// within the registry's offline_after).
type Terminal struct {
	Heartbeat
	LastSeen time.Time `json:"lastSeen"`
	Via      string    `json:"via,omitempty"`
	Online   bool      `json:"online"`
}
