package install_test

import (
	"context"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// Finding 8: after a successful exchange, tokens that could not be kept (users/me failed, the
// store failed) are revoked at Pipedrive rather than left valid with nobody holding them, as
// far as that cannot harm a working installation: the refresh token (whose revoke ends every
// token of the user) only when the user is known and has none; otherwise the new access
// token. A successful install revokes nothing.
func TestUnkeptTokensAreRevoked(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *env)
		want    install.Outcome
		revokes int
		// refreshRevoked: the refresh token went too (no live token of the user is left).
		refreshRevoked bool
	}{
		{"installed", func(*env) {}, install.Installed, 0, false},
		// Who the tokens belong to is unknown: only the access token, which touches nothing else.
		{"first install, users/me fails", func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v1/users/me", Status: 500}) }, install.IdentityFailed, 1, false},
		// A first install (the store holds no installation of the user): everything goes.
		{"first install, store fails", func(e *env) { e.in.Store = failingStore{} }, install.Failed, 1, true},
		{"exchange fails (nothing issued)", func(e *env) { e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503}) }, install.Outage, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tt.setup(e)
			r := e.in.Install(t.Context(), e.issueCode())
			if r.Outcome != tt.want {
				t.Fatalf("Install() = %v (%v), want %v", r.Outcome, r.Err, tt.want)
			}
			if n := e.sim.Counters().Revokes; n != tt.revokes {
				t.Errorf("revokes at Pipedrive = %d, want %d", n, tt.revokes)
			}
			if tt.revokes == 0 {
				return
			}
			live := e.sim.RevokeUser(pdsim.DefaultUserID)
			if tt.refreshRevoked && live != 0 {
				t.Errorf("tokens still live after revoking the refresh token = %d, want 0", live)
			}
			if !tt.refreshRevoked && live != 1 {
				t.Errorf("tokens still live after revoking the access token = %d, want 1 (the refresh token, kept)", live)
			}
		})
	}
}

// TestFailedReinstallLeavesTheWorkingInstallationWorking: a user with a working installation
// installs again and the reinstall fails after the exchange (users/me, then the store): the
// clean-up revokes only the new access tokens, and the stored installation's tokens still
// work at Pipedrive (a call with its access token, a refresh with its refresh token).
func TestFailedReinstallLeavesTheWorkingInstallationWorking(t *testing.T) {
	e := newEnv(t)
	if r := e.in.Install(t.Context(), e.issueCode()); r.Outcome != install.Installed {
		t.Fatalf("first Install() = %v (%v), want installed", r.Outcome, r.Err)
	}
	working, err := e.stored()
	if err != nil {
		t.Fatal(err)
	}

	fault := e.sim.Inject(pdsim.Fault{Path: "/api/v1/users/me", Status: 500})
	if r := e.in.Install(t.Context(), e.issueCode()); r.Outcome != install.IdentityFailed {
		t.Fatalf("reinstall with users/me failing = %v (%v), want identity_failed", r.Outcome, r.Err)
	}
	e.sim.RemoveFault(fault)
	e.in.Store = failingStore{}
	if r := e.in.Install(t.Context(), e.issueCode()); r.Outcome != install.Failed {
		t.Fatalf("reinstall with the store failing = %v (%v), want failed", r.Outcome, r.Err)
	}
	if n := e.sim.Counters().Revokes; n != 2 {
		t.Errorf("revokes at Pipedrive = %d, want 2 (each failed reinstall's access token)", n)
	}

	if _, err := (&pdapi.Client{HTTP: e.sim.HTTP.Client()}).Me(t.Context(), working.APIDomain, working.AccessToken); err != nil {
		t.Errorf("users/me with the working installation's access token = %v, want it to work", err)
	}
	tok, err := e.in.OAuth.(interface {
		Refresh(ctx context.Context, refreshToken string) (*pdoauth.Token, error)
	}).Refresh(t.Context(), working.RefreshToken)
	if err != nil {
		t.Fatalf("refresh with the working installation's refresh token = %v, want it to work", err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
}
