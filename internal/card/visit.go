package card

import "time"

// Visit is one scan and its outcome: what the HIS receives (the local API's
// "scan" event, the HTTP push body, the HL7 message's source).
type Visit struct {
	Type   string    `json:"type"` // "scan"
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Kind   Kind      `json:"kind,omitempty"`
	// Verified: a platform vouched for the identity.
	Verified bool `json:"verified"`
	// Offline: the platform was unreachable and the code was handed over
	// unverified under the offline policy.
	Offline  bool      `json:"offline,omitempty"`
	Identity *Identity `json:"identity,omitempty"`
	// Error says why the scan was refused, or (with an identity) why it is
	// handed over unverified.
	Error *VisitError `json:"error,omitempty"`
	// Latency is the time from the scan's last byte to its hand-off, and
	// PlatformLatency the part of it spent waiting on the platform, in
	// milliseconds.
	Latency         float64 `json:"latencyMs"`
	PlatformLatency float64 `json:"platformMs,omitempty"`
}

// VisitError says why a scan was refused.
type VisitError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Scan is one frame a scanner read: the raw payload, the source that read
// it and when its last byte arrived.
type Scan struct {
	Data   []byte
	Source string
	// At is the time the last byte of the frame arrived.
	At time.Time
	// Overflow is set when the frame hit the source's maximum length and
	// was cut.
	Overflow bool
}
