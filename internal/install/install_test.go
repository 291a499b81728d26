package install_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

const redirectURI = "https://abc123.execute-api.eu-central-1.amazonaws.com/oauth/callback"

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// The whole run's log and every secret the tests saw: TestMain checks that none reached the log.
var (
	logSink = &testenv.Buffer{}
	secrets = &testenv.Secrets{}
)

func TestMain(m *testing.M) { os.Exit(testenv.MainCheckingLogs(m, logSink, secrets)) }

// recorder is a fake jobs queue and alert sender that remembers what it was given.
type recorder struct {
	mu      sync.Mutex
	jobs    []jobs.Job
	alerts  []string
	failJob error
}

func (r *recorder) Enqueue(_ context.Context, j jobs.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failJob != nil {
		return r.failJob
	}
	r.jobs = append(r.jobs, j)
	return nil
}

func (r *recorder) Alert(_ context.Context, a oncall.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, a.Reason)
	return nil
}

var (
	_ install.Enqueuer = (*recorder)(nil)
	_ oncall.Sender    = (*recorder)(nil)
)

// failingStore is a Store whose writes fail.
type failingStore struct{}

func (failingStore) Install(context.Context, installation.Installation) (installation.Installation, error) {
	return installation.Installation{}, errors.New("tokenstore: install: dynamodb unavailable")
}

// env is one test's world: a table in moto, the simulator, a clock and an Installer on them.
type env struct {
	t           *testing.T
	clock       *pdsim.Clock
	sim         *pdsimtest.TestServer
	store       *tokenstore.Store
	rec         *recorder
	in          *install.Installer
	invalidated int
	tokenFaults []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	clock := pdsim.NewClock(t0)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, RedirectURI: redirectURI, Now: clock.Now})
	store := &tokenstore.Store{DB: testenv.SerialWrites(dynamodb.NewFromConfig(cfg)), Table: res.TableName, Now: clock.Now}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(logSink, testenv.TestLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{t: t, clock: clock, sim: sim, store: store, rec: &recorder{}}
	e.in = &install.Installer{
		OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret),
			HTTP: sim.HTTP.Client(), Now: clock.Now},
		Users:                 &pdapi.Client{HTTP: sim.HTTP.Client()},
		Claims:                store,
		Store:                 store,
		Existing:              store,
		Jobs:                  e.rec,
		InvalidateCredentials: func() { e.invalidated++ },
		Alerts:                oncall.Notifier{Sender: e.rec, Log: log},
		Log:                   log,
		RedirectURI:           redirectURI,
		ClaimWait:             200 * time.Millisecond,
		ClaimPoll:             50 * time.Millisecond,
		Retry:                 install.RetryPolicy{Attempts: 3, Backoff: func(int) time.Duration { return 10 * time.Millisecond }},
	}
	return e
}

func (e *env) issueCode() string {
	e.t.Helper()
	code := e.sim.IssueCode(0, redirectURI)
	if code == "" {
		e.t.Fatal("IssueCode = \"\", want a code")
	}
	secrets.Add("authorization code", code)
	return code
}

func (e *env) inject(f pdsim.Fault) {
	id := e.sim.Inject(f)
	if f.Path == "/oauth/token" {
		e.tokenFaults = append(e.tokenFaults, id)
	}
}

// tokenCalls counts authorization_code exchanges, including those answered by a fault.
func (e *env) tokenCalls() int {
	c := e.sim.Counters()
	n := c.TokenByGrant["authorization_code"]
	for _, id := range e.tokenFaults {
		n += c.Faults[id]
	}
	return n
}

func (e *env) stored() (installation.Installation, error) {
	in, err := e.store.Get(e.t.Context(), installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	if err == nil {
		secrets.Add("access token", in.AccessToken)
		secrets.Add("refresh token", in.RefreshToken)
	}
	return in, err
}

func oauthFault(status int, msg, code string) pdsim.Fault {
	body, _ := json.Marshal(map[string]any{"success": false, "message": msg, "error": code})
	return pdsim.Fault{Method: http.MethodPost, Path: "/oauth/token", Status: status, Body: string(body),
		Header: http.Header{"Content-Type": {"application/json"}}}
}

var defaultID = installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}

