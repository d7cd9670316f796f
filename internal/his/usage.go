package his

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"scanagent/internal/card"
)

// POST /v1/usage and /v1/bind: what they accept is a record the platform
// can take (guide §3.2.7 reportHISData, §3.2.6 bindCardRelation), checked
// before it is queued, so that no report dies later as a dead letter.

func (a *API) serveUsage(w http.ResponseWriter, r *http.Request) {
	var u Usage
	if err := decodeStrict(r, &u); err != nil {
		a.badRequest(w, r, err)
		return
	}
	u.BodyDigest = bodyDigest("usage", u)
	fields := map[string]string{}
	u.IdempotencyKey = idempotencyKey(r, fields)
	if e, ok := a.resolveScan(u.ScanID, fields); ok {
		if e.Kind == card.KindEHCDynamic {
			a.countedByVerify(w, r, "scanId")
			return
		}
		fillFromScan(&u, e, fields)
	}
	if u.QRCodeText != "" {
		text, dynamic, err := a.checkQR(u.QRCodeText)
		if err == nil && dynamic {
			a.countedByVerify(w, r, "qrCodeText")
			return
		}
		u.QRCodeText = text // the code as the platform knows it, not as typed
		if err != nil {
			fields["qrCodeText"] = "not an e-Health Card code (static <id>:1, or dynamic <id>:0:<token>::<org>)"
		}
	}
	if strings.TrimSpace(u.Department) == "" {
		u.Department = a.o.DefaultDepartment
	}
	a.checkUsage(&u, fields)
	if len(fields) > 0 {
		a.refuseWith(w, r, causeBadRequest, http.StatusBadRequest, apiError{Error: "invalid request", Fields: fields})
		return
	}
	a.record(w, r, "usage", u.IdempotencyKey, u.BodyDigest, func(ctx context.Context) (string, error) { return a.o.Recorder.RecordUsage(ctx, u) })
}

// countedByVerify answers 409 for a dynamic code: verifyQRCode counted the
// visit when the code was verified (guide §3.2.11).
func (a *API) countedByVerify(w http.ResponseWriter, r *http.Request, field string) {
	a.refuseWith(w, r, causeConflict, http.StatusConflict, apiError{
		Error:  "this visit is already counted by verifyQRCode when the dynamic e-Health Card code was verified (guide §3.2.11): no reportHISData is queued for it",
		Fields: map[string]string{field: "a dynamic e-Health Card code: its visit is already counted"},
	})
}

// fillFromScan takes the card of a static e-Health Card scan (cardType 11)
// or the ID number of a scan, with the scan's name or else the HIS's.
func fillFromScan(u *Usage, e card.Visit, fields map[string]string) {
	id := e.Identity
	wantQR := u.CardType == "" || u.CardType == card.CardTypeHealthCard
	switch {
	case e.Kind.IsEHC() && id.QRCodeText != "" && wantQR:
		u.QRCodeText = id.QRCodeText
	case id.IDNumber != "" && (id.Name != "" || u.Name != ""):
		u.IDCardNumber = id.IDNumber
		if id.Name != "" {
			u.Name = id.Name
		}
	case id.IDNumber != "":
		fields["name"] = "required: that scan carries an ID number but no name; send the name the HIS looked up"
	default:
		fields["scanId"] = "that scan carries neither an e-Health Card code nor an ID number"
	}
}

// checkUsage checks a report against reportHISData's rules (guide §3.2.7)
// and the §3.3 code tables, naming each bad field.
func (a *API) checkUsage(u *Usage, fields map[string]string) {
	if u.CardType == "" {
		u.CardType = card.CardTypeHealthCard
		if u.QRCodeText == "" {
			u.CardType = card.CardTypeIDCard
		}
	}
	if _, ok := card.CardTypeName(u.CardType); !ok {
		fields["cardType"] = "not a 证件类型 code of the guide's §3.3.2: one of " + strings.Join(card.CardTypes(), ", ")
	}
	a.checkCardHolder(u, fields)
	if _, ok := card.SceneName(u.Scene); !ok {
		fields["scene"] = "required: a 用卡环节 code of the guide's §3.3.1, such as 010101 (挂号) or 0101051 (门诊缴费)"
	}
	if card.SceneNeedsDepartment(u.Scene) && strings.TrimSpace(u.Department) == "" {
		fields["department"] = "required for scene " + u.Scene + " (guide §3.2.7: 挂号, 预约挂号, 当日挂号)"
	} else if u.Department != "" && !plainText(u.Department, 64) {
		fields["department"] = "at most 64 characters, no control characters"
	}
	if _, ok := card.ChannelCode(u.CardChannel); u.CardChannel != "" && !ok {
		fields["cardChannel"] = "not a 用卡渠道 of the guide's §3.3.3: a code (" + strings.Join(card.Channels(), ", ") + ") or its name (服务号, 人工窗口, …)"
	}
	if u.Time != "" {
		if _, err := time.Parse("2006-01-02 15:04:05", u.Time); err != nil {
			fields["time"] = "format yyyy-MM-dd HH:mm:ss (China Standard Time)"
		}
	}
}

