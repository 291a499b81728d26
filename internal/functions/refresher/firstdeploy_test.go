package refresher

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestBootstrapNotConfigured runs the real bootstrap under the emulator with the template's
// environment and the secret of a first deploy (client id and secret still REPLACE_ME): it
// starts (no crash: no Lambda error, no alarm), says "not configured" once at its cold start,
// and answers every invocation {"not_configured":true} without an error; once the secret is
// set, the next run is a normal one, without a restart.
func TestBootstrapNotConfigured(t *testing.T) {
	res := testenv.Provision(t)
	testenv.AsFirstDeployed(t, res)
	var logs testenv.Buffer
	f, _ := testenv.StartFunction(t, "./functions/refresher", lambdarun.Options{
		Name:    "RefresherFunction",
		Env:     testenv.FunctionEnv(t, res, "RefresherFunction"),
		Timeout: 30 * time.Second,
		Output:  io.MultiWriter(&logs, logSink, testenv.TestLogWriter(t)),
	})
	for _, in := range []map[string]any{{}, {"shard": 3}, {"company_id": 1, "user_id": 2, "force": true}, {}} {
		var s Summary
		if err := f.InvokeJSON(t.Context(), in, &s); err != nil {
			t.Fatalf("invoke %v = %v, want no function error", in, err)
		}
		if !s.NotConfigured || s.Due != 0 {
			t.Errorf("invoke %v = %+v, want not_configured and nothing done", in, s)
		}
	}
	if got := strings.Count(logs.String(), "refresher: not configured: "); got != 1 {
		t.Errorf("not-configured lines = %d, want 1 (the cold start):\n%s", got, logs.String())
	}

	b, err := json.Marshal(infra.ClientCredentials{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, StateKey: testenv.StateKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secretsmanager.NewFromConfig(testenv.AWS(t)).PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(res.SecretID), SecretString: aws.String(string(b))}); err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := f.InvokeJSON(t.Context(), map[string]any{}, &s); err != nil || s.NotConfigured || s.Mode != "schedule" {
		t.Errorf("invoke after setup = %+v, %v; want a normal scheduled run", s, err)
	}
}
