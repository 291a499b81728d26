package refresher

import (
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

// The whole run's log output (handler, refresher and the bootstrap under the emulator) and
// every secret the tests saw: TestMain checks, after all tests, that no secret was logged.
var (
	logSink = &testenv.Buffer{}
	secrets = &testenv.Secrets{}
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, logSink, secrets)) }

// env is one test's world: its own table and topic in moto, its own simulator and clock, and
// a handler wired as main.go wires it.
type env struct {
	t         *testing.T
	clock     *pdsim.Clock
	sim       *pdsimtest.TestServer
	store     *tokenstore.Store
	inbox     *testenv.AlertInbox
	refresher *refresh.Refresher
	h         *Handler
	// faults are the ids of injected faults on /oauth/token.
	faults []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := pdsim.NewClock(t0)
	sim := pdsimtest.New(t, pdsim.Config{
		ClientID:            testenv.ClientID,
		ClientSecret:        testenv.ClientSecret,
		RotateRefreshTokens: true,
		Now:                 clock.Now,
	})
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg)), Table: res.TableName, Now: clock.Now}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(logSink, testenv.TestLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := &refresh.Refresher{
		OAuth: &pdoauth.Client{
			BaseURL:     sim.URL,
			Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret),
			HTTP:        sim.HTTP.Client(),
			Now:         clock.Now,
		},
		Store: store,
		Alerts: &alerts.Publisher{
			SNS: sns.NewFromConfig(cfg), TopicARN: res.AlertsTopicARN, Source: "refresher", Marks: store, Now: clock.Now,
		},
		Log:   log,
		Owner: "refresher-test",
		Now:   clock.Now,
	}
	return &env{
		t:         t,
		clock:     clock,
		sim:       sim,
		store:     store,
		inbox:     testenv.SubscribeAlerts(t, cfg, res.AlertsTopicARN),
		refresher: r,
		h:         &Handler{Store: store, Refresher: r, Log: log, Config: refresh.RunConfig{Now: clock.Now}},
	}
}

// install stores an installation of user (added to the simulator's directory when not the
// default user) with real simulator tokens, its access token expiring in expiresIn.
func (e *env) install(user int64, expiresIn time.Duration) tokenstore.Installation {
	e.t.Helper()
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
		ID:           tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: user},
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       strings.Split(tok.Scope, ","),
		ExpiresAt:    e.clock.Now().Add(expiresIn),
	})
	if err != nil {
		e.t.Fatalf("Install(%d) = %v", user, err)
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

// dueNow lists the installations due at the test clock's now.
func (e *env) dueNow() []tokenstore.InstallationID {
	e.t.Helper()
	ids, err := e.store.Due(e.t.Context(), e.clock.Now(), 1000)
	if err != nil {
		e.t.Fatalf("Due = %v", err)
	}
	return ids
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

// alertReasons drains the inbox and returns the alerts' reasons, sorted.
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

// fixture reads testdata/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}
