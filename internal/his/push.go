package his

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/backoff"
	"scanagent/internal/card"
)

// Push signature headers. The signature is hex HMAC-SHA256 over
// "<timestamp>.<body>" with the shared secret; receivers reject timestamps
// more than a few minutes old.
const (
	HeaderTimestamp = "X-Scanagent-Timestamp"
	HeaderSignature = "X-Scanagent-Signature"
	HeaderEventID   = "X-Scanagent-Event"
)

// PushSignature computes the signature header value for a body.
func PushSignature(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// PushOptions configures the HTTP push sink.
type PushOptions struct {
	URL    string
	Secret []byte
	// Timeout bounds one attempt; the patient is waiting, so keep it short.
	Timeout time.Duration
	// Retries after a failed attempt (5xx, 408, 429, network).
	Retries int
	HTTP    *http.Client
	Log     zerolog.Logger
	Now     func() time.Time
}

// Push POSTs every outcome as JSON to a client/server HIS.
type Push struct {
	o                 PushOptions
	delivered, failed atomic.Int64
}

var _ Sink = (*Push)(nil)

// NewPush returns the sink.
func NewPush(o PushOptions) *Push {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Push{o: o}
}

// Counts returns delivered and failed pushes.
func (p *Push) Counts() (delivered, failed int64) { return p.delivered.Load(), p.failed.Load() }

// Deliver pushes e, retrying transient failures a few times.
func (p *Push) Deliver(ctx context.Context, e card.Visit) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	policy := backoff.Policy{Min: 100 * time.Millisecond}
	for attempt := 0; ; attempt++ {
		retry, err := p.once(ctx, e.ID, body)
		if err == nil {
			p.delivered.Add(1)
			return nil
		}
		if !retry || attempt >= p.o.Retries || ctx.Err() != nil {
			p.failed.Add(1)
			return fmt.Errorf("push to HIS: %w", err)
		}
		if err := backoff.Sleep(ctx, policy.Delay(attempt+1)); err != nil {
			p.failed.Add(1)
			return err
		}
	}
}

func (p *Push) once(ctx context.Context, id string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.o.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	ts := strconv.FormatInt(p.o.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, PushSignature(p.o.Secret, ts, body))
	req.Header.Set(HeaderEventID, id)
	resp, err := p.o.HTTP.Do(req)
	if err != nil {
		return true, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return false, fmt.Errorf("HTTP %d (not retried)", resp.StatusCode)
}
