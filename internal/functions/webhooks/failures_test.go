package webhooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// How an injected fault breaks a request.
const (
	// failBefore: the request never reaches moto (a connection refused).
	failBefore = iota
	// loseAnswer: moto does the work, the answer is lost (a connection reset on the way back).
	loseAnswer
	// hangAfter: moto does the work, the answer never comes; the call ends with its context.
	hangAfter
)

// fault breaks the next times requests of one operation of an SDK client, as an SDK
// middleware around the real HTTP exchange with moto (no mocked client): installed on the
// client by newEnv.
type fault struct {
	service, op string
	mode        int
	err         error // errInjected unless set
	times       atomic.Int32
	hit         atomic.Int32
}

// resetting makes f's error a connection reset, which the SDK retries.
func resetting(f *fault) *fault {
	f.err = errReset
	return f
}

func inject(service, op string, mode, times int) *fault {
	f := &fault{service: service, op: op, mode: mode}
	f.times.Store(int32(times))
	return f
}

// The injected errors: errInjected ends the call (the SDK does not retry it); errReset is a
// connection reset, which the SDK retries on its own.
var (
	errInjected = errors.New("injected fault: no route to moto")
	errReset    = errors.New("injected fault: read: connection reset by peer")
)

func (f *fault) middleware(s *middleware.Stack) error {
	return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("inject-"+f.op, func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		if middleware.GetOperationName(ctx) != f.op || f.times.Add(-1) < 0 {
			return next.HandleDeserialize(ctx, in)
		}
		f.hit.Add(1)
		errInjected := errInjected
		if f.err != nil {
			errInjected = f.err
		}
		switch f.mode {
		case failBefore:
			return middleware.DeserializeOutput{}, middleware.Metadata{}, errInjected
		case loseAnswer:
			if _, _, err := next.HandleDeserialize(ctx, in); err != nil {
				return middleware.DeserializeOutput{}, middleware.Metadata{}, err
			}
			return middleware.DeserializeOutput{}, middleware.Metadata{}, errInjected
		default: // hangAfter
			if _, _, err := next.HandleDeserialize(ctx, in); err != nil {
				return middleware.DeserializeOutput{}, middleware.Metadata{}, err
			}
			<-ctx.Done()
			return middleware.DeserializeOutput{}, middleware.Metadata{}, ctx.Err()
		}
	}), middleware.Before)
}

// runs counts the app handler's runs per event, behind the real webhook_event runner and
// worker engine (claims in the test's table).
type runs struct {
	engine *worker.Engine
	n      atomic.Int32
	last   webhook.Event // the event of the last run
}

func (e *env) worker() *runs {
	r := &runs{}
	handler := pdwork.EventHandlerFunc(func(_ context.Context, ev webhook.Event, _ *pdwork.Client) error {
		r.n.Add(1)
		r.last = ev
		return nil
	})
	r.engine = &worker.Engine{Name: "test", Claims: e.store, Queue: e.sqs, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Runners: map[string]worker.Runner{jobs.KindWebhookEvent: &pdwork.WebhookEvents{Entities: e.store, Handler: handler}},
		Config:  worker.Config{JobsQueueURL: e.res.JobsQueueURL, DeadLetterQueueURL: e.res.DeadLetterQueueURL}}
	return r
}

// drain runs every job on the queue through the worker, as the event source mapping would,
// and returns the messages it ran.
func (r *runs) drain(t *testing.T, e *env) []sqstypes.Message {
	t.Helper()
	var msgs []sqstypes.Message
	for {
		out, err := sqs.NewFromConfig(testenv.AWS(t)).ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.res.JobsQueueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"},
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		msgs = append(msgs, out.Messages...)
	}
	if len(msgs) > 0 {
		resp := r.engine.RunBatch(t.Context(), (&sqspoller.Poller{QueueARN: e.res.JobsQueueARN, Region: testenv.Region}).Event(msgs))
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("worker batch failures = %v, want none", resp.BatchItemFailures)
		}
	}
	return msgs
}

// TestInjectedFailuresEndInOneHandlerRun: at each point where accepting a delivery can fail —
// the dedupe write, its answer, the send (an error, a timeout) and the write that settles the
// record — the delivery and Pipedrive's retries end in exactly one run of the app's handler.
func TestInjectedFailuresEndInOneHandlerRun(t *testing.T) {
	tests := []struct {
		name  string
		fault *fault
		// first: the first delivery's action/reason.
		first string
		// afterLease: the retry needs the pending lease to have ended first (the record was
		// written but never settled).
		afterLease bool
	}{
		{"dedupe write fails", inject("dynamodb", "TransactWriteItems", failBefore, 1), "failed/store_failed", false},
		{"dedupe write's answer lost", inject("dynamodb", "TransactWriteItems", loseAnswer, 1), "failed/store_failed", true},
		{"dedupe write's answer lost, the SDK retries", resetting(inject("dynamodb", "TransactWriteItems", loseAnswer, 1)), "accepted/enqueued", false},
		{"send error", inject("sqs", "SendMessage", failBefore, 1), "failed/enqueue_failed", false},
		{"send times out after SQS queued it", inject("sqs", "SendMessage", hangAfter, 1), "failed/enqueue_failed", false},
		{"send error and its take-back lost", nil, "failed/enqueue_failed", true},
		{"confirmation lost", inject("dynamodb", "UpdateItem", failBefore, 5), "accepted/enqueued_unconfirmed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			faults := []*fault{tt.fault}
			if tt.fault == nil { // two faults: the send fails, then so does the take-back
				faults = []*fault{inject("sqs", "SendMessage", failBefore, 1), inject("dynamodb", "DeleteItem", failBefore, 5)}
			}
			e := newEnv(t, faults...)
			clock := time.Now()
			e.store.Now = func() time.Time { return clock }
			e.install(acme)
			w := e.worker()
			good := basic(creds.User, creds.Password)

			a := e.deliver(good, v2("ev-fault", "create", 1))
			if got := a.action + "/" + a.reason; got != tt.first {
				t.Fatalf("first delivery = %s (%v), want %s", got, a.err, tt.first)
			}
			for _, f := range faults {
				if f.hit.Load() == 0 {
					t.Fatalf("fault on %s was never hit", f.op)
				}
				f.times.Store(0)
			}
			if tt.afterLease {
				// Pipedrive's retry 3 s later finds the record pending and is told to come back.
				if a := e.deliver(good, v2("ev-fault", "create", 2)); a.action+"/"+a.reason != "failed/in_progress" {
					t.Fatalf("retry within the lease = %s/%s, want failed/in_progress", a.action, a.reason)
				}
				clock = clock.Add(invocationTimeout + leaseSlack + time.Second) // its retry 30 s later
			}
			retry := e.deliver(good, v2("ev-fault", "create", 3))
			want := "accepted"
			if tt.first == "accepted/enqueued" {
				want = "duplicate"
			}
			if tt.first == "accepted/enqueued_unconfirmed" {
				want = "duplicate" // unconfirmed, the lease still holds: the job is queued already
				if retry.action == "failed" && retry.reason == "in_progress" {
					want = "failed"
				}
			}
			if retry.action != want {
				t.Fatalf("retried delivery = %s/%s (%v), want %s", retry.action, retry.reason, retry.err, want)
			}
			w.drain(t, e)
			// A late copy of the event after everything settled runs nothing more.
			e.deliver(good, v2("ev-fault", "create", 4))
			w.drain(t, e)
			if n := w.n.Load(); n != 1 {
				t.Errorf("handler runs = %d, want exactly 1", n)
			}
		})
	}
}
