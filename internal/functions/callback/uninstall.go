package callback

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
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// uninstall answers Pipedrive's DELETE /oauth/callback: Basic auth with the app's client id
// and secret, a JSON body naming the user; the installation's tokens are deleted.
//
// Pipedrive sends an uninstall once and ignores the answer, so nothing here may lose one
// quietly: credentials that do not match are checked again against a freshly read secret (it
// may have just been rotated; rate-limited per container), and a store failure alerts a person
// (pdctl uninstall finishes the job). An uninstall dated before the current installation was
// made (a delayed or replayed one, from before a re-install) is acknowledged and ignored.
func (h *handler) uninstall(ctx context.Context, req events.APIGatewayV2HTTPRequest, o outcome) (events.APIGatewayV2HTTPResponse, outcome) {
	if len(req.Body) > base64.StdEncoding.EncodedLen(maxBodyBytes) {
		o.action, o.reason = "reject", "body_too_large"
		return jsonResponse(http.StatusRequestEntityTooLarge, `{"success":false,"error":"request body too large"}`), o
	}
	creds, err := h.Creds.Get(ctx)
	if errors.Is(err, clientcreds.ErrNotConfigured) {
		return h.notConfigured(o, err, true)
	}
	if err != nil {
		h.Alerts.Notify(ctx, alerts.Alert{Reason: "credentials_unavailable", Summary: "The app's client credentials could not be loaded", Detail: alerts.ErrorDetail(err)})
		o.action, o.reason, o.err = "error", "credentials_unavailable", err
		return jsonResponse(http.StatusInternalServerError, `{"success":false,"error":"internal error"}`), o
	}
	user, pass, _ := basicCredentials(header(req.Headers, "Authorization"))
	// Compare even when the header is absent so timing tells nothing.
	if !credentialsMatch(user, pass, creds.ClientID, creds.ClientSecret) {
		fresh, ok := h.rereadSecret(ctx, user, pass)
		if !ok {
			o.action, o.reason = "reject", "unauthorized"
			r := jsonResponse(http.StatusUnauthorized, `{"success":false,"error":"unauthorized"}`)
			return withHeader(r, "WWW-Authenticate", `Basic realm="uninstall"`), o
		}
		creds = fresh // rotated: the body's client_id is checked against the new value
	}
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
			o.action, o.reason = "reject", "malformed_body"
			return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"body is not valid base64"}`), o
		}
	}
	if len(body) > maxBodyBytes {
		o.action, o.reason = "reject", "body_too_large"
		return jsonResponse(http.StatusRequestEntityTooLarge, `{"success":false,"error":"request body too large"}`), o
	}
	u, err := parseUninstall(body)
	if err != nil {
		o.action, o.reason, o.err = "reject", "malformed_body", err
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"malformed uninstall request"}`), o
	}
	o.id = installation.ID{CompanyID: u.CompanyID, UserID: u.UserID}
	if u.ClientID != "" && !constantTimeEqual(u.ClientID, creds.ClientID) {
		o.action, o.reason = "reject", "client_id_mismatch"
		return jsonResponse(http.StatusBadRequest, `{"success":false,"error":"client_id does not match"}`), o
	}
	var asOf time.Time // zero: unconditional
	if u.TimestampValid {
		asOf = u.Timestamp.Add(h.uninstallSkew())
	} else {
		// Accepted anyway: the timestamp's format is unconfirmed (see parseUninstall).
		h.logger().LogAttrs(ctx, slog.LevelInfo, "uninstall without a readable timestamp",
			slog.Int64("company_id", u.CompanyID), slog.Int64("user_id", u.UserID))
	}
	gone, err := h.Installations.UninstallAsOf(ctx, o.id, asOf)
	if err != nil {
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
			// Never installed here (or another environment's user): nothing to do, and
			// answering success keeps the request idempotent.
			o.action, o.reason = "uninstall", "unknown_installation"
			return jsonResponse(http.StatusOK, `{"success":true}`), o
		case errors.Is(err, tokenstore.ErrUninstallPredates):
			// The user installed again after this uninstall: it belongs to the earlier
			// installation. Acknowledged, so a replay learns nothing.
			o.action, o.reason = "ignore", "uninstall_predates_install"
			return jsonResponse(http.StatusOK, `{"success":true}`), o
		}
		// Pipedrive never retries an uninstall: a person must finish it.
		h.Alerts.Notify(ctx, alerts.Alert{Reason: "uninstall_store_failed", CompanyID: o.id.CompanyID, UserID: o.id.UserID,
			Summary: "An uninstall could not be recorded and Pipedrive will not resend it: run pdctl uninstall " + o.id.String(),
			Detail:  alerts.ErrorDetail(err)})
		o.action, o.reason, o.err = "error", "store_failed", err
		return jsonResponse(http.StatusInternalServerError, `{"success":false,"error":"internal error"}`), o
	}
	if h.Uninstalled != nil {
		h.Uninstalled(ctx, gone)
	}
	o.action, o.reason = "uninstall", "uninstalled"
	return jsonResponse(http.StatusOK, `{"success":true}`), o
}

