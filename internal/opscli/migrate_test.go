package opscli_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

var simID = installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}

// migrateFixture is the opscli fixture with a simulator and a Migrator wired as pdctl wires it.
func migrateFixture(t *testing.T, secret string) (*fixture, *pdsimtest.TestServer) {
	t.Helper()
	t.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true") // the simulator's api_domain is on loopback
	f := newFixture(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	f.cli.Migrator = &opscli.Migrator{
		OAuth:         &pdoauth.Client{BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, secret), HTTP: sim.HTTP.Client()},
		Users:         &pdapi.Client{HTTP: sim.HTTP.Client()},
		Installs:      f.store,
		Jobs:          &jobs.Enqueuer{SQS: f.sqs, QueueURL: f.jobs},
		RateLimitWait: 2 * time.Second,
	}
	return f, sim
}

// migrate runs `pdctl migrate -json` with stdin and returns its results and error.
func (f *fixture) migrate(t *testing.T, stdin string, args ...string) ([]opscli.MigrateResult, error) {
	t.Helper()
	f.out.Reset()
	f.cli.In = strings.NewReader(stdin)
	err := runCLI(context.Background(), f.cli, append([]string{"migrate", "-json"}, args...))
	var res []opscli.MigrateResult
	if f.out.Len() > 0 {
		if jerr := json.Unmarshal(f.out.Bytes(), &res); jerr != nil {
			t.Fatalf("migrate -json output %q: %v", f.out.String(), jerr)
		}
	}
	for _, line := range strings.Split(stdin, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			secrets.Add("API token", line)
		}
	}
	for _, tok := range strings.Fields(stdin) {
		if strings.Contains(f.out.String(), tok) || (err != nil && strings.Contains(err.Error(), tok)) {
			t.Errorf("migrate printed an API token")
		}
	}
	return res, err
}

func (f *fixture) queuedJobs(t *testing.T) []jobs.Job {
	t.Helper()
	out, err := f.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &f.jobs, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatalf("receive jobs: %v", err)
	}
	var js []jobs.Job
	for _, m := range out.Messages {
		j, err := jobs.Parse(*m.Body)
		if err != nil {
			t.Fatalf("queued job %q: %v", *m.Body, err)
		}
		js = append(js, j)
	}
	return js
}

func TestMigrateInstallsFromAnAPIToken(t *testing.T) {
	f, sim := migrateFixture(t, testenv.ClientSecret)
	apiToken := sim.AddAPIToken(pdsim.DefaultUserID)

	res, err := f.migrate(t, "\n# customers to migrate\n"+apiToken+"\n")
	if err != nil || len(res) != 1 {
		t.Fatalf("migrate = %+v, %v; want one result, no error", res, err)
	}
	r := res[0]
	if r.Outcome != opscli.MigrateInstalled || r.CompanyID != simID.CompanyID || r.UserID != simID.UserID || r.Line != 3 || !r.WebhooksQueued {
		t.Errorf("migrate = %+v, want installed %s on line 3 with webhooks queued", r, simID)
	}
	in, err := f.store.Get(context.Background(), simID)
	if err != nil || in.Status != installation.StatusActive || in.AccessToken == "" || in.RefreshToken == "" || in.APIDomain != sim.URL || in.Version != r.Version {
		t.Errorf("stored %s = %+v, %v; want active with tokens, api_domain %s, version %d", simID, in, err, sim.URL, r.Version)
	}
	f.addTokens(in.AccessToken, in.RefreshToken)
	// The tokens work against Pipedrive (the simulator knows them as OAuth tokens).
	if me, err := (&pdapi.Client{HTTP: sim.HTTP.Client()}).Me(context.Background(), in.APIDomain, in.AccessToken); err != nil || me.ID != simID.UserID {
		t.Errorf("users/me with the stored token = %+v, %v", me, err)
	}
	js := f.queuedJobs(t)
	if len(js) != 1 || js[0].Kind != jobs.KindRegisterWebhooks || js[0].CompanyID != simID.CompanyID || js[0].UserID != simID.UserID {
		t.Errorf("queued jobs = %+v, want one register_webhooks for %s", js, simID)
	}
	if n := sim.Counters().TokenByGrant["exchange_api_token"]; n != 1 {
		t.Errorf("exchange_api_token calls = %d, want 1", n)
	}

	// The same API token again: Pipedrive accepts each once. The installation stays as it was.
	res, err = f.migrate(t, apiToken)
	if !errors.Is(err, opscli.ErrMigrateFailed) || len(res) != 1 || res[0].Outcome != opscli.MigrateInvalidToken || res[0].Reason != "api_token_invalid" {
		t.Errorf("second migrate = %+v, %v; want invalid_api_token (api_token_invalid) and ErrMigrateFailed", res, err)
	}
	if again, _ := f.store.Get(context.Background(), simID); again.Version != in.Version || again.AccessToken != in.AccessToken {
		t.Errorf("second migrate changed the installation: version %d -> %d", in.Version, again.Version)
	}
}

