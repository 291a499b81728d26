package refresher

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestBootstrapUnderEmulator builds the real bootstrap and runs it under the Lambda Runtime
// Interface Emulator against moto and the simulator: main.go's wiring, the scheduled run, a
// manual run and a rejected input, end to end.
func TestBootstrapUnderEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{
		ClientID:            testenv.ClientID,
		ClientSecret:        testenv.ClientSecret,
		RotateRefreshTokens: true,
	})
	// Sealed under the stack's key, as the bootstrap reads and writes them.
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(testenv.AWS(t)), Table: res.TableName, Cipher: testenv.Cipher(t, res)}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatalf("IssueToken = %v", err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	instID := tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	old, err := store.Install(ctx, tokenstore.Installation{
		ID:           instID,
		AccessToken:  tok.AccessToken,
		RefreshToken: tok.RefreshToken,
		APIDomain:    tok.APIDomain,
		Scopes:       strings.Split(tok.Scope, ","),
		ExpiresAt:    time.Now().Add(5 * time.Minute), // due: within refresh.Lead
	})
	if err != nil {
		t.Fatalf("Install = %v", err)
	}

	f, logs := testenv.StartFunction(t, "./functions/refresher", lambdarun.Options{
		Name: "RefresherFunction",
		// The simulator's api_domain is a loopback address: allowed for this bootstrap only.
		Env: append(testenv.Env(t, res), "PIPEDRIVE_OAUTH_URL="+sim.URL, "AWS_LAMBDA_LOG_STREAM_NAME=2026/11/27/[$LATEST]e2e",
			pdoauth.EnvAllowLoopback+"=true"),
		Timeout: 60 * time.Second,
		Output:  io.MultiWriter(logSink, testenv.TestLogWriter(t)),
	})

	var s Summary
	if err := f.InvokeJSON(ctx, map[string]any{}, &s); err != nil {
		t.Fatalf("invoke {} = %v", err)
	}
	// The scheduled run also sweeps the hour's shards for the daily webhook checks (what it
	// queues depends on the hour: webhookcheck's own tests count it).
	if s.WebhookChecks == nil {
		t.Errorf("invoke {} = %+v, want the webhook-check sweep reported", s)
	}
	s.WebhookChecks = nil
	if want := (Summary{Mode: "schedule", Summary: refresh.Summary{Due: 1, Refreshed: 1}}); s != want {
		t.Errorf("invoke {} = %+v, want %+v", s, want)
	}
	now, err := store.Get(ctx, instID)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	secrets.Add("access token", now.AccessToken)
	secrets.Add("refresh token", now.RefreshToken)
	if now.AccessToken == old.AccessToken || now.RefreshToken == old.RefreshToken || now.Version <= old.Version {
		t.Errorf("after the run: access changed=%t refresh changed=%t version %d→%d; want new tokens and a higher version",
			now.AccessToken != old.AccessToken, now.RefreshToken != old.RefreshToken, old.Version, now.Version)
	}
	if !now.ExpiresAt.After(time.Now().Add(50 * time.Minute)) {
		t.Errorf("ExpiresAt = %s, want about an hour from now", now.ExpiresAt)
	}

	s = Summary{}
	if err := f.InvokeJSON(ctx, map[string]any{"company_id": instID.CompanyID, "user_id": instID.UserID, "force": true}, &s); err != nil {
		t.Fatalf("manual invoke = %v", err)
	}
	if s.Mode != "manual" || s.Outcome != "refreshed" || s.Refreshed != 1 {
		t.Errorf("manual invoke = %+v, want one forced refresh", s)
	}
	if got := sim.Counters().TokenByGrant["refresh_token"]; got != 2 {
		t.Errorf("refresh_token calls = %d, want 2", got)
	}
	after, err := store.Get(ctx, instID)
	if err == nil {
		secrets.Add("access token", after.AccessToken)
		secrets.Add("refresh token", after.RefreshToken)
	}
	// What the bootstrap stored, read as stored: no token of any generation in clear.
	if found := testenv.TokensInClear(t, res, tok.AccessToken, tok.RefreshToken, now.AccessToken, now.RefreshToken,
		after.AccessToken, after.RefreshToken); len(found) > 0 {
		t.Errorf("tokens table holds tokens in clear: %v", found)
	}

	err = f.InvokeJSON(ctx, map[string]any{"company_id": "acme", "user_id": 1}, nil)
	var fe *lambdarun.FunctionError
	if !errors.As(err, &fe) || fe.Type != "InputError" || !strings.Contains(fe.Message, "company_id must be a positive integer") {
		t.Errorf("invoke with a malformed id = %v; want an InputError about company_id", err)
	}

	out := logs.String()
	for _, want := range []string{`"msg":"refresher run"`, `"msg":"refresh refreshed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("function log lacks %s", want)
		}
	}
	for _, leak := range secrets.FoundIn(out) {
		t.Errorf("function log contains %s", leak)
	}
	// Every line of every invocation carries its Lambda request id.
	if n := testenv.CheckRequestIDs(t, logs); n < 2 {
		t.Errorf("checked %d log lines of the invocations for their request id, want at least the run and the refresh", n)
	}
}
