package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Alert is one message published to the alerts topic.
type Alert struct {
	Subject string
	Message string
	// Attributes are the string values of the published message attributes.
	Attributes map[string]string
}

// AlertInbox is an SQS queue subscribed to a topic, from which tests read what was
// published. Create one with SubscribeAlerts.
type AlertInbox struct {
	client *sqs.Client
	// QueueURL is the inbox queue, deleted when the test ends.
	QueueURL string
	// SubscriptionARN is the inbox's subscription to the topic.
	SubscriptionARN string
}

// SubscribeAlerts creates a queue subscribed to topicARN and removes both when t ends.
//
// The subscription keeps SNS's JSON envelope (no RawMessageDelivery), because raw delivery
// drops the Subject, on AWS and in moto alike; Wait and Drain unwrap it, so Alert.Message
// is exactly the published message.
func SubscribeAlerts(t testing.TB, cfg aws.Config, topicARN string) *AlertInbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := sqs.NewFromConfig(cfg)
	name := Prefix(t) + "alerts-inbox"
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("testenv: create alert inbox queue %s: %v", name, err)
	}
	in := &AlertInbox{client: q, QueueURL: aws.ToString(out.QueueUrl)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if in.SubscriptionARN != "" {
			_, _ = sns.NewFromConfig(cfg).Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(in.SubscriptionARN)})
		}
		_, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl})
	})

	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("testenv: alert inbox queue ARN: %v", err)
	}
	queueARN := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	// moto delivers without it, AWS does not: let the topic, and only it, send here.
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "sns.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  queueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": topicARN}},
		}},
	})
	if err != nil {
		t.Fatalf("testenv: alert inbox policy: %v", err)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   out.QueueUrl,
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		t.Fatalf("testenv: alert inbox policy: %v", err)
	}
	sub, err := sns.NewFromConfig(cfg).Subscribe(ctx, &sns.SubscribeInput{
		TopicArn:              aws.String(topicARN),
		Protocol:              aws.String("sqs"),
		Endpoint:              aws.String(queueARN),
		ReturnSubscriptionArn: true,
	})
	if err != nil {
		t.Fatalf("testenv: subscribe alert inbox to %s: %v", topicARN, err)
	}
	in.SubscriptionARN = aws.ToString(sub.SubscriptionArn)
	return in
}

// Wait returns the alerts that arrive until there are at least n, deleting them from the
// inbox; it fails t if fewer than n arrive within timeout. It may return more than n when
// they arrive together.
func (in *AlertInbox) Wait(t testing.TB, n int, timeout time.Duration) []Alert {
	t.Helper()
	var got []Alert
	for _, m := range receive(t, in.client, in.QueueURL, n, timeout) {
		got = append(got, parseAlert(t, m))
	}
	if len(got) < n {
		t.Fatalf("AlertInbox.Wait(%d, %v) got %d alerts: %s", n, timeout, len(got), subjects(got))
	}
	return got
}

// Drain returns, and deletes, every alert in the inbox now. moto delivers during Publish,
// so after a publish returns its alert is already here.
func (in *AlertInbox) Drain(t testing.TB) []Alert {
	t.Helper()
	var got []Alert
	for _, m := range receive(t, in.client, in.QueueURL, -1, 0) {
		got = append(got, parseAlert(t, m))
	}
	return got
}

// ReceiveAll receives messages from queueURL until it has max of them or wait has passed,
// deleting each one it returns. With wait 0 it returns what is in the queue now.
func ReceiveAll(t testing.TB, cfg aws.Config, queueURL string, max int, wait time.Duration) []sqstypes.Message {
	t.Helper()
	return receive(t, sqs.NewFromConfig(cfg), queueURL, max, wait)
}

// receive collects up to max messages (max < 0: no limit) within wait, deleting them. With
// wait 0 it stops at the first empty receive.
func receive(t testing.TB, client *sqs.Client, queueURL string, max int, wait time.Duration) []sqstypes.Message {
	t.Helper()
	deadline := time.Now().Add(wait)
	var got []sqstypes.Message
	for max < 0 || len(got) < max {
		remaining := time.Until(deadline)
		var waitSecs int32
		if remaining >= time.Second {
			waitSecs = 1 // long-poll in short steps so the deadline is kept
		}
		batch := int32(10)
		if max >= 0 {
			batch = int32(min(10, max-len(got)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         batch,
			WaitTimeSeconds:             waitSecs,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			cancel()
			t.Fatalf("testenv: receive from %s: %v", queueURL, err)
		}
		for _, m := range out.Messages {
			if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				cancel()
				t.Fatalf("testenv: delete from %s: %v", queueURL, err)
			}
		}
		cancel()
		got = append(got, out.Messages...)
		if len(out.Messages) > 0 {
			continue
		}
		if time.Until(deadline) <= 0 {
			break
		}
		if waitSecs == 0 {
			time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
		}
	}
	return got
}

// notification is SNS's JSON envelope around a message delivered to SQS.
type notification struct {
	Type              string
	Subject           string
	Message           string
	MessageAttributes map[string]struct {
		Type  string
		Value string
	}
}

func parseAlert(t testing.TB, m sqstypes.Message) Alert {
	t.Helper()
	var n notification
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil || n.Type != "Notification" {
		t.Fatalf("testenv: alert inbox message %s is not an SNS notification (err %v)", aws.ToString(m.MessageId), err)
	}
	a := Alert{Subject: n.Subject, Message: n.Message, Attributes: map[string]string{}}
	for k, v := range n.MessageAttributes {
		a.Attributes[k] = v.Value
	}
	return a
}

func subjects(as []Alert) string {
	s := "["
	for i, a := range as {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", a.Subject)
	}
	return s + "]"
}
