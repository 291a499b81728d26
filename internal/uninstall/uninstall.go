// Package uninstall is the use case of Pipedrive's uninstall request (DELETE on the OAuth
// callback URL): authenticate Pipedrive by the app's client id and secret (HTTP Basic, in
// constant time), read the body naming the user, and remove that installation's tokens, with a
// typed Result the caller maps to its answer. It knows nothing of Lambda or HTTP beyond the
// request's Authorization header and body.
//
// Pipedrive sends an uninstall once and ignores the answer, so nothing here may lose one
// quietly: credentials that do not match are checked again against a freshly read secret (it
// may have just been rotated; at most once per CredentialReread), and a store failure alerts a
// person (pdctl uninstall finishes the job). An uninstall dated more than Skew before the
// current installation was made (a delayed or replayed one, from before a re-install) is
// acknowledged and ignored.
package uninstall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// MaxBodyBytes caps the body: Pipedrive's holds four small fields.
const MaxBodyBytes = 8 << 10

// Defaults for zero Uninstaller fields.
const (
	DefaultCredentialReread = 10 * time.Second
	DefaultSkew             = 30 * time.Second
)

// Credentials supplies the app's current client credentials; *clientcreds.Source satisfies it.
type Credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
	// Invalidate makes the next Get read the secret again (it may just have been rotated).
	Invalidate()
}

// Store removes an installation; *tokenstore.Store satisfies it. UninstallAsOf returns
// tokenstore.ErrNotFound (wrapped) for an installation never stored, and
// tokenstore.ErrUninstallPredates (wrapped, nothing changed) when the current installation was
// made after at; a zero at uninstalls unconditionally.
type Store interface {
	UninstallAsOf(ctx context.Context, id installation.ID, at time.Time) (installation.Installation, error)
}

// Outcome is what an uninstall request came to.
type Outcome int

// The outcomes. The zero Outcome is not one of them.
const (
	// Uninstalled: the installation is marked uninstalled and its tokens are gone.
	Uninstalled Outcome = iota + 1
	// Unknown: no such installation here (never installed, or another environment's); nothing
	// to do, and the request is idempotent.
	Unknown
	// Predates: the user installed again after this uninstall was issued; ignored.
	Predates
	// Unauthorized: the Basic credentials are missing or not the app's.
	Unauthorized
	// Malformed: the body is not base64 (when flagged so), not JSON, or lacks the ids.
	Malformed
	// TooLarge: the body is over MaxBodyBytes.
	TooLarge
	// ClientIDMismatch: the body names another app's client_id.
	ClientIDMismatch
	// NotConfigured: the app's client id and secret are not set yet (a first deploy).
	NotConfigured
	// CredentialsUnavailable: the secret could not be read; a person was alerted.
	CredentialsUnavailable
	// StoreFailed: the uninstall could not be recorded; a person was alerted.
	StoreFailed
)

var outcomeNames = [...]string{
	Uninstalled: "uninstalled", Unknown: "unknown_installation", Predates: "uninstall_predates_install",
	Unauthorized: "unauthorized", Malformed: "malformed_body", TooLarge: "body_too_large",
	ClientIDMismatch: "client_id_mismatch", NotConfigured: "client_credentials_placeholder",
	CredentialsUnavailable: "credentials_unavailable", StoreFailed: "store_failed",
}

// String is the outcome's snake_case name (the log's reason); "unknown" for other values.
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Request is Pipedrive's uninstall request as received.
type Request struct {
	// Authorization is the Authorization header ("Basic …"), empty when absent.
	Authorization string
	// Body is the request body; Base64 says it is base64-encoded (API Gateway's isBase64Encoded).
	Body   string
	Base64 bool
}

// Result is what Uninstall did. Its fields are safe to log: no credential or body.
type Result struct {
	Outcome Outcome
	// ID is the installation the body named, when it was read.
	ID installation.ID
	// Err is the failure's detail (parse problem, store or secret error), nil otherwise.
	Err error
}

