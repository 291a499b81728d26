// Package installation holds the domain types of the kit: an installation of the app, its id,
// its lifecycle status and the tokens a refresh produces. It depends on the standard library
// only, so pure logic (refresh decisions, the worker's runners, pdctl's views) can use the
// types without the DynamoDB adapter that stores them (internal/tokenstore).
package installation

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
)

// ID names one installation: Pipedrive installs an app per user, so a company id
// and a user id together identify it.
type ID struct {
	CompanyID int64
	UserID    int64
}

// String returns "company:user", the form used in logs and error messages.
func (id ID) String() string {
	return strconv.FormatInt(id.CompanyID, 10) + ":" + strconv.FormatInt(id.UserID, 10)
}

// LogValue logs the id as company_id and user_id, the field names every log line uses.
func (id ID) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID))
}

// Valid reports whether both ids are positive, as Pipedrive's are.
func (id ID) Valid() bool { return id.CompanyID > 0 && id.UserID > 0 }

// Status is the lifecycle state of an installation.
type Status string

const (
	// StatusActive installations have usable tokens and are refreshed before they expire.
	StatusActive Status = "active"
	// StatusNeedsReauth installations have a refresh token Pipedrive rejected: the user must
	// install the app again. They are not refreshed.
	StatusNeedsReauth Status = "needs_reauthorization"
	// StatusUninstalled installations were removed by the user; their tokens are deleted.
	StatusUninstalled Status = "uninstalled"
)

// Installation is one user's installation of the app and its OAuth tokens.
//
// Formatting with fmt, logging with slog and encoding/json never reveal the tokens: they print
// the ids, status, version, access token expiry and api_domain only. (A value held in an
// unexported field of another struct is printed by fmt field by field, bypassing this; do not
// format such structs.)
type Installation struct {
	ID           ID
	AccessToken  string
	RefreshToken string
	// APIDomain is the base URL for API calls, e.g. https://acme.pipedrive.com. It can change on
	// every exchange and refresh.
	APIDomain string
	Scopes    []string
	// ExpiresAt is when the access token expires.
	ExpiresAt time.Time
	Status    Status
	// Version is incremented by every write, 1 after the first install. SaveRefreshed takes it
	// as the optimistic-locking token.
	Version int64
	// LeaseOwner holds the refresh lease until LeaseUntil; both are zero without a lease.
	LeaseOwner string
	LeaseUntil time.Time
	// FailureCount counts refresh failures since the last successful install or refresh.
	FailureCount int
	// LastFailure is a pderrors reason or a short text, never a token.
	LastFailure string
	// CodeHash is the SHA-256 (hex) of the authorization code the installation came from.
	CodeHash    string
	InstalledAt time.Time
	UpdatedAt   time.Time
	// RefreshedAt is the last successful refresh; zero before the first one.
	RefreshedAt time.Time
	// RefreshDueAt is when the refresher will next pick the installation up (its entry in the
	// refresh-due index); zero when it is not in the index (not active). Read-only.
	RefreshDueAt time.Time
	// WarmUntil is until when the installation counts as in use (its last recorded use plus
	// InUseFor); see Warm and NextRefresh. Zero: never recorded.
	WarmUntil time.Time
	// AlwaysWarm keeps the access token warm whether the installation is used or not (an
	// operator's per-installation flag, pdctl warm).
	AlwaysWarm bool
}

// LogValue implements slog.LogValuer: ids, status, version, expiry and api_domain; no tokens.
func (in Installation) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("company_id", in.ID.CompanyID),
		slog.Int64("user_id", in.ID.UserID),
		slog.String("status", string(in.Status)),
		slog.Int64("version", in.Version),
		slog.Time("expires_at", in.ExpiresAt),
		slog.String("api_domain", in.APIDomain),
	)
}

