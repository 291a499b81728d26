package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Credentials are an HTTP Basic user and password Pipedrive sends with every delivery of a
// webhook: an installation's own (InstallationCredentials), or the legacy deployment-wide pair
// (DeriveCredentials). They never print.
type Credentials struct {
	User, Password string
}

// String hides the password.
func (c Credentials) String() string {
	return "webhook.Credentials{user=" + c.User + " password=<redacted>}"
}

// GoString is String.
func (c Credentials) GoString() string { return c.String() }

// Valid reports whether both parts are set.
func (c Credentials) Valid() bool { return c.User != "" && c.Password != "" }

// Authorized reports whether an Authorization header carries exactly c, comparing in constant
// time (the lengths of the compared digests are fixed, so no timing tells how much matched).
// A missing, malformed or non-Basic header is not authorized; so is anything when c is not
// Valid.
func (c Credentials) Authorized(header string) bool {
	if !c.Valid() {
		return false
	}
	user, pass, ok := basicAuth(header)
	if !ok {
		return false
	}
	u := sha256.Sum256([]byte(user))
	wu := sha256.Sum256([]byte(c.User))
	p := sha256.Sum256([]byte(pass))
	wp := sha256.Sum256([]byte(c.Password))
	// Both compared, always: no early exit on a wrong user.
	return subtle.ConstantTimeCompare(u[:], wu[:])&subtle.ConstantTimeCompare(p[:], wp[:]) == 1
}

// DefaultUser is the Basic user when the secret names none.
const DefaultUser = "pipedrive"

// DeriveCredentials makes the legacy deployment-wide webhook credentials older deployments
// registered every webhook with (accepted only during an upgrade, Verifier.Legacy), from the
// state key generated into the client secret at deploy: the password is HMAC-SHA256(stateKey, "pipedrive-webhook-basic"), base64url. So
// every deploy has its own random webhook password without a second generated value, it never
// appears in the template or an environment variable, and it differs from the state key (a
// leaked webhook password does not let anyone forge OAuth state). An operator who wants other
// values sets webhook_user / webhook_password in the secret; those win.
func DeriveCredentials(stateKey []byte) Credentials {
	if len(stateKey) == 0 {
		return Credentials{}
	}
	m := hmac.New(sha256.New, stateKey)
	m.Write([]byte("pipedrive-webhook-basic"))
	return Credentials{User: DefaultUser, Password: base64.RawURLEncoding.EncodeToString(m.Sum(nil))}
}

// Per-installation credentials. Every installation's webhooks are registered with a Basic user
// that names the installation and the key, "pdkit.<key id>.<company id>.<user id>", and a
// password derived from the webhook key and that user (InstallationCredentials). The receiver
// recomputes the password from the user it is sent (Verifier.Authenticate), so it needs no
// table of passwords, and a customer who reads their own webhooks' settings learns credentials
// that are valid for their own installation only. The key id in the user lets the receiver
// pick the key (current or, during a rotation's grace, previous) and lets register_webhooks see
// that a webhook was made with another key (the user differs) without ever reading a password
// back from Pipedrive.

// UserPrefix starts every installation-scoped Basic user.
const UserPrefix = "pdkit"

// MinKeyLen is the shortest webhook key accepted (the template generates 64 characters).
const MinKeyLen = 32

// Keys are the contents of the webhook key secret: Current signs the credentials of every
// webhook registered now; Previous, the key before the last rotation, is still accepted until
// PreviousUntil (the grace while every installation's webhooks are registered again). String
// and GoString never show a key.
type Keys struct {
	Current       []byte
	Previous      []byte
	PreviousUntil time.Time
}

// String shows the key ids and the grace, never a key.
func (k Keys) String() string {
	s := "webhook.Keys{current=" + KeyID(k.Current)
	if len(k.Previous) > 0 {
		s += " previous=" + KeyID(k.Previous) + " until=" + k.PreviousUntil.UTC().Format(time.RFC3339)
	}
	return s + "}"
}

// GoString is String.
func (k Keys) GoString() string { return k.String() }

// For returns the credentials installation id's webhooks are registered with now (the current
// key's).
func (k Keys) For(id installation.ID) Credentials { return InstallationCredentials(k.Current, id) }

