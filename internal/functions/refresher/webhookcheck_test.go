package refresher

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhookcheck"
)

// TestScheduledRunsQueueTheDailyWebhookCheck runs the scheduler's invocation every hour of a
// day, twice an hour: the installation's check_webhooks job is queued once, in its shard's
// hour, and reported in the run's Summary; a fanned-out shard run queues none.
func TestScheduledRunsQueueTheDailyWebhookCheck(t *testing.T) {
	e := newEnv(t)
	res := testenv.Provision(t)
	in := e.install(pdsim.DefaultUserID, 30*24*time.Hour) // nothing due for a refresh
	e.clock.Set(time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC))
	e.h.WebhookChecks = &webhookcheck.Sweep{Store: e.store, Marks: e.store, Now: e.clock.Now,
		Jobs: &jobs.Enqueuer{SQS: sqs.NewFromConfig(testenv.AWS(t)), QueueURL: res.JobsQueueURL, Now: e.clock.Now}}
	e.h.Store = e.store
	queued := 0
	for range 48 {
		s, err := e.h.Handle(t.Context(), json.RawMessage(`{}`))
		if err != nil || s.WebhookChecks == nil {
			t.Fatalf("scheduled run = %+v, %v; want a summary with webhook checks", s, err)
		}
		queued += s.WebhookChecks.Queued
		if s, err := e.h.Handle(t.Context(), json.RawMessage(`{"shard":0}`)); err != nil || s.WebhookChecks != nil {
			t.Errorf("shard run = %+v, %v; want no webhook checks", s, err)
		}
		e.clock.Advance(30 * time.Minute)
	}
	msgs := testenv.ReceiveAll(t, testenv.AWS(t), res.JobsQueueURL, -1, time.Second)
	want := jobs.CheckWebhooks(tokenstore.InstallationID(in.ID), "2026-11-28").ID
	if queued != 1 || len(msgs) != 1 || jobID(t, *msgs[0].Body) != want {
		t.Errorf("checks queued in a day = %d (%d messages), want one: %s", queued, len(msgs), want)
	}
}

func jobID(t *testing.T, body string) string {
	t.Helper()
	j, err := jobs.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}