// rereadSecret reads the client secret again and reports whether user and pass match it,
// returning the fresh credentials. It runs at most once per Config.CredentialReread per
// container: the first mismatch after a rotation picks up the new secret, and forged requests
// cannot turn into a stream of Secrets Manager calls. ok is false when the re-read is not due
// or fails.
func (h *handler) rereadSecret(ctx context.Context, user, pass string) (creds clientcreds.Credentials, ok bool) {
	now := h.now()
	h.rereadMu.Lock()
	due := h.lastReread.IsZero() || now.Sub(h.lastReread) >= h.credentialReread() || now.Before(h.lastReread)
	if due {
		h.lastReread = now
	}
	h.rereadMu.Unlock()
	if !due {
		return clientcreds.Credentials{}, false
	}
	h.Creds.Invalidate()
	creds, err := h.Creds.Get(ctx)
	if err != nil {
		return clientcreds.Credentials{}, false // answered 401; clientcreds logged the failed read
	}
	ok = credentialsMatch(user, pass, creds.ClientID, creds.ClientSecret)
	h.logger().LogAttrs(ctx, slog.LevelInfo, "client secret re-read after a credential mismatch",
		slog.String("action", "reread_secret"), slog.Bool("matched", ok), slog.String("version", creds.VersionID))
	return creds, ok
}

func (h *handler) credentialReread() time.Duration {
	if h.Config.CredentialReread > 0 {
		return h.Config.CredentialReread
	}
	return defaultCredentialReread
}

func (h *handler) uninstallSkew() time.Duration {
	if h.Config.UninstallSkew > 0 {
		return h.Config.UninstallSkew
	}
	return defaultUninstallSkew
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

// uninstallRequest is Pipedrive's uninstall body. Field types are unconfirmed, so ids accept
// numbers and numeric strings, and the timestamp accepts ISO-8601 text or epoch seconds or
// milliseconds (number or string).
type uninstallRequest struct {
	ClientID  string
	CompanyID int64
	UserID    int64
	// Timestamp is zero when absent or unparseable; TimestampValid tells which.
	Timestamp      time.Time
	TimestampValid bool
}

// errBadUninstall is wrapped by every parseUninstall error.
var errBadUninstall = errors.New("malformed uninstall body")

// parseUninstall decodes the uninstall body. Errors describe the problem without echoing the
// body. A missing or unparseable timestamp is not an error: its format is unconfirmed, and
// rejecting a real uninstall would leave the user's tokens stored.
func parseUninstall(body []byte) (uninstallRequest, error) {
	var raw struct {
		ClientID  json.RawMessage `json:"client_id"`
		CompanyID json.RawMessage `json:"company_id"`
		UserID    json.RawMessage `json:"user_id"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return uninstallRequest{}, fmt.Errorf("%w: not a JSON object", errBadUninstall)
	}
	var out uninstallRequest
	var err error
	if out.CompanyID, err = installation.ParseNumber(raw.CompanyID); err != nil {
		return uninstallRequest{}, fmt.Errorf("%w: company_id: %v", errBadUninstall, err)
	}
	if out.UserID, err = installation.ParseNumber(raw.UserID); err != nil {
		return uninstallRequest{}, fmt.Errorf("%w: user_id: %v", errBadUninstall, err)
	}
	if len(raw.ClientID) > 0 && string(raw.ClientID) != "null" {
		if err := json.Unmarshal(raw.ClientID, &out.ClientID); err != nil {
			return uninstallRequest{}, fmt.Errorf("%w: client_id is not a string", errBadUninstall)
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