// TestOutcomes runs one install per row and checks the Result, the exchanges made, what was
// stored, queued and alerted.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(e *env) string // returns the code to install with
		want       install.Outcome
		reason     string
		id         installation.ID
		tokenCalls int
		stored     bool
		jobs       int
		alerts     []string
		invalidate int
	}{
		{"installed", (*env).issueCode, install.Installed, "installed", defaultID, 1, true, 1, nil, 0},
		{"code expired", func(e *env) string {
			code := e.issueCode()
			e.clock.Advance(pdsim.DefaultCodeTTL + time.Second)
			return code
		}, install.CodeExpired, "authorization_code_expired", installation.ID{}, 1, false, 0, nil, 0},
		{"code never issued", func(*env) string {
			secrets.Add("authorization code", "never-issued-code-5678")
			return "never-issued-code-5678"
		}, install.Restart, "", installation.ID{}, 1, false, 0, nil, 0},
		{"another request is exchanging the code", func(e *env) string {
			code := e.issueCode()
			if _, err := e.store.ClaimCode(e.t.Context(), tokenstore.HashCode(code), time.Hour); err != nil {
				e.t.Fatalf("ClaimCode = %v", err)
			}
			return code
		}, install.InProgress, "code_exchanging", installation.ID{}, 0, false, 0, nil, 0},
		{"the request holding the code died", func(e *env) string {
			code := e.issueCode()
			if _, err := e.store.ClaimCode(e.t.Context(), tokenstore.HashCode(code), install.DefaultClaimTTL); err != nil {
				e.t.Fatalf("ClaimCode = %v", err)
			}
			e.clock.Advance(tokenstore.CodeLease + time.Second)
			return code
		}, install.Restart, "code_claim_abandoned", installation.ID{}, 0, false, 0, nil, 0},
		{"app not installable", func(e *env) string {
			e.inject(oauthFault(400, pdsim.MsgNotInstallable, ""))
			return e.issueCode()
		}, install.NotInstallable, "app_not_installable", installation.ID{}, 1, false, 0, nil, 0},
		{"outage", func(e *env) string {
			e.inject(pdsim.Fault{Path: "/oauth/token", Status: 503})
			return e.issueCode()
		}, install.Outage, "", installation.ID{}, 3, false, 0, nil, 0},
		{"users/me fails", func(e *env) string {
			e.sim.Inject(pdsim.Fault{Path: "/api/v1/users/me", Status: 500})
			return e.issueCode()
		}, install.IdentityFailed, "users_me_failed", installation.ID{}, 1, false, 0, nil, 0},
		{"client rejected", func(e *env) string {
			e.inject(oauthFault(401, pdsim.MsgClientInvalid, pdsim.ErrCodeInvalidClient))
			return e.issueCode()
		}, install.ConfigError, "client_invalid", installation.ID{}, 1, false, 0, []string{"client_invalid"}, 1},
		{"store fails", func(e *env) string {
			e.in.Store = failingStore{}
			return e.issueCode()
		}, install.Failed, "store_failed", defaultID, 1, false, 0, []string{"install_store_failed"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			code := tt.setup(e)
			r := e.in.Install(t.Context(), code)
			if r.Outcome != tt.want || (tt.reason != "" && r.Reason != tt.reason) || r.ID != tt.id {
				t.Errorf("Install() = %v %q %v (err %v), want %v %q %v", r.Outcome, r.Reason, r.ID, r.Err, tt.want, tt.reason, tt.id)
			}
			if r.Outcome == install.Installed && r.Version != 1 {
				t.Errorf("Install().Version = %d, want 1", r.Version)
			}
			if n := e.tokenCalls(); n != tt.tokenCalls {
				t.Errorf("token calls = %d, want %d", n, tt.tokenCalls)
			}
			if _, err := e.stored(); (err == nil) != tt.stored {
				t.Errorf("stored installation: err = %v, want stored %t", err, tt.stored)
			}
			if len(e.rec.jobs) != tt.jobs {
				t.Errorf("jobs = %v, want %d", e.rec.jobs, tt.jobs)
			}
			slices.Sort(e.rec.alerts)
			if !slices.Equal(e.rec.alerts, tt.alerts) {
				t.Errorf("alerts = %v, want %v", e.rec.alerts, tt.alerts)
			}
			if e.invalidated != tt.invalidate {
				t.Errorf("credentials invalidated %d times, want %d", e.invalidated, tt.invalidate)
			}
		})
	}
}

