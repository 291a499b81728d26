package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Credentials are the HTTP Basic user and password Pipedrive sends with every delivery: the
// worker registers webhooks with them, the receiver checks them. They never print.
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
	scheme, enc, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
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

// DeriveCredentials makes the webhook credentials from the state key generated into the secret
// at deploy: the password is HMAC-SHA256(stateKey, "pipedrive-webhook-basic"), base64url. So
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