// KeyID names a key without revealing it: 8 hex digits of HMAC-SHA256(key, "key-id"). Empty
// for an empty key.
func KeyID(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pipedrive-webhook-key-id"))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// InstallationCredentials are the Basic pair of installation id's webhooks under key: the user
// "pdkit.<KeyID(key)>.<company>.<user>" and the password base64url(HMAC-SHA256(key, user)).
// Invalid (empty) for an empty key or an invalid id.
func InstallationCredentials(key []byte, id installation.ID) Credentials {
	if len(key) == 0 || !id.Valid() {
		return Credentials{}
	}
	user := UserPrefix + "." + KeyID(key) + "." + strconv.FormatInt(id.CompanyID, 10) + "." + strconv.FormatInt(id.UserID, 10)
	return Credentials{User: user, Password: installationPassword(key, user)}
}

func installationPassword(key []byte, user string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("pipedrive-webhook-installation\x00"))
	m.Write([]byte(user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Caller is who a delivery's credentials authenticate.
type Caller struct {
	// Installation is the installation the credentials were made for; zero for Legacy.
	Installation installation.ID
	// KeyID is the key that signed them; Previous is true when that is the previous key
	// (accepted during a rotation's grace).
	KeyID    string
	Previous bool
	// Legacy is true for the deployment-wide pair of older deployments (Verifier.Legacy): it
	// names no installation.
	Legacy bool
}

// Owns reports whether the caller may deliver events of installation id: its own installation,
// or any while the legacy pair is accepted (it was the same for every installation).
func (c Caller) Owns(id installation.ID) bool { return c.Legacy || c.Installation == id }

// Errors of Authenticate: both mean 401.
var (
	// ErrUnauthorized: no Basic header, a garbled one, an unknown user, a wrong password, or
	// the previous key or the legacy pair after their grace.
	ErrUnauthorized = errors.New("webhook: unauthorized")
	// ErrUnknownKey: a well-formed installation user whose key id is neither the current nor the
	// previous key. The keys may just have been rotated: read them again (at most every so
	// often) and authenticate once more.
	ErrUnknownKey = errors.New("webhook: credentials name an unknown key")
)

// Verifier authenticates the Basic credentials of a delivery. The zero Verifier refuses all.
type Verifier struct {
	Keys Keys
	// Legacy is the deployment-wide pair older deployments registered every webhook with. It is
	// accepted, for any installation, until LegacyUntil (zero: never), so webhooks made before
	// an upgrade keep working until register_webhooks has replaced them.
	Legacy      Credentials
	LegacyUntil time.Time
}

// Authenticate returns who the Authorization header authenticates at now, or an error wrapping
// ErrUnauthorized or ErrUnknownKey. Passwords are compared in constant time (as digests of a
// fixed length); the user, which names an installation and is no secret, selects the key.
func (v Verifier) Authenticate(header string, now time.Time) (Caller, error) {
	user, pass, ok := basicAuth(header)
	if !ok {
		return Caller{}, fmt.Errorf("%w: no Basic credentials", ErrUnauthorized)
	}
	kid, id, ours := parseUser(user)
	if !ours {
		if v.Legacy.Valid() && now.Before(v.LegacyUntil) && v.Legacy.Authorized(header) {
			return Caller{Legacy: true}, nil
		}
		return Caller{}, fmt.Errorf("%w: not an installation user", ErrUnauthorized)
	}
	c := Caller{Installation: id, KeyID: kid}
	var key []byte
	switch {
	case len(v.Keys.Current) > 0 && kid == KeyID(v.Keys.Current):
		key = v.Keys.Current
	case len(v.Keys.Previous) > 0 && kid == KeyID(v.Keys.Previous):
		if !now.Before(v.Keys.PreviousUntil) {
			return Caller{}, fmt.Errorf("%w: the previous key's grace ended", ErrUnauthorized)
		}
		key, c.Previous = v.Keys.Previous, true
	default:
		return Caller{}, ErrUnknownKey
	}
	got := sha256.Sum256([]byte(pass))
	want := sha256.Sum256([]byte(installationPassword(key, user)))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return Caller{}, fmt.Errorf("%w: wrong password", ErrUnauthorized)
	}
	return c, nil
}

// basicAuth splits an Authorization header of the Basic scheme.
func basicAuth(header string) (user, pass string, ok bool) {
	scheme, enc, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// parseUser reads "pdkit.<key id>.<company>.<user>"; ids are canonical positive decimals.
func parseUser(user string) (kid string, id installation.ID, ok bool) {
	parts := strings.Split(user, ".")
	if len(parts) != 4 || parts[0] != UserPrefix || len(parts[1]) != 8 {
		return "", installation.ID{}, false
	}
	if _, err := hex.DecodeString(parts[1]); err != nil || strings.ToLower(parts[1]) != parts[1] {
		return "", installation.ID{}, false
	}
	co, ok1 := canonicalID(parts[2])
	us, ok2 := canonicalID(parts[3])
	id = installation.ID{CompanyID: co, UserID: us}
	if !ok1 || !ok2 || !id.Valid() {
		return "", installation.ID{}, false
	}
	return parts[1], id, true
}

func canonicalID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}
