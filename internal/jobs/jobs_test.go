package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func validJob() jobs.Job {
	return jobs.Job{
		ID:        "api_call:3408256:5206648:abc",
		Kind:      jobs.KindAPICall,
		CompanyID: 3408256,
		UserID:    5206648,
		Method:    "POST",
		Path:      "/api/v1/webhooks",
		Body:      json.RawMessage(`{"event_action":"*","event_object":"deal"}`),
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*jobs.Job)
		ok     bool
	}{
		{"valid api call", func(*jobs.Job) {}, true},
		{"register_webhooks without method or path", func(j *jobs.Job) { j.Kind, j.Method, j.Path, j.Body = jobs.KindRegisterWebhooks, "", "", nil }, true},
		{"path with query", func(j *jobs.Job) { j.Path = "/api/v2/deals?limit=10" }, true},
		{"empty id", func(j *jobs.Job) { j.ID = "" }, false},
		{"id too long", func(j *jobs.Job) { j.ID = strings.Repeat("x", 129) }, false},
		{"id with newline", func(j *jobs.Job) { j.ID = "a\nb" }, false},
		{"id with space", func(j *jobs.Job) { j.ID = "a b" }, false},
		{"empty kind", func(j *jobs.Job) { j.Kind = "" }, false},
		{"unknown kind", func(j *jobs.Job) { j.Kind = "mine_bitcoin" }, false},
		{"api call without method", func(j *jobs.Job) { j.Method = "" }, false},
		{"api call without path", func(j *jobs.Job) { j.Path = "" }, false},
		{"zero company", func(j *jobs.Job) { j.CompanyID = 0 }, false},
		{"negative user", func(j *jobs.Job) { j.UserID = -1 }, false},
		{"lower-case method", func(j *jobs.Job) { j.Method = "post" }, false},
		{"CONNECT", func(j *jobs.Job) { j.Method = "CONNECT" }, false},
		{"full URL path", func(j *jobs.Job) { j.Path = "https://evil.example/api/v2/deals" }, false},
		{"protocol-relative path", func(j *jobs.Job) { j.Path = "//evil.example/api/v1" }, false},
		{"path outside /api/", func(j *jobs.Job) { j.Path = "/oauth/token" }, false},
		{"dot-dot segment", func(j *jobs.Job) { j.Path = "/api/v1/../../oauth/token" }, false},
		{"double slash inside", func(j *jobs.Job) { j.Path = "/api//v1" }, false},
		{"encoded dot-dot", func(j *jobs.Job) { j.Path = "/api/v1/%2e%2e/%2E%2E/oauth/token" }, false},
		{"half-encoded dot-dot", func(j *jobs.Job) { j.Path = "/api/v1/.%2e/x" }, false},
		{"encoded slash", func(j *jobs.Job) { j.Path = "/api/v1%2f..%2f..%2foauth" }, false},
		{"double-encoded dot-dot", func(j *jobs.Job) { j.Path = "/api/v1/%252e%252e/oauth" }, false},
		{"encoded backslash", func(j *jobs.Job) { j.Path = "/api/v1/%5c..%5coauth" }, false},
		{"encoded control character", func(j *jobs.Job) { j.Path = "/api/v2/deals%0d%0aX:y" }, false},
		{"bad escape", func(j *jobs.Job) { j.Path = "/api/v1/%zz" }, false},
		{"dot segment", func(j *jobs.Job) { j.Path = "/api/./v1/deals" }, false},
		{"api root only", func(j *jobs.Job) { j.Path = "/api/" }, false},
		{"encoded ordinary character", func(j *jobs.Job) { j.Path = "/api/v2/persons/search%20x" }, true},
		{"trailing slash", func(j *jobs.Job) { j.Path = "/api/v2/deals/" }, true},
		{"dots inside a segment", func(j *jobs.Job) { j.Path = "/api/v1/files/a..b" }, true},
		{"backslash", func(j *jobs.Job) { j.Path = `/api/v1\deals` }, false},
		{"control character", func(j *jobs.Job) { j.Path = "/api/v2/deals\r\nX: y" }, false},
		{"body not JSON", func(j *jobs.Job) { j.Body = json.RawMessage(`{"a":`) }, false},
		{"negative attempt", func(j *jobs.Job) { j.Attempt = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := validJob()
			tt.mutate(&j)
			err := j.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, jobs.ErrInvalidJob) {
				t.Fatalf("Validate() = %v, want ErrInvalidJob", err)
			}
		})
	}
}