func TestMigrateTextOutputSaysWhatToDo(t *testing.T) {
	f, _ := migrateFixture(t, testenv.ClientSecret)
	f.out.Reset()
	f.cli.In = strings.NewReader("not-a-real-token\n")
	err := f.exec(context.Background(), "migrate")
	if !errors.Is(err, opscli.ErrMigrateFailed) {
		t.Fatalf("migrate = %v, want ErrMigrateFailed", err)
	}
	out := f.out.String()
	if !strings.HasPrefix(out, "line 1: invalid_api_token: ") || !strings.Contains(out, "nothing stored") || strings.Contains(out, "not-a-real-token") {
		t.Errorf("migrate output = %q, want a clear invalid-token line without the token", out)
	}
}

// TestMigrateRows covers each OAuth answer of the seed that an exchange_api_token can meet,
// and the failures after it: nothing is stored unless the installation is complete.
func TestMigrateRows(t *testing.T) {
	tokenBody := func(apiDomain string) string {
		return `{"access_token":"v1u:x","refresh_token":"1:2:y","token_type":"Bearer","expires_in":3599,"scope":"base","api_domain":"` + apiDomain + `"}`
	}
	tests := []struct {
		name        string
		secret      string
		fault       *pdsim.Fault
		token       string // "" registers a real API token
		want        opscli.MigrateOutcome
		wantReason  string
		wantCalls   int // exchange_api_token requests the simulator counted (an injected fault answers before it counts)
		wantMessage string
	}{
		{name: "api_token invalid", token: "unknown-token", want: opscli.MigrateInvalidToken, wantReason: "api_token_invalid", wantCalls: 1, wantMessage: "does not accept this API token"},
		{name: "client secret wrong", secret: "wrong", wantCalls: 1, want: opscli.MigrateConfigError, wantReason: "client_invalid", wantMessage: "client id or secret"},
		{name: "5xx", fault: &pdsim.Fault{Path: "/oauth/token", Status: 503}, want: opscli.MigrateUnavailable, wantReason: "unavailable", wantMessage: "Run again later"},
		{name: "500", fault: &pdsim.Fault{Path: "/oauth/token", Status: 500}, want: opscli.MigrateUnavailable, wantReason: "server_error"},
		{name: "429 twice", fault: &pdsim.Fault{Path: "/oauth/token", Status: 429, Header: http.Header{"Retry-After": {"1"}}}, want: opscli.MigrateUnavailable, wantReason: "rate_limited"},
		{name: "429 once then installed", fault: &pdsim.Fault{Path: "/oauth/token", Status: 429, Times: 1, Header: http.Header{"Retry-After": {"1"}}}, want: opscli.MigrateInstalled, wantReason: "installed", wantCalls: 1},
		{name: "unsupported grant type", fault: &pdsim.Fault{Path: "/oauth/token", Status: 400, Body: `{"success":false,"message":"Unsupported grant type: ` + "`grant_type`" + ` is invalid","error":"unsupported_grant_type"}`},
			want: opscli.MigrateConfigError, wantReason: "unsupported_grant_type", wantMessage: "unspent"},
		{name: "app not installable", fault: &pdsim.Fault{Path: "/oauth/token", Status: 400, Body: `{"success":false,"message":"App cannot be installed for requested company"}`},
			want: opscli.MigrateNotInstallable, wantReason: "app_not_installable"},
		{name: "untrusted api_domain", fault: &pdsim.Fault{Path: "/oauth/token", Status: 200, Body: tokenBody("http://evil.example")},
			want: opscli.MigrateIdentityFailed, wantReason: "untrusted_api_domain", wantMessage: "install link"},
		{name: "no api_domain", fault: &pdsim.Fault{Path: "/oauth/token", Status: 200, Body: `{"access_token":"v1u:x","refresh_token":"1:2:y","expires_in":3599}`},
			want: opscli.MigrateIdentityFailed, wantReason: "missing_api_domain"},
		{name: "users/me fails", fault: &pdsim.Fault{Path: "/api/v1/users/me", Status: 500},
			want: opscli.MigrateIdentityFailed, wantReason: "users_me_failed", wantCalls: 1, wantMessage: "API token is spent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			secret := tt.secret
			if secret == "" {
				secret = testenv.ClientSecret
			}
			f, sim := migrateFixture(t, secret)
			tok := tt.token
			if tok == "" {
				tok = sim.AddAPIToken(pdsim.DefaultUserID)
			}
			if tt.fault != nil {
				sim.Inject(*tt.fault)
			}
			res, err := f.migrate(t, tok)
			if len(res) != 1 {
				t.Fatalf("migrate = %+v, %v; want one result", res, err)
			}
			r := res[0]
			if r.Outcome != tt.want || r.Reason != tt.wantReason || !strings.Contains(r.Message, tt.wantMessage) {
				t.Errorf("migrate = %+v, want %s (%s) saying %q", r, tt.want, tt.wantReason, tt.wantMessage)
			}
			if got := sim.Counters().TokenByGrant["exchange_api_token"]; got != tt.wantCalls {
				t.Errorf("exchange_api_token handled %d times, want %d", got, tt.wantCalls)
			}
			in, getErr := f.store.Get(context.Background(), simID)
			if tt.want == opscli.MigrateInstalled {
				f.addTokens(in.AccessToken, in.RefreshToken)
				if err != nil || getErr != nil {
					t.Errorf("migrate = %v, stored: %v; want installed", err, getErr)
				}
				return
			}
			if !errors.Is(err, opscli.ErrMigrateFailed) {
				t.Errorf("migrate error = %v, want ErrMigrateFailed", err)
			}
			if !errors.Is(getErr, installation.ErrNotFound) {
				t.Errorf("after %s the store has %s (err %v), want nothing stored", tt.want, simID, getErr)
			}
			if js := f.queuedJobs(t); len(js) != 0 {
				t.Errorf("after %s queued %+v, want no job", tt.want, js)
			}
		})
	}
}

func TestMigrateRefusesTokensAsArguments(t *testing.T) {
	f, _ := migrateFixture(t, testenv.ClientSecret)
	for _, args := range [][]string{{"migrate", "some-api-token"}, {"migrate"}} {
		f.cli.In = strings.NewReader("")
		if err := runCLI(context.Background(), f.cli, args); !errors.Is(err, opscli.ErrUsage) || strings.Contains(err.Error(), "some-api-token") {
			t.Errorf("pdctl %v = %v, want a usage error that does not echo the token", args, err)
		}
	}
	f.cli.Migrator = nil
	f.cli.In = strings.NewReader("tok\n")
	if err := f.exec(context.Background(), "migrate"); err == nil || !strings.Contains(err.Error(), "CLIENT_SECRET_ID") {
		t.Errorf("migrate without configuration = %v, want the variables to set", err)
	}
}
