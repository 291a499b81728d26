package pdwork_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// sessions wires Sessions as the worker does, over moto and the simulator, with the default
// simulator user installed.
func sessions(t *testing.T) (*pdwork.Sessions, *pdsimtest.TestServer) {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	store := &tokenstore.Store{DB: testenv.DynamoDB(t), Table: res.TableName}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	if _, err := store.Install(t.Context(), installation.Installation{
		ID:          installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID},
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(cfg), SecretID: res.SecretID, Logger: runLogger()}
	return &pdwork.Sessions{
		Installations: store,
		Refresher: &refresh.Refresher{
			OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: creds.OAuthCredentials, HTTP: oauthHTTP(sim)},
			Store: store, Owner: "pdwork-test", Log: runLogger(),
		},
		API: &pdapi.Client{HTTP: sim.HTTP.Client()},
	}, sim
}

func acmeJob(id string) jobs.Job {
	return jobs.Job{ID: id, Kind: jobs.KindAPICall, CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID, Method: "GET", Path: "/api/v2/deals"}
}

// TestSessionDoRefreshesOnceAfter401: a rejected access token is refreshed under the lease and
// the call repeated; the caller sees the answer only.
func TestSessionDoRefreshesOnceAfter401(t *testing.T) {
	s, sim := sessions(t)
	sim.ExpireAccessTokens(pdsim.DefaultUserID)
	ss, err := s.Open(t.Context(), acmeJob("s-401"))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	before := ss.Installation().AccessToken
	resp, err := ss.Do(t.Context(), "GET", "/api/v2/deals", nil)
	if err != nil || resp.Status != 200 {
		t.Fatalf("Do = %d, %v; want 200", resp.Status, err)
	}
	if ss.Installation().AccessToken == before {
		t.Errorf("session still uses the rejected access token")
	}
	if got := sim.Counters().APIByStatus; !maps.Equal(got, map[int]int{401: 1, 200: 1}) {
		t.Errorf("simulator answers = %v, want one 401 and one 200", got)
	}
	if got := sim.Counters().TokenByGrant["refresh_token"]; got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
}

// TestSessionDecisions: failures come back as *Decided with the verdict a runner returns.
func TestSessionDecisions(t *testing.T) {
	s, sim := sessions(t)
	j := acmeJob("s-missing")
	j.UserID = 999
	_, err := s.Open(t.Context(), j)
	var d *pdwork.Decided
	if !errors.As(err, &d) || d.Verdict.Outcome != worker.OutcomeDeadLettered || d.Verdict.Reason != pdwork.ReasonInstallationNotFound {
		t.Errorf("Open(never installed) = %v, want dead-lettered (installation_not_found)", err)
	}
	ss, err := s.Open(t.Context(), acmeJob("s-404"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ss.Do(t.Context(), "GET", "/api/v2/deals/424242", nil)
	if v := pdwork.VerdictOf(err); v.Outcome != worker.OutcomeDeadLettered || v.Reason != "not_found" || v.Status != 404 {
		t.Errorf("Do(missing deal) verdict = %+v, want dead-lettered (not_found) 404", v)
	}
	sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: 401, Times: 2})
	_, err = ss.Do(t.Context(), "GET", "/api/v2/deals", nil)
	if v := pdwork.VerdictOf(err); v.Outcome != worker.OutcomeDeadLettered || v.Reason != pdwork.ReasonUnauthorizedAfterRefresh {
		t.Errorf("Do(401 twice) verdict = %+v, want dead-lettered (unauthorized_after_refresh)", v)
	}
}