// String describes the installation without its tokens.
func (in Installation) String() string {
	return fmt.Sprintf("installation %s status=%s version=%d expires_at=%s api_domain=%s",
		in.ID, in.Status, in.Version, in.ExpiresAt.UTC().Format(time.RFC3339), in.APIDomain)
}

// GoString is what %#v prints: Go syntax with the tokens left out.
func (in Installation) GoString() string {
	return fmt.Sprintf("installation.Installation{ID:installation.ID{CompanyID:%d, UserID:%d}, Status:%q, Version:%d, ExpiresAt:%q, APIDomain:%q /* tokens redacted */}",
		in.ID.CompanyID, in.ID.UserID, in.Status, in.Version, in.ExpiresAt.UTC().Format(time.RFC3339), in.APIDomain)
}

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s, %d, …) prints the
// redacted form: without it %d or %x would walk the struct and print the tokens.
func (in Installation) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, in.String(), in.GoString())
}

// MarshalJSON encodes the same redacted fields as LogValue, so a stray json.Marshal into a log
// or a response cannot leak tokens.
func (in Installation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CompanyID int64     `json:"company_id"`
		UserID    int64     `json:"user_id"`
		Status    Status    `json:"status"`
		Version   int64     `json:"version"`
		ExpiresAt time.Time `json:"expires_at"`
		APIDomain string    `json:"api_domain"`
	}{in.ID.CompanyID, in.ID.UserID, in.Status, in.Version, in.ExpiresAt, in.APIDomain})
}

// Tokens is the result of a refresh, as SaveRefreshed stores it. Zero fields keep the stored
// value where noted, because Pipedrive does not always return every field.
//
// Like Installation, it never prints or logs its tokens.
type Tokens struct {
	AccessToken string
	// RefreshToken empty keeps the stored refresh token (Pipedrive may not return one).
	RefreshToken string
	// APIDomain empty keeps the stored api_domain.
	APIDomain string
	// Scopes nil keeps the stored scopes.
	Scopes []string
	// ExpiresAt is the new access token's expiry.
	ExpiresAt time.Time
	// WarmUntil, when not zero, records a use: the installation is in use until then (a
	// refresh made because a job needed the tokens). Zero keeps the stored one.
	WarmUntil time.Time
	// NextRefresh is when the refresher should refresh next (the refresh-due index entry),
	// NextRefresh of the installation as saved; zero means RefreshDueAt(ExpiresAt).
	NextRefresh time.Time
}

// LogValue implements slog.LogValuer: expiry, api_domain and whether a new refresh token came
// back; no tokens.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Time("expires_at", t.ExpiresAt),
		slog.String("api_domain", t.APIDomain),
		slog.Bool("new_refresh_token", t.RefreshToken != ""),
	)
}

// String describes the tokens without revealing them.
func (t Tokens) String() string {
	return fmt.Sprintf("tokens expires_at=%s api_domain=%s new_refresh_token=%t",
		t.ExpiresAt.UTC().Format(time.RFC3339), t.APIDomain, t.RefreshToken != "")
}

// GoString is what %#v prints: Go syntax with the tokens left out.
func (t Tokens) GoString() string {
	return fmt.Sprintf("installation.Tokens{ExpiresAt:%q, APIDomain:%q /* tokens redacted */}",
		t.ExpiresAt.UTC().Format(time.RFC3339), t.APIDomain)
}

// Format implements fmt.Formatter: every verb prints the redacted form.
func (t Tokens) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String(), t.GoString()) }

// MarshalJSON encodes the same redacted fields as LogValue.
func (t Tokens) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ExpiresAt       time.Time `json:"expires_at"`
		APIDomain       string    `json:"api_domain"`
		NewRefreshToken bool      `json:"new_refresh_token"`
	}{t.ExpiresAt, t.APIDomain, t.RefreshToken != ""})
}

func formatRedacted(f fmt.State, verb rune, s, goSyntax string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, goSyntax)
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(s))
	default:
		_, _ = io.WriteString(f, s)
	}
}
