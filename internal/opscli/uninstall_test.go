package opscli_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Finding 8: `pdctl uninstall` revokes the installation's tokens at Pipedrive (the refresh
// token, which revokes all of them) and marks it uninstalled, after an audit line; a failed
// revoke changes nothing unless -force.
func TestUninstallCommandRevokesAndUninstalls(t *testing.T) {
	f := newFixture(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	f.addTokens(tok.AccessToken, tok.RefreshToken)
	if _, err := f.store.Install(context.Background(), installation.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: "https://acme.pipedrive.com",
		Scopes: []string{"base"}, ExpiresAt: f.now.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	f.cli.Uninstall = &opscli.Uninstaller{
		Tokens: f.store, Store: f.store, Log: runLogger(&audit),
		OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret), HTTP: sim.HTTP.Client()},
		Who:   func(context.Context) string { return "oncall@test" },
	}

	if err := f.exec(context.Background(), "uninstall", id.String()); !errors.Is(err, opscli.ErrUsage) {
		t.Errorf("uninstall without -reason = %v, want ErrUsage", err)
	}

	// Pipedrive's revoke fails: nothing changes without -force.
	fault := sim.Inject(pdsim.Fault{Path: "/oauth/revoke", Status: 503})
	if err := f.exec(context.Background(), "uninstall", "-reason", "customer contract ended", id.String()); err == nil {
		t.Errorf("uninstall with Pipedrive down = nil, want an error")
	}
	if in, err := f.store.Get(context.Background(), id); err != nil || in.Status != installation.StatusActive {
		t.Errorf("after a failed revoke: %v, %v; want the installation still active", in.Status, err)
	}
	sim.RemoveFault(fault)

	out := f.run(t, "uninstall", "-reason", "customer contract ended", id.String())
	if !strings.Contains(out, "refresh_token revoked at Pipedrive") || !strings.Contains(out, "uninstalled") {
		t.Errorf("uninstall printed %q, want the revoke and the new status", out)
	}
	if n := sim.Counters().Revokes; n != 1 {
		t.Errorf("revokes at Pipedrive = %d, want 1", n)
	}
	if n := sim.RevokeUser(pdsim.DefaultUserID); n != 0 {
		t.Errorf("tokens still live at Pipedrive after the uninstall = %d, want 0", n)
	}
	in, err := f.store.Get(context.Background(), id)
	if err != nil || in.Status != tokenstore.StatusUninstalled || in.AccessToken != "" || in.RefreshToken != "" {
		t.Errorf("after uninstall: %v (err %v), want uninstalled without tokens", in.Status, err)
	}
	if a := audit.String(); !strings.Contains(a, `"operator":"oncall@test"`) || !strings.Contains(a, "customer contract ended") {
		t.Errorf("audit log %q lacks the operator and the reason", a)
	}
	for _, tk := range f.tokens {
		if strings.Contains(audit.String(), tk) {
			t.Errorf("audit log contains a token")
		}
	}

	// Again: nothing left to revoke, still uninstalled.
	if out := f.run(t, "uninstall", "-reason", "customer contract ended", id.String()); !strings.Contains(out, "no tokens stored") {
		t.Errorf("second uninstall printed %q, want no tokens stored", out)
	}
	if err := f.exec(context.Background(), "uninstall", "-reason", "customer contract ended", "9:9"); err == nil {
		t.Errorf("uninstall of an unknown installation = nil, want an error")
	}
}
