// Package alerts tells a person that something needs them: it publishes one JSON message per
// alert to an SNS topic (e-mail, chat or pager subscribers), with message attributes to filter
// on, and suppresses repeats of the same alert for the same installation within a window so an
// outage pages once, not once per request.
//
// Alerts carry only safe fields: a reason, ids, a fixed summary and a short detail. Callers must
// never put a token, authorization code, state, client secret or response body into an Alert.
package alerts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// SNS is the part of the SNS client the publisher uses; *sns.Client satisfies it.
type SNS interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Marks remembers which alerts were sent, with the claim protocol of the tokens table;
// *tokenstore.Store satisfies it. An alert is claimed for a short lease while it is being
// published, marked sent (CompleteWork, kept for the window) only after SNS accepted it, and
// released when the publish failed: a failed publish never silences the alert, and a crash
// mid-publish silences it for the lease at most.
type Marks interface {
	ClaimWork(ctx context.Context, key, owner string, lease, ttl time.Duration) (tokenstore.WorkClaim, error)
	CompleteWork(ctx context.Context, key, owner string, ttl time.Duration) error
	ReleaseWork(ctx context.Context, key, owner string) error
}

// sendLease bounds how long an alert being published holds its mark before another sender may
// publish it (a crashed publisher).
const sendLease = 30 * time.Second

// Severity is oncall.Severity: how urgently a person must act, sent as the "severity"
// message attribute.
type Severity = oncall.Severity

// The severities, as in internal/oncall.
const (
	SeverityCritical = oncall.SeverityCritical
	SeverityWarning  = oncall.SeverityWarning
)

// DefaultWindow is how long an identical alert (same reason, same installation) stays suppressed.
const DefaultWindow = time.Hour

// Limits keep a message readable and inside SNS's limits (subject: 100 ASCII characters).
const (
	maxSubject = 100
	maxSummary = 200
	maxDetail  = 1000
)

// ErrInvalidAlert is returned when an Alert lacks its Reason.
var ErrInvalidAlert = errors.New("alerts: alert has no reason")

// Alert is oncall.Alert: one thing a person must look at. Every field is published: put no
// secrets in it.
type Alert = oncall.Alert

// Message is the JSON body published to the topic.
type Message struct {
	Source    string    `json:"source,omitempty"`
	Reason    string    `json:"reason"`
	Severity  Severity  `json:"severity"`
	CompanyID int64     `json:"company_id,omitempty"`
	UserID    int64     `json:"user_id,omitempty"`
	Summary   string    `json:"summary"`
	Detail    string    `json:"detail,omitempty"`
	Time      time.Time `json:"time"`
}

// Publisher publishes alerts to one SNS topic. The zero value is not usable: SNS and TopicARN
// are required. Safe for concurrent use.
type Publisher struct {
	// SNS publishes the message.
	SNS SNS
	// TopicARN is the alerts topic.
	TopicARN string
	// Source names the sender in the message and subject (e.g. "callback"); optional.
	Source string
	// Marks, when set, suppresses an alert whose reason and installation were alerted within
	// Window (or are being alerted right now). When Marks fails the alert is sent anyway: a
	// duplicate page beats a missed one.
	Marks Marks
	// Window is the dedupe window; DefaultWindow when zero.
	Window time.Duration
	// Now is the clock for the message time; time.Now when nil.
	Now func() time.Time
}

// DedupeKey is the key an alert is deduplicated under: one per reason and installation.
func DedupeKey(a Alert) string {
	return "alert#" + a.Reason + "#" + strconv.FormatInt(a.CompanyID, 10) + ":" + strconv.FormatInt(a.UserID, 10)
}

// Alert publishes a, unless an identical alert (same Reason, CompanyID, UserID) was published
// within the window. It returns the publish error, wrapped; a dedupe failure alone is not an
// error.
func (p *Publisher) Alert(ctx context.Context, a Alert) error {
	if strings.TrimSpace(a.Reason) == "" {
		return ErrInvalidAlert
	}
	if a.Severity == "" {
		a.Severity = SeverityCritical
	}
	key, owner, marked := DedupeKey(a), rand.Text(), false
	if p.Marks != nil {
		_, err := p.Marks.ClaimWork(ctx, key, owner, sendLease, p.window())
		switch {
		case errors.Is(err, tokenstore.ErrWorkClaimed):
			return nil // sent within the window, or being sent by another caller
		case err == nil:
			marked = true
		}
		// Why: on any other error we cannot know; sending twice is cheaper than staying silent.
	}
	err := p.publish(ctx, a)
	if marked {
		// Sent: keep the mark for the window. Not sent: take it back so the next one goes out.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err == nil {
			_ = p.Marks.CompleteWork(mctx, key, owner, p.window())
		} else {
			_ = p.Marks.ReleaseWork(mctx, key, owner)
		}
	}
	return err
}

// publish sends one alert to the topic.
func (p *Publisher) publish(ctx context.Context, a Alert) error {
	msg := Message{
		Source:    p.Source,
		Reason:    clean(a.Reason, 64),
		Severity:  a.Severity,
		CompanyID: a.CompanyID,
		UserID:    a.UserID,
		Summary:   clean(a.Summary, maxSummary),
		Detail:    clean(a.Detail, maxDetail),
		Time:      p.now().UTC(),
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("alerts: encode %s: %w", msg.Reason, err)
	}
	attrs := map[string]types.MessageAttributeValue{
		"reason":   {DataType: aws.String("String"), StringValue: aws.String(msg.Reason)},
		"severity": {DataType: aws.String("String"), StringValue: aws.String(string(msg.Severity))},
	}
	if msg.Source != "" {
		attrs["source"] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(clean(msg.Source, 64))}
	}
	if msg.CompanyID != 0 {
		attrs["company_id"] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(msg.CompanyID, 10))}
	}
	_, err = p.SNS.Publish(ctx, &sns.PublishInput{
		TopicArn:          aws.String(p.TopicARN),
		Subject:           aws.String(subject(msg)),
		Message:           aws.String(string(body)),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("alerts: publish %s: %w", msg.Reason, err)
	}
	return nil
}

func (p *Publisher) window() time.Duration {
	if p.Window > 0 {
		return p.Window
	}
	return DefaultWindow
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// subject builds an SNS subject: printable ASCII only, at most 100 characters.
func subject(m Message) string {
	var b strings.Builder
	b.WriteString("[")
	b.WriteString(string(m.Severity))
	b.WriteString("] ")
	if m.Source != "" {
		b.WriteString(m.Source)
		b.WriteString(": ")
	}
	b.WriteString(m.Reason)
	if m.CompanyID != 0 || m.UserID != 0 {
		fmt.Fprintf(&b, " (company %d, user %d)", m.CompanyID, m.UserID)
	}
	s := []rune(b.String())
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		out = append(out, r)
	}
	if len(out) > maxSubject {
		out = out[:maxSubject]
	}
	return string(out)
}

// clean replaces control characters with spaces and cuts s to at most n runes.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Notifier is oncall.Notifier (publish-or-log); Sender is oncall.Sender.
type (
	Notifier = oncall.Notifier
	Sender   = oncall.Sender
)

// ErrorDetail is oncall.ErrorDetail.
func ErrorDetail(err error) string { return oncall.ErrorDetail(err) }
