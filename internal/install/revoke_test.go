package install_test

import (
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
)

// Finding 8: after a successful exchange, tokens that could not be kept (users/me failed, the
// store failed) are revoked at Pipedrive rather than left valid with nobody holding them; a
// successful install revokes nothing.
func TestUnkeptTokensAreRevoked(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(e *env)
		want    install.Outcome
		revokes int
	}{
		{"installed", func(*env) {}, install.Installed, 0},
		{"users/me fails", func(e *env) { e.sim.Inject(pdsim.Fault{Path: "/api/v1/users/me", Status: 500}) }, install.IdentityFailed, 1},
		{"store fails", func(e *env) { e.in.Store = failingStore{} }, install.Failed, 1},
		{"exchange fails (nothing issued)", func(e *env) { e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503}) }, install.Outage, 0},
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
			if tt.revokes > 0 {
				// The refresh token was revoked, which revokes all of the user's tokens:
				// none is left for the simulator to revoke.
				if n := e.sim.RevokeUser(pdsim.DefaultUserID); n != 0 {
					t.Errorf("tokens still live after the revoke = %d, want 0", n)
				}
			}
		})
	}
}