// checkCardHolder: cardType 11 reports the code; any other type an ID
// number and a name, a GB 11643 number for 01 居民身份证.
func (a *API) checkCardHolder(u *Usage, fields map[string]string) {
	if fields["scanId"] != "" || fields["qrCodeText"] != "" || fields["name"] != "" {
		return
	}
	if u.CardType == card.CardTypeIDCard {
		u.IDCardNumber = strings.ToUpper(u.IDCardNumber) // check digit X
	}
	switch {
	case u.QRCodeText == "" && u.IDCardNumber == "":
		fields["qrCodeText"] = "give scanId, qrCodeText, or idCardNumber and name"
	case u.CardType == card.CardTypeHealthCard:
		if u.QRCodeText == "" {
			fields["qrCodeText"] = "required for cardType 11"
		}
		// Reported by its code alone (guide §3.2.7): a name or number
		// sent along is neither checked nor kept.
		u.Name, u.IDCardNumber = "", ""
	case u.IDCardNumber == "":
		fields["idCardNumber"] = "required with cardType " + u.CardType + " (only cardType 11 reports a qrCodeText)"
	case u.CardType == card.CardTypeIDCard && a.checkID(u.IDCardNumber) != nil:
		fields["idCardNumber"] = "not a resident ID number: 18 characters with the GB 11643 check digit, or 15 digits"
	case !plainText(u.IDCardNumber, 32):
		fields["idCardNumber"] = "at most 32 characters, no control characters"
	}
	if u.CardType != card.CardTypeHealthCard {
		if u.Name == "" {
			fields["name"] = "required with idCardNumber"
		} else if !plainText(u.Name, 64) {
			fields["name"] = "at most 64 characters, no control characters"
		}
	}
}

func (a *API) serveBind(w http.ResponseWriter, r *http.Request) {
	var b Binding
	if err := decodeStrict(r, &b); err != nil {
		a.badRequest(w, r, err)
		return
	}
	b.BodyDigest = bodyDigest("bind", b)
	fields := map[string]string{}
	b.IdempotencyKey = idempotencyKey(r, fields)
	if e, ok := a.resolveScan(b.ScanID, fields); ok {
		if !e.Kind.IsEHC() || e.Identity.QRCodeText == "" {
			fields["scanId"] = "only e-Health Card scans can be bound"
		} else {
			b.QRCodeText = e.Identity.QRCodeText
		}
	}
	if b.QRCodeText == "" && fields["scanId"] == "" {
		fields["qrCodeText"] = "give scanId or qrCodeText"
	} else if b.QRCodeText != "" {
		text, _, err := a.checkQR(b.QRCodeText)
		if err != nil {
			fields["qrCodeText"] = "not an e-Health Card code (static <id>:1, or dynamic <id>:0:<token>::<org>)"
		}
		b.QRCodeText = text
	}
	if !plainText(b.PatID, 64) {
		fields["patid"] = "required: the HIS patient id (at most 64 characters, no control characters)"
	}
	if len(fields) > 0 {
		a.refuseWith(w, r, causeBadRequest, http.StatusBadRequest, apiError{Error: "invalid request", Fields: fields})
		return
	}
	a.record(w, r, "bind", b.IdempotencyKey, b.BodyDigest, func(ctx context.Context) (string, error) { return a.o.Recorder.RecordBinding(ctx, b) })
}

func (a *API) checkQR(text string) (code string, dynamic bool, err error) {
	if a.o.CheckQRCode != nil {
		return a.o.CheckQRCode(text)
	}
	return builtinQRCode(text)
}

func (a *API) checkID(n string) error {
	if a.o.CheckIDNumber != nil {
		return a.o.CheckIDNumber(n)
	}
	return builtinIDNumber(n)
}

// resolveScan finds the scan a request names.
func (a *API) resolveScan(scanID string, fields map[string]string) (card.Visit, bool) {
	if scanID == "" {
		return card.Visit{}, false
	}
	e, ok := a.hub.find(scanID)
	if !ok {
		fields["scanId"] = "unknown or too old (the agent keeps the last " + strconv.Itoa(a.o.Keep) + " scans): send qrCodeText instead"
		return card.Visit{}, false
	}
	if e.Identity == nil {
		fields["scanId"] = "that scan was refused: no card to report"
		return card.Visit{}, false
	}
	return e, true
}

func decodeStrict(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body larger than %d bytes", mbe.Limit)
		}
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data")
	}
	return nil
}

func (a *API) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusBadRequest
	if strings.HasPrefix(err.Error(), "body larger") {
		status = http.StatusRequestEntityTooLarge
	}
	a.refuse(w, r, causeBadRequest, status, err.Error())
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(r *http.Request, fields map[string]string) string {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > 128 {
		fields["Idempotency-Key"] = "at most 128 characters"
	}
	return k
}

// record answers 202 only once the record is durably queued; 409 when the
// Idempotency-Key was used with another body.
func (a *API) record(w http.ResponseWriter, r *http.Request, endpoint, key, digest string, fn func(context.Context) (string, error)) {
	if a.o.Recorder == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "no outbox: platform.mode is \"off\""})
		return
	}
	const reused = "Idempotency-Key already used with a different body: use a new key for a new report"
	fresh := false
	if key != "" {
		var conflict bool
		if fresh, conflict = a.keys.claim(endpoint+"\x00"+key, digest, a.o.Now()); conflict {
			a.refuse(w, r, causeConflict, http.StatusConflict, reused)
			return
		}
	}
	id, err := fn(r.Context())
	if err == nil {
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id})
		return
	}
	if fresh {
		a.keys.release(endpoint + "\x00" + key)
	}
	switch {
	case errors.Is(err, ErrIdempotencyConflict):
		a.refuse(w, r, causeConflict, http.StatusConflict, reused)
	case errors.Is(err, ErrQueueRefused):
		w.Header().Set("Retry-After", "60")
		a.refuse(w, r, causeQueue, http.StatusServiceUnavailable, err.Error())
	default:
		a.refuse(w, r, causeQueue, http.StatusInternalServerError, err.Error())
	}
}