// Uninstaller runs the use case. Creds and Store are required; Alerts and Log are optional
// (publish-or-log; nil Log discards). Safe for concurrent use; do not copy after first use.
type Uninstaller struct {
	Creds  Credentials
	Store  Store
	Alerts oncall.Notifier
	Log    *slog.Logger
	// Now is the clock for the re-read limit; time.Now when nil.
	Now func() time.Time
	// CredentialReread is the least time between two re-reads of the secret that non-matching
	// credentials trigger (so forged requests cost at most one Secrets Manager call per
	// interval); DefaultCredentialReread when zero.
	CredentialReread time.Duration
	// Skew is the tolerance for the clock difference between Pipedrive and us: an uninstall is
	// ignored only when dated more than Skew before the installation was made; DefaultSkew
	// when zero.
	Skew time.Duration
	// Uninstalled, when set, is called after an uninstall is recorded, with the installation
	// as it was (its id and version): the callback queues the app's uninstall hook there.
	Uninstalled func(ctx context.Context, gone installation.Installation)

	rereadMu   sync.Mutex
	lastReread time.Time
}

// Uninstall authenticates req, reads the user it names and removes that installation.
func (u *Uninstaller) Uninstall(ctx context.Context, req Request) Result {
	if len(req.Body) > base64.StdEncoding.EncodedLen(MaxBodyBytes) {
		return Result{Outcome: TooLarge}
	}
	creds, err := u.Creds.Get(ctx)
	switch {
	case errors.Is(err, clientcreds.ErrNotConfigured):
		return Result{Outcome: NotConfigured, Err: err}
	case err != nil:
		u.Alerts.Notify(ctx, oncall.Alert{Reason: "credentials_unavailable", Summary: "The app's client credentials could not be loaded", Detail: oncall.ErrorDetail(err)})
		return Result{Outcome: CredentialsUnavailable, Err: err}
	}
	user, pass, _ := basicCredentials(req.Authorization)
	// Compare even when the header is absent so timing tells nothing.
	if !credentialsMatch(user, pass, creds.ClientID, creds.ClientSecret) {
		fresh, ok := u.reread(ctx, user, pass)
		if !ok {
			return Result{Outcome: Unauthorized}
		}
		creds = fresh // rotated: the body's client_id is checked against the new value
	}
	body := []byte(req.Body)
	if req.Base64 {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			return Result{Outcome: Malformed, Err: errors.New("body is not valid base64")}
		}
	}
	if len(body) > MaxBodyBytes {
		return Result{Outcome: TooLarge}
	}
	b, err := ParseBody(body)
	if err != nil {
		return Result{Outcome: Malformed, Err: err}
	}
	id := installation.ID{CompanyID: b.CompanyID, UserID: b.UserID}
	if b.ClientID != "" && !constantTimeEqual(b.ClientID, creds.ClientID) {
		return Result{Outcome: ClientIDMismatch, ID: id}
	}
	var asOf time.Time // zero: unconditional
	if b.TimestampValid {
		asOf = b.Timestamp.Add(cmpOr(u.Skew, DefaultSkew))
	} else {
		// Accepted anyway: the timestamp's format is unconfirmed (see ParseBody).
		u.logger().LogAttrs(ctx, slog.LevelInfo, "uninstall without a readable timestamp",
			slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID))
	}
	gone, err := u.Store.UninstallAsOf(ctx, id, asOf)
	switch {
	case err == nil:
		if u.Uninstalled != nil {
			u.Uninstalled(ctx, gone)
		}
		return Result{Outcome: Uninstalled, ID: id}
	case errors.Is(err, tokenstore.ErrNotFound):
		return Result{Outcome: Unknown, ID: id}
	case errors.Is(err, tokenstore.ErrUninstallPredates):
		return Result{Outcome: Predates, ID: id}
	}
	// Pipedrive never retries an uninstall: a person must finish it.
	u.Alerts.Notify(ctx, oncall.Alert{Reason: "uninstall_store_failed", CompanyID: id.CompanyID, UserID: id.UserID,
		Summary: "An uninstall could not be recorded and Pipedrive will not resend it: run pdctl uninstall " + id.String(),
		Detail:  oncall.ErrorDetail(err)})
	return Result{Outcome: StoreFailed, ID: id, Err: err}
}

