package opscli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// rotateFixture is the webhooks fixture with the webhook key secret wired as pdctl wires it.
func rotateFixture(t *testing.T) (*fixture, *secretsmanager.Client, *bytes.Buffer) {
	t.Helper()
	f, audit := webhooksFixture(t)
	sm := secretsmanager.NewFromConfig(testenv.AWS(t))
	f.cli.WebhookKeySecret, f.cli.WebhookKeySecretID = sm, f.webhookKeySecret
	return f, sm, audit
}

func (f *fixture) webhookKeys(t *testing.T, sm *secretsmanager.Client) webhook.Keys {
	t.Helper()
	out, err := sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(f.webhookKeySecret)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := clientcreds.ParseWebhookKeys(aws.ToString(out.SecretString))
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("webhook key", string(k.Current))
	return k
}

// TestRotateKey: rotate-key replaces the key, keeps the previous one for the grace, queues a
// register_webhooks job per active installation, prints and audits key ids only; a second
// rotation within the grace is refused (nothing changes) unless forced.
func TestRotateKey(t *testing.T) {
	f, sm, audit := rotateFixture(t)
	a, b := f.install(t, 51, 1, time.Hour), f.install(t, 52, 1, time.Hour)
	var res opscli.RotateKeyResult
	out := f.run(t, "webhooks", "rotate-key", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("rotate-key --json = %q: %v", out, err)
	}
	k := f.webhookKeys(t, sm)
	if string(k.Previous) != testenv.WebhookKey || string(k.Current) == testenv.WebhookKey || len(k.Current) < webhook.MinKeyLen ||
		!k.PreviousUntil.Equal(f.now.Add(opscli.DefaultRotationGrace)) {
		t.Errorf("keys after rotate-key = %v, want a new key and the provisioned one until now+%v", k, opscli.DefaultRotationGrace)
	}
	if res.KeyID != webhook.KeyID(k.Current) || res.PreviousKeyID != webhook.KeyID([]byte(testenv.WebhookKey)) || res.Registration.Enqueued != 2 {
		t.Errorf("rotate-key result = %+v, want the key ids and 2 jobs", res)
	}
	var queued []string
	for _, j := range f.queuedJobs(t) {
		if j.Kind == jobs.KindRegisterWebhooks {
			queued = append(queued, j.ID)
		}
	}
	if len(queued) != 2 || !strings.Contains(strings.Join(queued, " "), a.String()) || !strings.Contains(strings.Join(queued, " "), b.String()) {
		t.Errorf("queued %v, want one register_webhooks job for %s and %s", queued, a, b)
	}
	if strings.Contains(out, string(k.Current)) || strings.Contains(out, testenv.WebhookKey) {
		t.Errorf("rotate-key printed a key")
	}
	if s := audit.String(); !strings.Contains(s, `"action":"rotate_webhook_key"`) || !strings.Contains(s, `"operator":"oncall@test"`) || !strings.Contains(s, res.KeyID) {
		t.Errorf("audit log %q lacks the rotation, the operator or the new key id", s)
	}

	err := f.exec(context.Background(), "webhooks", "rotate-key")
	if err == nil || !strings.Contains(err.Error(), "accepted until") {
		t.Errorf("a second rotate-key in the grace = %v, want a refusal naming the grace", err)
	}
	if again := f.webhookKeys(t, sm); string(again.Current) != string(k.Current) || string(again.Previous) != string(k.Previous) {
		t.Errorf("the refused rotation changed the keys")
	}
	f.run(t, "webhooks", "rotate-key", "--force", "--grace", "168h")
	forced := f.webhookKeys(t, sm)
	if string(forced.Previous) != string(k.Current) || !forced.PreviousUntil.Equal(f.now.Add(168*time.Hour)) {
		t.Errorf("forced rotation = %v, want the last key as previous until now+168h", forced)
	}
}

func TestRotateKeyRefusals(t *testing.T) {
	f, _, _ := rotateFixture(t)
	if err := f.exec(context.Background(), "webhooks", "rotate-key", "--grace", "10m"); !errors.Is(err, opscli.ErrUsage) {
		t.Errorf("rotate-key --grace 10m = %v, want a usage error", err)
	}
	f.cli.WebhookKeySecret = nil
	if err := f.exec(context.Background(), "webhooks", "rotate-key"); err == nil || !strings.Contains(err.Error(), "WEBHOOK_KEY_SECRET_ID") {
		t.Errorf("rotate-key without the secret = %v, want it to name WEBHOOK_KEY_SECRET_ID", err)
	}
	if n := len(f.queuedJobs(t)); n != 0 {
		t.Errorf("refused rotations queued %d jobs", n)
	}
}
