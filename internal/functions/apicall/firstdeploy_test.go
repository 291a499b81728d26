package apicall

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestBootstrapNotConfigured runs the real bootstrap under the emulator with the template's
// environment and the secret of a first deploy (client id and secret still REPLACE_ME): it
// starts (no crash: no Lambda error, no alarm) and says "not configured" once at its cold
// start. Before the first install no job can exist; one sent anyway gets its ordinary answer
// (no installation: dead-lettered), not a function error.
func TestBootstrapNotConfigured(t *testing.T) {
	res := testenv.Provision(t)
	testenv.AsFirstDeployed(t, res)
	var logs testenv.Buffer
	f, _ := testenv.StartFunction(t, "./functions/apicall", lambdarun.Options{
		Name:    "ApiCallFunction",
		Env:     testenv.FunctionEnv(t, res, "ApiCallFunction"),
		Timeout: 30 * time.Second,
		Output:  io.MultiWriter(&logs, logSink, testenv.TestLogWriter(t)),
	})
	var batch events.SQSEventResponse
	if err := f.InvokeJSON(t.Context(), events.SQSEvent{}, &batch); err != nil || len(batch.BatchItemFailures) != 0 {
		t.Errorf("empty SQS batch = %v, %v; want no failures, no error", batch.BatchItemFailures, err)
	}
	body, err := json.Marshal(map[string]any{"id": "first-deploy", "kind": jobs.KindAPICall, "company_id": acme.CompanyID, "user_id": acme.UserID, "method": "GET", "path": "/api/v1/users/me"})
	if err != nil {
		t.Fatal(err)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-first-deploy", ReceiptHandle: "r-first-deploy", Body: string(body),
		EventSource: "aws:sqs", EventSourceARN: res.JobsQueueARN}}}
	if err := f.InvokeJSON(t.Context(), ev, &batch); err != nil || len(batch.BatchItemFailures) != 0 {
		t.Fatalf("a job = %v, %v; want it answered (dead-lettered), no function error", batch.BatchItemFailures, err)
	}
	if !strings.Contains(logs.String(), `"reason":"installation_not_found"`) {
		t.Errorf("the job's decision is not installation_not_found:\n%s", logs.String())
	}
	if got := strings.Count(logs.String(), "apicall: not configured: "); got != 1 {
		t.Errorf("not-configured lines = %d, want 1 (the cold start):\n%s", got, logs.String())
	}
}
