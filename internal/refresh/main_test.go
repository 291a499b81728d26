package refresh_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// t0 is where every test clock starts: whole seconds, as the store keeps times.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// The whole run's log output and every secret the tests saw: TestMain checks, after all tests,
// that no secret reached the log.
var (
	logSink = &testenv.Buffer{}
	secrets = &testenv.Secrets{}
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, logSink, secrets)) }

// env is one test's world: its own table and topic in moto, its own simulator and clock.
type env struct {
	t      *testing.T
	clock  *pdsim.Clock
	sim    *pdsimtest.TestServer
	store  *tokenstore.Store
	inbox  *testenv.AlertInbox
	alerts *alerts.Publisher
	log    *slog.Logger
	// logs is this test's log output alone.
	logs *testenv.Buffer
	// faults are the ids of injected faults on /oauth/token.
	faults []string
}

func newEnv(t *testing.T, rotate bool) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := pdsim.NewClock(t0)
	sim := pdsimtest.New(t, pdsim.Config{
		ClientID:            testenv.ClientID,
		ClientSecret:        testenv.ClientSecret,
		RotateRefreshTokens: rotate,
		Now:                 clock.Now,
	})
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg)), Table: res.TableName, Now: clock.Now}
	logs := &testenv.Buffer{}
	return &env{
		t:     t,
		clock: clock,
		sim:   sim,
		store: store,
		inbox: testenv.SubscribeAlerts(t, cfg, res.AlertsTopicARN),
		alerts: &alerts.Publisher{
			SNS: sns.NewFromConfig(cfg), TopicARN: res.AlertsTopicARN, Source: "refresher", Marks: store, Now: clock.Now,
		},
		log:  slog.New(slog.NewJSONHandler(io.MultiWriter(logSink, logs, testenv.TestLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug})),
		logs: logs,
	}
}

// oauth is an OAuth client for the simulator with the given client secret.
func (e *env) oauth(secret string) *pdoauth.Client {
	return &pdoauth.Client{
		BaseURL:     e.sim.URL,
		Credentials: pdoauth.StaticCredentials(testenv.ClientID, secret),
		HTTP:        e.sim.HTTP.Client(),
		Now:         e.clock.Now,
	}
}

// refresher is a Refresher wired to the simulator and the store, as main.go wires it.
func (e *env) refresher(owner string) *refresh.Refresher {
	return &refresh.Refresher{
		OAuth:  e.oauth(testenv.ClientSecret),
		Store:  e.store,
		Alerts: e.alerts,
		Log:    e.log,
		Owner:  owner,
		Now:    e.clock.Now,
	}
}

// install stores an installation with real tokens from the simulator for user (added to the
// simulator's directory when not the default user), expiring with the access token.
func (e *env) install(user int64) tokenstore.Installation {
	e.t.Helper()
	id := tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: user}
	if user != pdsim.DefaultUserID {
		if err := e.sim.AddUser(pdsim.User{ID: user, CompanyID: pdsim.DefaultCompanyID, CompanyDomain: "acme", Name: "U", Email: "u@acme.example"}); err != nil {
			e.t.Fatalf("AddUser(%d) = %v", user, err)
		}
	}
	tok, err := e.sim.IssueToken(user)
	if err != nil {
		e.t.Fatalf("IssueToken(%d) = %v", user, err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	in, err := e.store.Install(e.t.Context(), tokenstore.Installation{
		ID:           id,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       strings.Split(tok.Scope, ","),
		ExpiresAt:    e.clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second),
	})
	if err != nil {
		e.t.Fatalf("Install(%s) = %v", id, err)
	}
	return in
}

// get reads an installation and registers its tokens as secrets.
func (e *env) get(id tokenstore.InstallationID) tokenstore.Installation {
	e.t.Helper()
	in, err := e.store.Get(e.t.Context(), id)
	if err != nil {
		e.t.Fatalf("Get(%s) = %v", id, err)
	}
	secrets.Add("access token", in.AccessToken)
	secrets.Add("refresh token", in.RefreshToken)
	return in
}

// due reports whether id is listed by Due(before).
func (e *env) due(id tokenstore.InstallationID, before time.Time) bool {
	e.t.Helper()
	ids, err := e.store.Due(e.t.Context(), before, 1000)
	if err != nil {
		e.t.Fatalf("Due(%s) = %v", before, err)
	}
	return slices.Contains(ids, id)
}

// inject adds a simulator fault, remembering it when it answers token calls itself (a pure
// latency fault lets the call through, where the grant counters see it).
func (e *env) inject(f pdsim.Fault) {
	id := e.sim.Inject(f)
	if f.Path == "/oauth/token" && (f.Status != 0 || f.Hang || f.Drop) {
		e.faults = append(e.faults, id)
	}
}

// refreshCalls counts refresh_token calls at the simulator, including those answered by an
// injected token-endpoint fault.
func (e *env) refreshCalls() int {
	c := e.sim.Counters()
	n := c.TokenByGrant["refresh_token"]
	for _, id := range e.faults {
		n += c.Faults[id]
	}
	return n
}

// alertReasons drains the inbox and returns the alerts' reasons, sorted; it fails on an
// alert containing a secret.
func (e *env) alertReasons() []string {
	e.t.Helper()
	var got []string
	for _, a := range e.inbox.Drain(e.t) {
		got = append(got, a.Attributes["reason"])
		for _, leak := range secrets.FoundIn(a.Message + a.Subject) {
			e.t.Errorf("alert %q contains %s", a.Subject, leak)
		}
	}
	slices.Sort(got)
	return got
}

// mustRefresh runs Refresh and checks the outcome and the error contract.
func mustRefresh(t *testing.T, r *refresh.Refresher, ctx context.Context, id tokenstore.InstallationID, force bool, want refresh.Outcome) refresh.Result {
	t.Helper()
	res, err := r.Refresh(ctx, id, force)
	if res.Outcome != want {
		t.Fatalf("Refresh(%s, force=%t) = %s (%s), %v; want %s", id, force, res.Outcome, res.Reason, err, want)
	}
	if (err != nil) != (want == refresh.OutcomeFailed) {
		t.Fatalf("Refresh(%s, force=%t) error = %v; want an error exactly with %s", id, force, err, refresh.OutcomeFailed)
	}
	if res.ID != id {
		t.Errorf("Refresh(%s).ID = %s", id, res.ID)
	}
	secrets.Add("access token", res.Installation.AccessToken)
	secrets.Add("refresh token", res.Installation.RefreshToken)
	return res
}