// TestReloadIsAlreadyInstalled: the same code again is success without a second exchange, and
// queues no second job.
func TestReloadIsAlreadyInstalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.issueCode()
	first := e.in.Install(t.Context(), code)
	second := e.in.Install(t.Context(), code)
	if first.Outcome != install.Installed || second.Outcome != install.AlreadyInstalled || second.ID != defaultID {
		t.Errorf("Install twice = %v, %v (%v); want installed, then already installed for %v", first.Outcome, second.Outcome, second.ID, defaultID)
	}
	if n := e.tokenCalls(); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
	want := "register_webhooks:" + defaultID.String() + ":v1"
	if len(e.rec.jobs) != 1 || e.rec.jobs[0].ID != want || e.rec.jobs[0].Kind != jobs.KindRegisterWebhooks {
		t.Errorf("jobs = %+v, want one %s", e.rec.jobs, want)
	}
}

// TestOutageReleasesTheClaim: after an outage the same code is exchanged again when the user
// retries, and installs.
func TestOutageReleasesTheClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: 500, Times: 3})
	code := e.issueCode()
	if r := e.in.Install(t.Context(), code); r.Outcome != install.Outage {
		t.Fatalf("Install during the outage = %v, want outage", r.Outcome)
	}
	if r := e.in.Install(t.Context(), code); r.Outcome != install.Installed {
		t.Errorf("Install after the outage = %v (%v), want installed", r.Outcome, r.Err)
	}
}

// TestAbandonedCodeStaysRetired: once a dead request's claim was taken over, every reload
// within the claim's life is told to restart, and nothing is exchanged.
func TestAbandonedCodeStaysRetired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.issueCode()
	if _, err := e.store.ClaimCode(t.Context(), tokenstore.HashCode(code), install.DefaultClaimTTL); err != nil {
		t.Fatalf("ClaimCode = %v", err)
	}
	e.clock.Advance(2 * tokenstore.CodeLease)
	for i := range 3 {
		if r := e.in.Install(t.Context(), code); r.Outcome != install.Restart {
			t.Errorf("Install #%d after the claim was abandoned = %v, want restart", i+1, r.Outcome)
		}
		e.clock.Advance(2 * tokenstore.CodeLease)
	}
	if n := e.tokenCalls(); n != 0 {
		t.Errorf("token calls = %d, want 0", n)
	}
}

// TestEnqueueFailureIsStillInstalled: the installation is stored, so a failed enqueue alerts
// but does not fail the install.
func TestEnqueueFailureIsStillInstalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rec.failJob = errors.New("jobs: enqueue: queue unavailable")
	if r := e.in.Install(t.Context(), e.issueCode()); r.Outcome != install.Installed {
		t.Errorf("Install with a failing queue = %v, want installed", r.Outcome)
	}
	if !slices.Equal(e.rec.alerts, []string{"enqueue_failed"}) {
		t.Errorf("alerts = %v, want [enqueue_failed]", e.rec.alerts)
	}
}

func TestOutcomeString(t *testing.T) {
	tests := []struct {
		o    install.Outcome
		want string
	}{
		{install.Installed, "installed"},
		{install.AlreadyInstalled, "already_installed"},
		{install.InProgress, "in_progress"},
		{install.CodeExpired, "code_expired"},
		{install.Restart, "restart"},
		{install.NotInstallable, "not_installable"},
		{install.Outage, "outage"},
		{install.IdentityFailed, "identity_failed"},
		{install.ConfigError, "config_error"},
		{install.Failed, "failed"},
		{0, "unknown"},
		{99, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.o.String(); got != tt.want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(tt.o), got, tt.want)
		}
	}
}
