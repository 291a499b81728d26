package callback

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

// uninstallEvent is the fixture's DELETE with the given Basic credentials and body.
func uninstallEvent(t *testing.T, auth, body string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	ev := loadEvent(t, "uninstall.json")
	ev.Headers["authorization"] = auth
	ev.Body, ev.IsBase64Encoded = body, false
	return ev
}

const defaultUserBody = `{"company_id":3408256,"user_id":5206648,"timestamp":"2026-11-27T12:30:00Z"}`

// countingCreds counts how often the handler makes the secret be read again.
type countingCreds struct {
	uninstall.Credentials
	invalidations atomic.Int32
}

func (c *countingCreds) Invalidate() {
	c.invalidations.Add(1)
	c.Credentials.Invalidate()
}

// Finding 3: an uninstall signed with a secret rotated after the container cached the old one
// is accepted (the secret is re-read on the mismatch) instead of being lost with a 401.
func TestUninstallWithJustRotatedSecret(t *testing.T) {
	e := newEnv(t)
	before := e.installDefault() // caches the current secret
	const rotated = "rotated-Mk2Wq7Zr5Ln9Tb4-0003"
	e.putSecret(testenv.ClientID, rotated, testenv.StateKey)
	resp := e.handle(uninstallEvent(t, basicAuth(testenv.ClientID, rotated), defaultUserBody))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("uninstall signed with the rotated secret = %d %q, want 200", resp.StatusCode, resp.Body)
	}
	after, err := e.store.Get(t.Context(), before.ID)
	if err != nil {
		t.Fatalf("store.Get = %v", err)
	}
	if after.Status != tokenstore.StatusUninstalled {
		t.Errorf("status after the uninstall = %s, want uninstalled", after.Status)
	}
}

// The re-read is rate-limited per container: a stream of forged uninstalls costs one secret
// read per interval, and each is still refused.
func TestUninstallSecretRereadIsRateLimited(t *testing.T) {
	e := newEnv(t)
	before := e.installDefault()
	cc := &countingCreds{Credentials: e.h.Uninstall.Creds}
	e.h.Uninstall.Creds = cc
	forged := uninstallEvent(t, basicAuth(testenv.ClientID, "guessed-secret"), defaultUserBody)
	for i := range 5 {
		if resp := e.handle(forged); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged uninstall #%d = %d, want 401", i+1, resp.StatusCode)
		}
	}
	if n := cc.invalidations.Load(); n != 1 {
		t.Errorf("secret re-reads after 5 forged uninstalls = %d, want 1", n)
	}
	e.clock.Advance(uninstall.DefaultCredentialReread)
	if resp := e.handle(forged); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged uninstall after the interval = %d, want 401", resp.StatusCode)
	}
	if n := cc.invalidations.Load(); n != 2 {
		t.Errorf("secret re-reads after the interval = %d, want 2", n)
	}
	if after, err := e.store.Get(t.Context(), before.ID); err != nil || after.Status != tokenstore.StatusActive {
		t.Errorf("after forged uninstalls: %v, %v; want the installation active", after.Status, err)
	}
}

// Finding 3: an uninstall dated before the installation was made (delayed or replayed from an
// earlier installation) is acknowledged and ignored; one within the clock-skew tolerance is not.
func TestUninstallDatedBeforeInstall(t *testing.T) {
	right := basicAuth(testenv.ClientID, testenv.ClientSecret)
	tests := []struct {
		name, timestamp string
		uninstalled     bool
	}{
		{"an hour before the install", `"2026-11-27T11:00:00Z"`, false},
		{"a day before, epoch seconds", `1795694400`, false},
		{"seconds before (clock skew)", `"2026-11-27T11:59:50Z"`, true},
		{"after the install", `"2026-11-27T12:30:00Z"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.installDefault() // installed at t0 = 12:00:00
			resp := e.handle(uninstallEvent(t, right, `{"company_id":3408256,"user_id":5206648,"timestamp":`+tt.timestamp+`}`))
			if resp.StatusCode != http.StatusOK || resp.Body != `{"success":true}` {
				t.Errorf("uninstall = %d %q, want 200 {\"success\":true}", resp.StatusCode, resp.Body)
			}
			after, err := e.store.Get(t.Context(), before.ID)
			if err != nil {
				t.Fatalf("store.Get = %v", err)
			}
			if gone := after.Status == tokenstore.StatusUninstalled; gone != tt.uninstalled {
				t.Errorf("uninstalled = %t, want %t", gone, tt.uninstalled)
			}
			if !tt.uninstalled && (after.Version != before.Version || after.RefreshToken == "") {
				t.Errorf("ignored uninstall changed the installation: version %d (was %d)", after.Version, before.Version)
			}
		})
	}
}

// A re-install after an uninstall is not undone by that uninstall delivered again.
func TestReplayedUninstallDoesNotUndoReinstall(t *testing.T) {
	e := newEnv(t)
	right := basicAuth(testenv.ClientID, testenv.ClientSecret)
	e.installDefault()
	e.clock.Advance(10 * time.Minute)
	old := uninstallEvent(t, right, `{"company_id":3408256,"user_id":5206648,"timestamp":"2026-11-27T12:10:00Z"}`)
	if resp := e.handle(old); resp.StatusCode != http.StatusOK {
		t.Fatalf("uninstall = %d", resp.StatusCode)
	}
	e.clock.Advance(10 * time.Minute)
	again := e.installDefault()
	if resp := e.handle(old); resp.StatusCode != http.StatusOK {
		t.Fatalf("replayed uninstall = %d", resp.StatusCode)
	}
	after, err := e.store.Get(t.Context(), again.ID)
	if err != nil {
		t.Fatalf("store.Get = %v", err)
	}
	if after.Status != tokenstore.StatusActive || after.Version != again.Version {
		t.Errorf("after the replayed uninstall: %s version %d, want active version %d", after.Status, after.Version, again.Version)
	}
}

// failingUninstaller is a store whose uninstall write fails.
type failingUninstaller struct{ err error }

func (f failingUninstaller) UninstallAsOf(context.Context, installation.ID, time.Time) (installation.Installation, error) {
	return installation.Installation{}, f.err
}

var _ uninstall.Store = failingUninstaller{}

// Finding 3: Pipedrive never resends an uninstall, so a store failure alerts a person.
func TestUninstallStoreFailureAlerts(t *testing.T) {
	e := newEnv(t)
	e.h.Uninstall.Store = failingUninstaller{err: errors.New("dynamodb: throttled")}
	resp := e.handle(uninstallEvent(t, basicAuth(testenv.ClientID, testenv.ClientSecret), defaultUserBody))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("uninstall with a failing store = %d, want 500", resp.StatusCode)
	}
	if got := e.alertReasons(); !slices.Contains(got, "uninstall_store_failed") {
		t.Errorf("alerts = %v, want uninstall_store_failed", got)
	}
}
