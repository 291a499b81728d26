package apicall

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestBootstrapUnderEmulator builds the real bootstrap and runs it under the Lambda Runtime
// Interface Emulator against moto and the simulator: main.go's wiring (environment, secret,
// clients), an SQS batch with a real receipt handle, a direct invocation and a rejected payload.
func TestBootstrapUnderEmulator(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	// Sealed under the stack's key, as the bootstrap reads and writes them.
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(testenv.AWS(t)), Table: res.TableName, Cipher: testenv.Cipher(t, res)}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("access token", tok.AccessToken)
	secrets.Add("refresh token", tok.RefreshToken)
	if _, err := store.Install(ctx, tokenstore.Installation{
		ID: acme, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: tok.APIDomain,
		Scopes: strings.Split(tok.Scope, ","), ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	sim.ExpireAccessTokens(pdsim.DefaultUserID) // the first call answers 401: the refresh path runs too

	f, logs := testenv.StartFunction(t, "./functions/apicall", lambdarun.Options{
		Name: "ApiCallFunction",
		// The environment template.yaml gives the function (JOBS_DLQ_URL, JOBS_MAX_RECEIVES, …),
		// with the simulator and the webhooks under test.
		Env: append(testenv.FunctionEnv(t, res, "ApiCallFunction"),
			"PIPEDRIVE_OAUTH_URL="+sim.URL,
			"WEBHOOK_URL=https://app.example/pipedrive/webhooks",
			"WEBHOOK_EVENTS=deal.*,person.added",
			"AWS_LAMBDA_LOG_STREAM_NAME=2026/11/27/[$LATEST]e2e"),
		Timeout: 30 * time.Second,
		Output:  io.MultiWriter(logSink, testenv.TestLogWriter(t)),
	})

	// An SQS batch: register_webhooks, as the callback enqueues it, through the real queue.
	q := sqs.NewFromConfig(testenv.AWS(t))
	body := encode(t, registerJob(1))
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(res.JobsQueueURL), MessageBody: aws.String(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.JobsQueueURL), WaitTimeSeconds: 2,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %d messages, %v; want 1", len(out.Messages), err)
	}
	m := out.Messages[0]
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: *m.MessageId, ReceiptHandle: *m.ReceiptHandle, Body: *m.Body,
		Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: res.JobsQueueARN}}}
	var batch events.SQSEventResponse
	if err := f.InvokeJSON(ctx, ev, &batch); err != nil {
		t.Fatalf("invoke SQS event = %v", err)
	}
	if len(batch.BatchItemFailures) != 0 {
		t.Errorf("batchItemFailures = %v, want none", batch.BatchItemFailures)
	}
	if hooks := sim.Webhooks(pdsim.DefaultUserID); len(hooks) != 2 || hooks[0].HTTPAuthUser != webhookCreds.User ||
		hooks[0].HTTPAuthPassword != webhookPassword || hooks[0].Version != "2.0" {
		t.Errorf("webhooks at Pipedrive = %d, want 2 v2 webhooks with the secret's Basic pair", len(hooks))
	}
	if got := sim.Counters().TokenByGrant["refresh_token"]; got != 1 {
		t.Errorf("refreshes = %d, want 1 (after the 401)", got)
	}

	// A direct invocation is refused with the template's default (WorkerDirectInvoke=false):
	// invoking the worker must not be a way to act as a customer.
	payload := map[string]any{"id": "e2e-direct", "kind": jobs.KindAPICall, "company_id": acme.CompanyID, "user_id": acme.UserID, "method": "GET", "path": "/api/v1/webhooks"}
	calls := sim.Counters().APIByRoute["GET /api/v1/webhooks"]
	err = f.InvokeJSON(ctx, payload, nil)
	var fe *lambdarun.FunctionError
	if !errors.As(err, &fe) || fe.Type != "DirectInvokeOffError" || !strings.Contains(fe.Message, "jobs queue") {
		t.Errorf("direct invoke = %v; want a DirectInvokeOffError", err)
	}
	if got := sim.Counters().APIByRoute["GET /api/v1/webhooks"]; got != calls {
		t.Errorf("GET /api/v1/webhooks calls after a refused direct invoke = %d, want %d", got, calls)
	}

	if now, err := store.Get(ctx, acme); err == nil {
		secrets.Add("access token", now.AccessToken)
		secrets.Add("refresh token", now.RefreshToken)
	}
	outLog := logs.String()
	for _, want := range []string{`"msg":"job succeeded"`, `"reason":"webhooks_registered"`, `"msg":"refresh refreshed"`, `"reason":"direct_invoke_off"`} {
		if !strings.Contains(outLog, want) {
			t.Errorf("function log lacks %s", want)
		}
	}
	for _, leak := range secrets.FoundIn(outLog) {
		t.Errorf("function log contains %s", leak)
	}
	// Every line of every invocation carries its Lambda request id.
	if n := testenv.CheckRequestIDs(t, logs); n < 3 {
		t.Errorf("checked %d log lines of the invocations for their request id, want at least the job, the refresh and the webhooks", n)
	}
}
