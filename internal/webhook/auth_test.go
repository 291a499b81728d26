package webhook_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

var (
	keyOld   = []byte("old-key-0123456789abcdef0123456789abcdef")
	keyNew   = []byte("new-key-0123456789abcdef0123456789abcdef")
	companyA = installation.ID{CompanyID: 3408256, UserID: 5206648}
	companyB = installation.ID{CompanyID: 7700001, UserID: 42}
)

func basicHeader(c webhook.Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password))
}

func TestInstallationCredentials(t *testing.T) {
	a, b := webhook.InstallationCredentials(keyNew, companyA), webhook.InstallationCredentials(keyNew, companyB)
	if want := "pdkit." + webhook.KeyID(keyNew) + ".3408256.5206648"; a.User != want {
		t.Errorf("InstallationCredentials(A).User = %q, want %q", a.User, want)
	}
	if !a.Valid() || a.Password == b.Password || len(a.Password) != 43 {
		t.Errorf("InstallationCredentials = %v / %v: want valid, a 43-character password distinct per installation", a, b)
	}
	if again := webhook.InstallationCredentials(keyNew, companyA); again != a {
		t.Errorf("InstallationCredentials is not deterministic")
	}
	if other := webhook.InstallationCredentials(keyOld, companyA); other.User == a.User || other.Password == a.Password {
		t.Errorf("another key gives the same user or password")
	}
	if webhook.InstallationCredentials(nil, companyA).Valid() || webhook.InstallationCredentials(keyNew, installation.ID{}).Valid() {
		t.Errorf("credentials without a key or an installation are valid")
	}
	k := webhook.Keys{Current: keyNew, Previous: keyOld, PreviousUntil: time.Unix(0, 0)}
	if s := k.String() + k.GoString(); strings.Contains(s, "key-0123") {
		t.Errorf("Keys print a key: %s", s)
	}
}

func TestVerifierAuthenticate(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	rotated := webhook.Keys{Current: keyNew, Previous: keyOld, PreviousUntil: now.Add(time.Hour)}
	legacy := webhook.Credentials{User: "pipedrive", Password: "legacy-password-0123456789"}
	raw := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	a := webhook.InstallationCredentials(keyNew, companyA)
	tests := []struct {
		name    string
		v       webhook.Verifier
		header  string
		at      time.Time
		want    webhook.Caller
		wantErr error
	}{
		{"current key", webhook.Verifier{Keys: rotated}, basicHeader(a), now, webhook.Caller{Installation: companyA, KeyID: webhook.KeyID(keyNew)}, nil},
		{"previous key in grace", webhook.Verifier{Keys: rotated}, basicHeader(webhook.InstallationCredentials(keyOld, companyB)), now,
			webhook.Caller{Installation: companyB, KeyID: webhook.KeyID(keyOld), Previous: true}, nil},
		{"previous key after grace", webhook.Verifier{Keys: rotated}, basicHeader(webhook.InstallationCredentials(keyOld, companyB)), now.Add(time.Hour), webhook.Caller{}, webhook.ErrUnauthorized},
		{"previous key, none configured", webhook.Verifier{Keys: webhook.Keys{Current: keyNew}}, basicHeader(webhook.InstallationCredentials(keyOld, companyB)), now, webhook.Caller{}, webhook.ErrUnknownKey},
		{"unknown key id", webhook.Verifier{Keys: rotated}, basicHeader(webhook.InstallationCredentials([]byte("a-third-key-0123456789abcdef0123456"), companyA)), now, webhook.Caller{}, webhook.ErrUnknownKey},
		{"A's password with B's user", webhook.Verifier{Keys: rotated}, raw("pdkit." + webhook.KeyID(keyNew) + ".7700001.42:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"wrong password", webhook.Verifier{Keys: rotated}, raw(a.User + ":" + a.Password[:42] + "x"), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"empty password", webhook.Verifier{Keys: rotated}, raw(a.User + ":"), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"no header", webhook.Verifier{Keys: rotated}, "", now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"bearer", webhook.Verifier{Keys: rotated}, "Bearer " + a.Password, now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"garbled base64", webhook.Verifier{Keys: rotated}, "Basic %%%", now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"no colon", webhook.Verifier{Keys: rotated}, raw(a.User), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"user with a leading zero", webhook.Verifier{Keys: rotated}, raw("pdkit." + webhook.KeyID(keyNew) + ".03408256.5206648:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"user with a fifth part", webhook.Verifier{Keys: rotated}, raw(a.User + ".1:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"user with id zero", webhook.Verifier{Keys: rotated}, raw("pdkit." + webhook.KeyID(keyNew) + ".0.5206648:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"user with a negative id", webhook.Verifier{Keys: rotated}, raw("pdkit." + webhook.KeyID(keyNew) + ".-1.5206648:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"upper-case key id", webhook.Verifier{Keys: rotated}, raw("pdkit." + strings.ToUpper(webhook.KeyID(keyNew)) + ".3408256.5206648:" + a.Password), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"no keys at all", webhook.Verifier{}, basicHeader(a), now, webhook.Caller{}, webhook.ErrUnknownKey},
		{"legacy pair in its grace", webhook.Verifier{Keys: rotated, Legacy: legacy, LegacyUntil: now.Add(time.Minute)}, basicHeader(legacy), now, webhook.Caller{Legacy: true}, nil},
		{"legacy pair after its grace", webhook.Verifier{Keys: rotated, Legacy: legacy, LegacyUntil: now}, basicHeader(legacy), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"legacy pair never accepted", webhook.Verifier{Keys: rotated, Legacy: legacy}, basicHeader(legacy), now, webhook.Caller{}, webhook.ErrUnauthorized},
		{"legacy user, wrong password", webhook.Verifier{Keys: rotated, Legacy: legacy, LegacyUntil: now.Add(time.Minute)}, raw("pipedrive:guess-guess-guess"), now, webhook.Caller{}, webhook.ErrUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Authenticate(tt.header, tt.at)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Authenticate = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), a.Password) {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

func TestCallerOwns(t *testing.T) {
	a := webhook.Caller{Installation: companyA}
	if !a.Owns(companyA) || a.Owns(companyB) || a.Owns(installation.ID{CompanyID: companyA.CompanyID, UserID: companyB.UserID}) {
		t.Errorf("Caller{A}.Owns: want A only")
	}
	if !(webhook.Caller{Legacy: true}).Owns(companyB) {
		t.Errorf("legacy caller does not own B: the legacy pair was every installation's")
	}
}