func TestDelaySeconds(t *testing.T) {
	tests := []struct {
		name      string
		notBefore time.Time
		want      int32
	}{
		{"zero", time.Time{}, 0},
		{"past", t0.Add(-time.Hour), 0},
		{"now", t0, 0},
		{"half a second rounds up", t0.Add(500 * time.Millisecond), 1},
		{"ten seconds", t0.Add(10 * time.Second), 10},
		{"exactly 15 minutes", t0.Add(15 * time.Minute), 900},
		{"beyond 15 minutes is capped", t0.Add(2 * time.Hour), 900},
	}
	for _, tt := range tests {
		if got := jobs.DelaySeconds(tt.notBefore, t0); got != tt.want {
			t.Errorf("DelaySeconds(%s) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	j := validJob()
	j.NotBefore = t0
	j.Attempt = 2
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jobs.Parse(string(b))
	if err != nil {
		t.Fatalf("Parse(%s) = %v, want nil", b, err)
	}
	if got.ID != j.ID || got.Kind != j.Kind || got.CompanyID != j.CompanyID || got.UserID != j.UserID ||
		got.Method != j.Method || got.Path != j.Path || string(got.Body) != string(j.Body) ||
		!got.NotBefore.Equal(j.NotBefore) || got.Attempt != j.Attempt {
		t.Errorf("Parse(Marshal(j)) = %+v, want %+v", got, j)
	}
	for _, body := range []string{"", "not json", `{"id":"x"}`, `[]`} {
		if _, err := jobs.Parse(body); !errors.Is(err, jobs.ErrInvalidJob) {
			t.Errorf("Parse(%q) = %v, want ErrInvalidJob", body, err)
		}
	}
	// Unknown fields from a newer producer are tolerated.
	if _, err := jobs.Parse(`{"id":"register_webhooks:1:2","kind":"register_webhooks","company_id":1,"user_id":2,"attempt":0,"trace":"x"}`); err != nil {
		t.Errorf("Parse(with unknown field) = %v, want nil", err)
	}
}

func TestZeroNotBeforeIsOmitted(t *testing.T) {
	b, err := json.Marshal(jobs.Job{ID: "x", Kind: jobs.KindRegisterWebhooks, CompanyID: 1, UserID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "not_before") {
		t.Errorf("Marshal(job without NotBefore) = %s, want no not_before", b)
	}
}

func TestEnqueueAgainstSQS(t *testing.T) {
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	client := sqs.NewFromConfig(cfg)
	e := &jobs.Enqueuer{SQS: client, QueueURL: res.JobsQueueURL, Now: func() time.Time { return t0 }}
	ctx := context.Background()

	now := validJob()
	now.Body = json.RawMessage(`{"subscription_url":"https://app.example/hooks?a=1&b=<2>"}`)
	if err := e.Enqueue(ctx, now); err != nil {
		t.Fatalf("Enqueue(now) = %v, want nil", err)
	}
	later := validJob()
	later.ID = "later"
	later.NotBefore = t0.Add(time.Hour)
	if err := e.Enqueue(ctx, later); err != nil {
		t.Fatalf("Enqueue(later) = %v, want nil", err)
	}
	invalid := validJob()
	invalid.CompanyID = 0
	if err := e.Enqueue(ctx, invalid); !errors.Is(err, jobs.ErrInvalidJob) {
		t.Fatalf("Enqueue(invalid) = %v, want ErrInvalidJob", err)
	}

	msgs := testenv.ReceiveAll(t, cfg, res.JobsQueueURL, 1, 5*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("messages available now = %d, want 1 (the delayed job must wait)", len(msgs))
	}
	m := msgs[0]
	got, err := jobs.Parse(aws.ToString(m.Body))
	if err != nil {
		t.Fatalf("Parse(received body) = %v", err)
	}
	if got.ID != now.ID || string(got.Body) != string(now.Body) {
		t.Errorf("received job = %+v, want %+v", got, now)
	}
	wantAttrs := map[string]string{"kind": "api_call", "job_id": now.ID, "company_id": "3408256", "user_id": "5206648", "attempt": "0"}
	for k, want := range wantAttrs {
		if v := aws.ToString(m.MessageAttributes[k].StringValue); v != want {
			t.Errorf("message attribute %s = %q, want %q", k, v, want)
		}
	}

	// The delayed job was sent with the 900 s cap: check the send itself through the queue's
	// delayed-message count, since waiting 15 minutes is not an option.
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(res.JobsQueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	if n := attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)]; n != "1" {
		t.Errorf("delayed messages = %s, want 1", n)
	}
}

func TestEnqueueRejectsOversizedJob(t *testing.T) {
	cfg := testenv.AWS(t)
	e := &jobs.Enqueuer{SQS: sqs.NewFromConfig(cfg), QueueURL: "http://unused.invalid/queue"}
	j := validJob()
	j.Body = json.RawMessage(`"` + strings.Repeat("a", jobs.MaxMessageBytes) + `"`)
	if err := e.Enqueue(context.Background(), j); !errors.Is(err, jobs.ErrInvalidJob) {
		t.Errorf("Enqueue(%d-byte body) = %v, want ErrInvalidJob", len(j.Body), err)
	}
}

func TestRegisterWebhooksJob(t *testing.T) {
	j := jobs.RegisterWebhooks(installation.ID{CompanyID: 3408256, UserID: 5206648}, "v2")
	if j.ID != "register_webhooks:3408256:5206648:v2" || j.Kind != jobs.KindRegisterWebhooks || j.CompanyID != 3408256 || j.UserID != 5206648 || !j.UseReserve {
		t.Errorf("RegisterWebhooks = %+v", j)
	}
	if err := j.Validate(); err != nil {
		t.Errorf("RegisterWebhooks job does not validate: %v", err)
	}
}
