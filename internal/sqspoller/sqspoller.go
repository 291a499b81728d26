// Package sqspoller plays Lambda's SQS event source mapping for the local stack: it long-polls
// a queue, hands batches to a function as an events.SQSEvent, and deletes what the function
// did not report in batchItemFailures (ReportBatchItemFailures semantics). Messages the
// function failed, or all of a batch when the invocation itself failed, stay on the queue and
// come back after their visibility timeout, exactly as they would in AWS.
package sqspoller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Queue is the part of SQS the poller uses; *sqs.Client satisfies it.
type Queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Invoker runs the function with a JSON event; *lambdarun.Function satisfies it.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// Poller feeds one queue to one function.
type Poller struct {
	SQS      Queue
	QueueURL string
	// QueueARN and Region fill eventSourceARN and awsRegion of each record.
	QueueARN string
	Region   string
	Function Invoker
	// BatchSize is at most 10 (SQS's receive limit); default 10, SAM's default.
	BatchSize int
	// WholeBatch plays an event source without ReportBatchItemFailures: the function's
	// response is ignored and a successful invocation deletes every message of the batch.
	// False honours batchItemFailures.
	WholeBatch bool
	// Wait is the long-poll time per receive; default 1 s.
	Wait time.Duration
	Log  *slog.Logger
}

// Stats counts what one Poll did.
type Stats struct {
	Received, Deleted, Failed int
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.logger().Warn("sqs poll failed", "queue", p.QueueURL, "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Poll receives one batch (waiting up to Wait), invokes the function if there is anything,
// and deletes the messages it did not report as failed.
func (p *Poller) Poll(ctx context.Context) (Stats, error) {
	batch := p.BatchSize
	if batch <= 0 || batch > 10 {
		batch = 10
	}
	wait := p.Wait
	if wait <= 0 {
		wait = time.Second
	}
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(batch),
		WaitTimeSeconds:             int32(wait.Round(time.Second) / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return Stats{}, fmt.Errorf("sqspoller: receive: %w", err)
	}
	st := Stats{Received: len(out.Messages)}
	if len(out.Messages) == 0 {
		return st, nil
	}
	payload, err := json.Marshal(p.Event(out.Messages))
	if err != nil {
		return st, fmt.Errorf("sqspoller: encode event: %w", err)
	}
	result, err := p.Function.Invoke(ctx, payload)
	if err != nil {
		// The whole batch failed: leave every message for its visibility timeout.
		st.Failed = len(out.Messages)
		return st, fmt.Errorf("sqspoller: invoke: %w", err)
	}
	var resp events.SQSEventResponse
	if !p.WholeBatch && len(result) > 0 && string(result) != "null" {
		if err := json.Unmarshal(result, &resp); err != nil {
			// Lambda treats an unreadable response as a failure of the whole batch.
			st.Failed = len(out.Messages)
			return st, fmt.Errorf("sqspoller: function response is not an SQSEventResponse: %w", err)
		}
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if failed[aws.ToString(m.MessageId)] {
			st.Failed++
			continue
		}
		del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(del) > 0 {
		d, err := p.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: del})
		if err != nil {
			return st, fmt.Errorf("sqspoller: delete: %w", err)
		}
		st.Deleted = len(d.Successful)
		if len(d.Failed) > 0 {
			return st, errors.New("sqspoller: some deletes failed; those messages will be delivered again")
		}
	}
	p.logger().Info("sqs batch", "queue", p.QueueURL, "received", st.Received, "deleted", st.Deleted, "failed", st.Failed)
	return st, nil
}

// Event builds the event Lambda's poller passes for received messages.
func (p *Poller) Event(msgs []sqstypes.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, m := range msgs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, a := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(a.DataType), StringValue: a.StringValue, BinaryValue: a.BinaryValue}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: attrs,
			EventSource: "aws:sqs", EventSourceARN: p.QueueARN, AWSRegion: p.Region,
		})
	}
	return ev
}

func (p *Poller) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
