package alerts_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// setup provisions the stack's resources in moto and subscribes an inbox to the alerts topic.
func setup(t *testing.T) (*alerts.Publisher, *testenv.AlertInbox, *tokenstore.Store) {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	inbox := testenv.SubscribeAlerts(t, cfg, res.AlertsTopicARN)
	store := &tokenstore.Store{DB: testenv.DynamoDB(t), Table: res.TableName}
	p := &alerts.Publisher{
		SNS:      sns.NewFromConfig(cfg),
		TopicARN: res.AlertsTopicARN,
		Source:   "callback",
		Marks:    store,
		Now:      func() time.Time { return t0 },
	}
	return p, inbox, store
}

func TestAlertArrivesWithSafeFieldsAndAttributes(t *testing.T) {
	p, inbox, _ := setup(t)
	ctx := context.Background()
	a := alerts.Alert{
		Reason:    "client_invalid",
		CompanyID: 3408256,
		UserID:    5206648,
		Summary:   "Pipedrive rejected the app's client credentials",
		Detail:    "Invalid client: client is invalid\nsecond line",
	}
	if err := p.Alert(ctx, a); err != nil {
		t.Fatalf("Alert() = %v, want nil", err)
	}
	got := inbox.Wait(t, 1, 10*time.Second)
	if len(got) != 1 {
		t.Fatalf("inbox got %d alerts, want 1", len(got))
	}
	if want := "[critical] callback: client_invalid (company 3408256, user 5206648)"; got[0].Subject != want {
		t.Errorf("subject = %q, want %q", got[0].Subject, want)
	}
	if got[0].Attributes["reason"] != "client_invalid" || got[0].Attributes["severity"] != "critical" {
		t.Errorf("attributes = %v, want reason=client_invalid severity=critical", got[0].Attributes)
	}
	if got[0].Attributes["company_id"] != "3408256" {
		t.Errorf("attributes[company_id] = %q, want 3408256", got[0].Attributes["company_id"])
	}
	var m alerts.Message
	if err := json.Unmarshal([]byte(got[0].Message), &m); err != nil {
		t.Fatalf("message %q is not JSON: %v", got[0].Message, err)
	}
	want := alerts.Message{
		Source: "callback", Reason: "client_invalid", Severity: alerts.SeverityCritical,
		CompanyID: 3408256, UserID: 5206648, Summary: a.Summary,
		Detail: "Invalid client: client is invalid second line", Time: t0,
	}
	if m != want {
		t.Errorf("message = %+v, want %+v", m, want)
	}
}

func TestDedupeSuppressesRepeatsPerReasonAndInstallation(t *testing.T) {
	p, inbox, _ := setup(t)
	ctx := context.Background()
	base := alerts.Alert{Reason: "server_error", Severity: alerts.SeverityWarning, CompanyID: 1, UserID: 2, Summary: "Pipedrive answered 500"}
	other := base
	other.UserID = 3
	otherReason := base
	otherReason.Reason = "client_invalid"

	// Twenty concurrent identical alerts (an outage), then two distinct ones.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- p.Alert(ctx, base) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Alert(base) = %v, want nil", err)
		}
	}
	for _, a := range []alerts.Alert{other, otherReason} {
		if err := p.Alert(ctx, a); err != nil {
			t.Fatalf("Alert(%s %d) = %v, want nil", a.Reason, a.UserID, err)
		}
	}
	got := inbox.Wait(t, 3, 10*time.Second)
	got = append(got, inbox.Drain(t)...)
	if len(got) != 3 {
		t.Fatalf("inbox got %d alerts, want 3 (one per reason and installation)", len(got))
	}
	seen := map[string]int{}
	for _, a := range got {
		seen[a.Subject]++
	}
	for _, want := range []string{
		"[warning] callback: server_error (company 1, user 2)",
		"[warning] callback: server_error (company 1, user 3)",
		"[warning] callback: client_invalid (company 1, user 2)",
	} {
		if seen[want] != 1 {
			t.Errorf("alerts with subject %q = %d, want 1 (got %v)", want, seen[want], seen)
		}
	}
}

func TestDedupeWindowExpires(t *testing.T) {
	p, inbox, store := setup(t)
	now := t0
	store.Now = func() time.Time { return now }
	p.Window = time.Hour
	ctx := context.Background()
	a := alerts.Alert{Reason: "redirect_uri_mismatch", Summary: "redirect_uri differs from Developer Hub"}
	for _, step := range []time.Duration{0, 30 * time.Minute, 31 * time.Minute} {
		now = now.Add(step)
		if err := p.Alert(ctx, a); err != nil {
			t.Fatalf("Alert() at +%v = %v, want nil", step, err)
		}
	}
	got := inbox.Wait(t, 2, 10*time.Second)
	got = append(got, inbox.Drain(t)...)
	if len(got) != 2 {
		t.Fatalf("alerts over 61 minutes with a 1 h window = %d, want 2", len(got))
	}
}

