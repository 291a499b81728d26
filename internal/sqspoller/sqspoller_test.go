package sqspoller_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/sqspoller"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// function adapts a func to sqspoller.Invoker.
type function func(ctx context.Context, payload []byte) ([]byte, error)

func (f function) Invoke(ctx context.Context, p []byte) ([]byte, error) { return f(ctx, p) }

var _ sqspoller.Invoker = function(nil)

// queue creates a queue with a 1-second visibility timeout and sends bodies to it.
func queue(t *testing.T, bodies ...string) (*sqs.Client, string) {
	t.Helper()
	ctx := context.Background()
	q := sqs.NewFromConfig(testenv.AWS(t))
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(testenv.Prefix(t)),
		Attributes: map[string]string{"VisibilityTimeout": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: out.QueueUrl, MessageBody: aws.String(b),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("test")}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	return q, aws.ToString(out.QueueUrl)
}

// remaining waits out the visibility timeout and returns the bodies still on the queue.
func remaining(t *testing.T, q *sqs.Client, url string) []string {
	t.Helper()
	time.Sleep(1500 * time.Millisecond)
	var got []string
	for _, m := range testenv.ReceiveAll(t, testenv.AWS(t), url, 10, time.Second) {
		got = append(got, aws.ToString(m.Body))
	}
	sort.Strings(got)
	return got
}

func TestPartialBatchFailureKeepsOnlyTheFailed(t *testing.T) {
	t.Parallel()
	q, url := queue(t, "a", "b", "c")
	var seen events.SQSEvent
	p := &sqspoller.Poller{SQS: q, QueueURL: url, QueueARN: "arn:aws:sqs:us-east-1:000000000000:q", Region: "us-east-1",
		Function: function(func(_ context.Context, payload []byte) ([]byte, error) {
			if err := json.Unmarshal(payload, &seen); err != nil {
				return nil, err
			}
			var resp events.SQSEventResponse
			for _, r := range seen.Records {
				if r.Body == "b" {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return json.Marshal(resp)
		})}
	total := sqspoller.Stats{}
	for range 3 { // moto may split the three messages over receives
		st, err := p.Poll(context.Background())
		if err != nil {
			t.Fatalf("Poll = %v", err)
		}
		total.Received += st.Received
		total.Deleted += st.Deleted
		total.Failed += st.Failed
		if total.Received == 3 {
			break
		}
	}
	if total != (sqspoller.Stats{Received: 3, Deleted: 2, Failed: 1}) {
		t.Errorf("Poll stats = %+v, want 3 received, 2 deleted, 1 failed", total)
	}
	r := seen.Records[0]
	if r.EventSource != "aws:sqs" || r.EventSourceARN == "" || r.ReceiptHandle == "" || r.Attributes["ApproximateReceiveCount"] == "" ||
		aws.ToString(r.MessageAttributes["kind"].StringValue) != "test" {
		t.Errorf("event record = %+v, want source, ARN, receipt handle, system and message attributes", r)
	}
	if got := remaining(t, q, url); strings.Join(got, ",") != "b" {
		t.Errorf("queue after a partial failure holds %v, want only b", got)
	}
}

func TestFailedInvocationKeepsTheWholeBatch(t *testing.T) {
	t.Parallel()
	for name, fn := range map[string]function{
		"invoke error":        func(context.Context, []byte) ([]byte, error) { return nil, errors.New("function crashed") },
		"unreadable response": func(context.Context, []byte) ([]byte, error) { return []byte(`"not a response"`), nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q, url := queue(t, "x", "y")
			p := &sqspoller.Poller{SQS: q, QueueURL: url, Function: fn}
			received := 0
			for range 3 {
				st, err := p.Poll(context.Background())
				received += st.Received
				if st.Received > 0 && (err == nil || st.Deleted != 0) {
					t.Errorf("Poll = %+v, %v; want an error and nothing deleted", st, err)
				}
				if received == 2 {
					break
				}
			}
			if got := remaining(t, q, url); strings.Join(got, ",") != "x,y" {
				t.Errorf("queue after a failed invocation holds %v, want x,y", got)
			}
		})
	}
}

func TestEmptyQueueInvokesNothing(t *testing.T) {
	t.Parallel()
	q, url := queue(t)
	p := &sqspoller.Poller{SQS: q, QueueURL: url, Wait: time.Second, Function: function(func(context.Context, []byte) ([]byte, error) {
		t.Error("function invoked for an empty queue")
		return nil, nil
	})}
	if st, err := p.Poll(context.Background()); err != nil || st.Received != 0 {
		t.Errorf("Poll(empty) = %+v, %v", st, err)
	}
}

// TestWholeBatchIgnoresItemFailures plays an event source without ReportBatchItemFailures:
// Lambda deletes the whole batch after a successful invocation, whatever it answered.
func TestWholeBatchIgnoresItemFailures(t *testing.T) {
	t.Parallel()
	q, url := queue(t, "a", "b")
	p := &sqspoller.Poller{SQS: q, QueueURL: url, WholeBatch: true,
		Function: function(func(_ context.Context, payload []byte) ([]byte, error) {
			var ev events.SQSEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, err
			}
			return json.Marshal(events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}})
		})}
	received := 0
	for range 3 {
		st, err := p.Poll(context.Background())
		if err != nil {
			t.Fatalf("Poll = %v", err)
		}
		if st.Failed != 0 || st.Deleted != st.Received {
			t.Errorf("Poll = %+v, want every received message deleted", st)
		}
		if received += st.Received; received == 2 {
			break
		}
	}
	if got := remaining(t, q, url); len(got) != 0 {
		t.Errorf("queue after a whole-batch success holds %v, want nothing", got)
	}
}