// reread reads the client secret again and reports whether user and pass match it, returning
// the fresh credentials. It runs at most once per CredentialReread: the first mismatch after
// a rotation picks up the new secret, and forged requests cannot turn into a stream of Secrets
// Manager calls. ok is false when the re-read is not due or fails.
func (u *Uninstaller) reread(ctx context.Context, user, pass string) (creds clientcreds.Credentials, ok bool) {
	now := u.now()
	u.rereadMu.Lock()
	due := u.lastReread.IsZero() || now.Sub(u.lastReread) >= cmpOr(u.CredentialReread, DefaultCredentialReread) || now.Before(u.lastReread)
	if due {
		u.lastReread = now
	}
	u.rereadMu.Unlock()
	if !due {
		return clientcreds.Credentials{}, false
	}
	u.Creds.Invalidate()
	creds, err := u.Creds.Get(ctx)
	if err != nil {
		return clientcreds.Credentials{}, false // unauthorized; clientcreds logged the failed read
	}
	ok = credentialsMatch(user, pass, creds.ClientID, creds.ClientSecret)
	u.logger().LogAttrs(ctx, slog.LevelInfo, "client secret re-read after a credential mismatch",
		slog.String("action", "reread_secret"), slog.Bool("matched", ok), slog.String("version", creds.VersionID))
	return creds, ok
}

func (u *Uninstaller) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Uninstaller) logger() *slog.Logger {
	if u.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return u.Log
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// basicCredentials extracts user and password from an "Authorization: Basic …" header value.
// ok is false when the header is absent or not well-formed Basic.
func basicCredentials(header string) (user, pass string, ok bool) {
	scheme, payload, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return "", "", false
	}
	user, pass, found = strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	return user, pass, true
}

// credentialsMatch compares both parts in constant time, whatever their lengths: each side is
// hashed first (so lengths do not show in timing) and both comparisons always run (so timing
// does not show which part was wrong).
func credentialsMatch(gotID, gotSecret, wantID, wantSecret string) bool {
	gi, gs := sha256.Sum256([]byte(gotID)), sha256.Sum256([]byte(gotSecret))
	wi, ws := sha256.Sum256([]byte(wantID)), sha256.Sum256([]byte(wantSecret))
	idOK := subtle.ConstantTimeCompare(gi[:], wi[:])
	secretOK := subtle.ConstantTimeCompare(gs[:], ws[:])
	// An empty configured credential never matches (a half-configured secret must not open the door).
	configured := subtle.ConstantTimeEq(int32(min(len(wantID), 1)&min(len(wantSecret), 1)), 1)
	return idOK&secretOK&configured == 1
}

// constantTimeEqual compares a and b in time independent of their contents and lengths.
func constantTimeEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// Body is Pipedrive's uninstall body. Field types are unconfirmed, so ids accept
// numbers and numeric strings, and the timestamp accepts ISO-8601 text or epoch seconds or
// milliseconds (number or string).
type Body struct {
	ClientID  string
	CompanyID int64
	UserID    int64
	// Timestamp is zero when absent or unparseable; TimestampValid tells which.
	Timestamp      time.Time
	TimestampValid bool
}

// ErrMalformed is wrapped by every ParseBody error.
var ErrMalformed = errors.New("malformed uninstall body")

// ParseBody decodes the uninstall body. Errors describe the problem without echoing the
// body. A missing or unparseable timestamp is not an error: its format is unconfirmed, and
// rejecting a real uninstall would leave the user's tokens stored.
func ParseBody(body []byte) (Body, error) {
	var raw struct {
		ClientID  json.RawMessage `json:"client_id"`
		CompanyID json.RawMessage `json:"company_id"`
		UserID    json.RawMessage `json:"user_id"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return Body{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var out Body
	var err error
	if out.CompanyID, err = installation.ParseNumber(raw.CompanyID); err != nil {
		return Body{}, fmt.Errorf("%w: company_id: %v", ErrMalformed, err)
	}
	if out.UserID, err = installation.ParseNumber(raw.UserID); err != nil {
		return Body{}, fmt.Errorf("%w: user_id: %v", ErrMalformed, err)
	}
	if len(raw.ClientID) > 0 && string(raw.ClientID) != "null" {
		if err := json.Unmarshal(raw.ClientID, &out.ClientID); err != nil {
			return Body{}, fmt.Errorf("%w: client_id is not a string", ErrMalformed)
		}
	}
	out.Timestamp, out.TimestampValid = parseTimestamp(raw.Timestamp)
	return out, nil
}

// parseTimestamp accepts ISO-8601 / RFC 3339 text, or epoch seconds or milliseconds as a number
// or a string of digits. Values above 1e11 are taken as milliseconds (1e11 s is the year 5138).
func parseTimestamp(raw json.RawMessage) (time.Time, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return time.Time{}, false
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, false
		}
		s = strings.TrimSpace(s)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e15 {
			return time.Time{}, false
		}
		if f > 1e11 {
			return time.UnixMilli(int64(f)).UTC(), true
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
