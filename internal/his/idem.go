package his

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"
)

// Idempotency-Key memory: the outbox dedups a retried POST by its key, but
// cannot tell a retry from a second request that reuses the key with
// another body. The API remembers each key's body digest for as long as the
// outbox remembers the key (or until maxKeys newer keys pushed it out) and
// answers 409 to a reuse with another body. Past that, the digest travels
// with the record (Usage.BodyDigest) for a recorder that keeps it too.
const (
	idemWindow = 24 * time.Hour // the outbox's queue.IdempotencyWindow
	maxKeys    = 8192
)

// bodyDigest is the hex SHA-256 of the request as decoded (so a retry that
// spells the same JSON differently has the same digest), tagged with the
// endpoint.
func bodyDigest(endpoint string, v any) string {
	b, _ := json.Marshal(v)
	h := sha256.New()
	h.Write([]byte(endpoint + "\x00"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

type idemEntry struct {
	digest string
	at     time.Time
	seq    uint64
}

type idemRef struct {
	key string
	seq uint64
}

type idemKeys struct {
	mu    sync.Mutex
	keys  map[string]idemEntry
	order []idemRef // insertion order, for eviction; refs to released keys are stale
	seq   uint64
}

func newIdemKeys() *idemKeys { return &idemKeys{keys: map[string]idemEntry{}} }

// claim records key's digest. It reports conflict when the key is already
// held with another digest, and fresh when this call recorded it (so a
// failed record can release it).
func (k *idemKeys) claim(key, digest string, now time.Time) (fresh, conflict bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.evict(now)
	if e, ok := k.keys[key]; ok {
		return false, e.digest != digest
	}
	k.seq++
	k.keys[key] = idemEntry{digest: digest, at: now, seq: k.seq}
	k.order = append(k.order, idemRef{key, k.seq})
	return true, false
}

// release forgets a key whose record was not queued.
func (k *idemKeys) release(key string) {
	k.mu.Lock()
	delete(k.keys, key)
	k.mu.Unlock()
}

// evict drops keys older than idemWindow, and the oldest beyond maxKeys.
func (k *idemKeys) evict(now time.Time) {
	for len(k.order) > 0 {
		ref := k.order[0]
		e, live := k.keys[ref.key]
		live = live && e.seq == ref.seq
		if live && len(k.keys) < maxKeys && now.Sub(e.at) < idemWindow {
			break
		}
		k.order = k.order[1:]
		if live {
			delete(k.keys, ref.key)
		}
	}
	if len(k.order) > 2*maxKeys { // mostly stale refs of released keys
		live := k.order[:0]
		for _, ref := range k.order {
			if e, ok := k.keys[ref.key]; ok && e.seq == ref.seq {
				live = append(live, ref)
			}
		}
		k.order = live
	}
}
