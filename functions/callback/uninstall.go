package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

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
	if out.CompanyID, err = parseID(raw.CompanyID); err != nil {
		return uninstallRequest{}, fmt.Errorf("%w: company_id: %v", errBadUninstall, err)
	}
	if out.UserID, err = parseID(raw.UserID); err != nil {
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

// parseID accepts a positive integer as a JSON number or a string of digits.
func parseID(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, errors.New("missing")
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errors.New("not a string or number")
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// 123.0 and 1.23e5 are numbers too; accept them only when they are whole.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || f < 1 || f > math.MaxInt64/2 {
			return 0, errors.New("not an integer")
		}
		n = int64(f)
	}
	if n <= 0 {
		return 0, errors.New("not positive")
	}
	return n, nil
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
