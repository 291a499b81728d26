package opscli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// KeySecret reads and replaces the webhook key secret's value; *secretsmanager.Client
// satisfies it.
type KeySecret interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// DefaultRotationGrace is how long `webhooks rotate-key` keeps the previous key valid: long
// enough for the worker to register every installation's webhooks again, including retries
// through a Pipedrive outage (the jobs queue retries for about 5 hours).
const DefaultRotationGrace = 72 * time.Hour

// RotateKeyResult is `pdctl webhooks rotate-key --json`: the key ids (never a key), until when
// the previous key is accepted, and the registration jobs queued.
type RotateKeyResult struct {
	PreviousKeyID string         `json:"previous_key_id"`
	KeyID         string         `json:"key_id"`
	PreviousUntil time.Time      `json:"previous_until"`
	Registration  WebhooksResult `json:"registration"`
}

func (c *CLI) rotateKeyCommand() *cobra.Command {
	var grace time.Duration
	var force bool
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "replace the webhook key and register every installation's webhooks again",
		Long: `Replace the key every installation's webhook credentials are derived from (the webhook key
secret), keep the previous key valid for --grace, and queue a register_webhooks job for every
active installation: each replaces its webhooks with ones carrying the new credentials. The
receiver accepts the previous key's credentials until the grace ends and refuses them after.
Refuses while an earlier rotation's grace still runs (--force drops that previous key: webhooks
not yet registered again with the current key then fail). Audited (who, when) on standard
error; prints key ids, never a key.`,
		Example: "  pdctl webhooks rotate-key\n  pdctl --stack pdkit-prod webhooks rotate-key --grace 168h --json",
		Args:    noArgs,
		RunE:    c.run(func(ctx context.Context, _ []string) error { return c.rotateKey(ctx, grace, force) }),
	}
	cmd.Flags().DurationVar(&grace, "grace", DefaultRotationGrace, "how long the previous key stays valid")
	cmd.Flags().BoolVar(&force, "force", false, "rotate even while an earlier rotation's grace runs")
	return cmd
}

// rotateKey serves `pdctl webhooks rotate-key`.
func (c *CLI) rotateKey(ctx context.Context, grace time.Duration, force bool) error {
	switch {
	case grace < time.Hour:
		return fmt.Errorf("%w: webhooks rotate-key: --grace %v is shorter than an hour: webhooks not registered again by then would fail", ErrUsage, grace)
	case c.WebhookKeySecret == nil || c.WebhookKeySecretID == "":
		return errors.New("webhooks rotate-key: WEBHOOK_KEY_SECRET_ID is not set (or use --stack)")
	case c.Jobs == nil:
		return errors.New("webhooks rotate-key: JOBS_QUEUE_URL is not set")
	case c.Inventory == nil:
		return errors.New("webhooks rotate-key: TOKENS_TABLE is not set")
	}
	out, err := c.WebhookKeySecret.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.WebhookKeySecretID)})
	if err != nil {
		return fmt.Errorf("webhooks rotate-key: read %s: %w", c.WebhookKeySecretID, err)
	}
	old, err := clientcreds.ParseWebhookKeys(aws.ToString(out.SecretString))
	if err != nil {
		return fmt.Errorf("webhooks rotate-key: the secret %s %w", c.WebhookKeySecretID, err)
	}
	now := c.now().UTC()
	if len(old.Previous) > 0 && now.Before(old.PreviousUntil) && !force {
		return fmt.Errorf("webhooks rotate-key: the previous key %s is accepted until %s (an earlier rotation): rotate after that, or --force to drop it now",
			webhook.KeyID(old.Previous), old.PreviousUntil.Format(time.RFC3339))
	}
	key := newWebhookKey(old.Current)
	next := webhook.Keys{Current: key, Previous: old.Current, PreviousUntil: now.Add(grace).Truncate(time.Second)}
	res := RotateKeyResult{PreviousKeyID: webhook.KeyID(old.Current), KeyID: webhook.KeyID(key), PreviousUntil: next.PreviousUntil}
	if c.Audit != nil && c.Audit.Log != nil {
		who := "unknown"
		if c.Audit.Who != nil {
			who = c.Audit.Who(ctx)
		}
		c.Audit.Log.LogAttrs(ctx, slog.LevelInfo, "webhook key rotated by an operator",
			slog.String("action", "rotate_webhook_key"), slog.String("previous_key_id", res.PreviousKeyID),
			slog.String("key_id", res.KeyID), slog.Time("previous_until", res.PreviousUntil),
			slog.String("operator", who), slog.Time("at", now))
	}
	if _, err := c.WebhookKeySecret.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(c.WebhookKeySecretID), SecretString: aws.String(clientcreds.FormatWebhookKeys(next))}); err != nil {
		return fmt.Errorf("webhooks rotate-key: write %s: %w (nothing changed)", c.WebhookKeySecretID, err)
	}
	// The worker reads the key afresh for each register_webhooks job, so these register with
	// the new key; the receiver reads it again at the first delivery naming it.
	res.Registration, err = c.queueRuns(ctx, nil, webhookRun{verb: "register", kind: jobs.KindRegisterWebhooks, job: jobs.RegisterWebhooks})
	if err != nil {
		return fmt.Errorf("webhooks rotate-key: the key is rotated (%s, previous %s until %s) but %w: run pdctl webhooks register --all",
			res.KeyID, res.PreviousKeyID, res.PreviousUntil.Format(time.RFC3339), err)
	}
	if c.JSON {
		return writeJSON(c.Out, res)
	}
	fmt.Fprintf(c.Out, "webhook key rotated: %s -> %s; the previous key is accepted until %s\n", res.PreviousKeyID, res.KeyID, res.PreviousUntil.Format(time.RFC3339))
	fmt.Fprintf(c.Out, "enqueued %d register_webhooks job(s) (job ids end in %s)\n", res.Registration.Enqueued, res.Registration.Run)
	for _, s := range res.Registration.Skipped {
		fmt.Fprintf(c.Out, "skipped %d:%d (%s, not active)\n", s.CompanyID, s.UserID, s.Status)
	}
	return nil
}

// newWebhookKey returns a random key of 52 characters (260 bits) whose key id differs from
// old's, so the receiver and register_webhooks tell their credentials apart.
func newWebhookKey(old []byte) []byte {
	for {
		k := []byte(rand.Text() + rand.Text())
		if webhook.KeyID(k) != webhook.KeyID(old) {
			return k
		}
	}
}