// failingMarks is a tokens table that cannot be reached.
type failingMarks struct{}

func (failingMarks) ClaimWork(context.Context, string, string, time.Duration, time.Duration) (tokenstore.WorkClaim, error) {
	return tokenstore.WorkClaim{}, errors.New("dynamodb unavailable")
}
func (failingMarks) CompleteWork(context.Context, string, string, time.Duration) error {
	return errors.New("dynamodb unavailable")
}
func (failingMarks) ReleaseWork(context.Context, string, string) error {
	return errors.New("dynamodb unavailable")
}

// flakySNS fails its first n publishes, as SNS does in an outage.
type flakySNS struct {
	alerts.SNS
	mu   sync.Mutex
	fail int
}

func (f *flakySNS) Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.mu.Lock()
	fail := f.fail > 0
	f.fail--
	f.mu.Unlock()
	if fail {
		return nil, errors.New("sns unavailable")
	}
	return f.SNS.Publish(ctx, in, opts...)
}

// TestFailedPublishDoesNotSilenceTheAlert: the mark is written only after SNS accepted the
// alert, so the next identical alert after a failed publish goes out (it used to be silenced
// for the whole window).
func TestFailedPublishDoesNotSilenceTheAlert(t *testing.T) {
	p, inbox, _ := setup(t)
	p.SNS = &flakySNS{SNS: p.SNS, fail: 1}
	a := alerts.Alert{Reason: "client_invalid", Summary: "x"}
	if err := p.Alert(context.Background(), a); err == nil {
		t.Fatalf("Alert() during an SNS outage = nil, want the publish error")
	}
	if err := p.Alert(context.Background(), a); err != nil {
		t.Fatalf("Alert() after the outage = %v, want nil", err)
	}
	if err := p.Alert(context.Background(), a); err != nil {
		t.Fatalf("Alert() again = %v, want nil (suppressed)", err)
	}
	got := inbox.Wait(t, 1, 10*time.Second)
	got = append(got, inbox.Drain(t)...)
	if len(got) != 1 {
		t.Fatalf("alerts delivered = %d, want 1 (the retry after the failed publish, then suppressed)", len(got))
	}
}

func TestDedupeFailureStillPublishes(t *testing.T) {
	p, inbox, _ := setup(t)
	p.Marks = failingMarks{}
	if err := p.Alert(context.Background(), alerts.Alert{Reason: "unknown_error", Summary: "x"}); err != nil {
		t.Fatalf("Alert() = %v, want nil", err)
	}
	if got := inbox.Wait(t, 1, 10*time.Second); len(got) != 1 {
		t.Fatalf("alerts after a dedupe failure = %d, want 1", len(got))
	}
}

func TestAlertErrors(t *testing.T) {
	cfg := testenv.AWS(t)
	p := &alerts.Publisher{SNS: sns.NewFromConfig(cfg), TopicARN: "arn:aws:sns:us-east-1:123456789012:does-not-exist"}
	if err := p.Alert(context.Background(), alerts.Alert{Summary: "no reason"}); !errors.Is(err, alerts.ErrInvalidAlert) {
		t.Errorf("Alert(no reason) = %v, want ErrInvalidAlert", err)
	}
	err := p.Alert(context.Background(), alerts.Alert{Reason: "client_invalid"})
	if err == nil || !strings.Contains(err.Error(), "alerts: publish client_invalid") {
		t.Errorf("Alert(missing topic) = %v, want a wrapped publish error", err)
	}
}

func TestSubjectIsSNSSafe(t *testing.T) {
	p, inbox, _ := setup(t)
	p.Source = "callback\nnewline"
	long := strings.Repeat("é", 300)
	if err := p.Alert(context.Background(), alerts.Alert{Reason: "reason_" + long, Summary: long, Detail: long}); err != nil {
		t.Fatalf("Alert(long, non-ASCII) = %v, want nil", err)
	}
	got := inbox.Wait(t, 1, 10*time.Second)
	s := got[0].Subject
	if len(s) > 100 {
		t.Errorf("len(subject) = %d, want <= 100", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			t.Errorf("subject %q has non-printable-ASCII rune %q", s, r)
			break
		}
	}
	var m alerts.Message
	if err := json.Unmarshal([]byte(got[0].Message), &m); err != nil {
		t.Fatalf("message is not JSON: %v", err)
	}
	if n := len([]rune(m.Detail)); n > 1000 {
		t.Errorf("detail has %d runes, want <= 1000", n)
	}
}

func TestDedupeKey(t *testing.T) {
	tests := []struct {
		a    alerts.Alert
		want string
	}{
		{alerts.Alert{Reason: "client_invalid"}, "alert#client_invalid#0:0"},
		{alerts.Alert{Reason: "server_error", CompanyID: 7, UserID: 9, Summary: "ignored"}, "alert#server_error#7:9"},
	}
	for _, tt := range tests {
		if got := alerts.DedupeKey(tt.a); got != tt.want {
			t.Errorf("DedupeKey(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}
