package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// keySource gives the webhook keys; *clientcreds.WebhookKeySource satisfies it.
type keySource interface {
	Get(ctx context.Context) (webhook.Keys, error)
	Refresh(ctx context.Context, minAge time.Duration) (webhook.Keys, error)
}

// legacySource gives the deployment-wide Basic pair of older deployments (Credentials.Webhook);
// *clientcreds.Source satisfies it.
type legacySource interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
}

// keyRefreshMinAge spaces the extra reads of the webhook key secret that deliveries naming an
// unknown key cause: a rotation is seen within it, a flood of made-up key ids costs at most one
// read per execution environment per interval.
const keyRefreshMinAge = 30 * time.Second

// errAuthUnavailable: the keys (or the legacy pair) could not be read; the delivery is answered
// 503 and Pipedrive retries it.
var errAuthUnavailable = errors.New("webhook credentials unavailable")

// authenticator checks a delivery's Basic credentials against the webhook keys: each
// installation's own credentials (webhook.Verifier), the previous key during a rotation's grace,
// and, until legacyUntil, the deployment-wide pair of older deployments.
type authenticator struct {
	keys keySource
	// legacy is nil when the legacy pair is never accepted (WEBHOOK_LEGACY_UNTIL unset).
	legacy      legacySource
	legacyUntil time.Time
	now         func() time.Time
}

// newAuthenticator builds the receiver's authenticator from the wiring: keys are required;
// legacyUntil is WEBHOOK_LEGACY_UNTIL, empty or an RFC 3339 time, and needs legacy (the client
// secret, CLIENT_SECRET_ID) when set.
func newAuthenticator(keys *clientcreds.WebhookKeySource, legacy *clientcreds.Source, legacyUntil string) (*authenticator, error) {
	if keys == nil {
		return nil, errors.New("WEBHOOK_KEY_SECRET_ID must be set")
	}
	a := &authenticator{keys: keys, now: time.Now}
	if legacyUntil == "" {
		return a, nil
	}
	until, err := time.Parse(time.RFC3339, legacyUntil)
	if err != nil {
		return nil, fmt.Errorf("WEBHOOK_LEGACY_UNTIL %q is not an RFC 3339 time", legacyUntil)
	}
	if legacy == nil {
		return nil, errors.New("WEBHOOK_LEGACY_UNTIL needs CLIENT_SECRET_ID: the legacy pair comes from the client secret")
	}
	a.legacy, a.legacyUntil = legacy, until
	return a, nil
}

// authenticate returns who header authenticates. Errors wrap webhook.ErrUnauthorized (or
// ErrUnknownKey) for a 401, errAuthUnavailable for a 503.
func (a *authenticator) authenticate(ctx context.Context, header string) (webhook.Caller, error) {
	now := a.now()
	keys, err := a.keys.Get(ctx)
	if err != nil {
		return webhook.Caller{}, fmt.Errorf("%w: %w", errAuthUnavailable, err)
	}
	v := webhook.Verifier{Keys: keys}
	if a.legacy != nil && now.Before(a.legacyUntil) {
		c, err := a.legacy.Get(ctx)
		if err != nil {
			return webhook.Caller{}, fmt.Errorf("%w: legacy pair: %w", errAuthUnavailable, err)
		}
		v.Legacy, v.LegacyUntil = c.Webhook, a.legacyUntil
	}
	caller, err := v.Authenticate(header, now)
	if errors.Is(err, webhook.ErrUnknownKey) {
		// A key this environment has not seen: perhaps rotated since the cache was filled.
		if fresh, ferr := a.keys.Refresh(ctx, keyRefreshMinAge); ferr == nil {
			v.Keys = fresh
			caller, err = v.Authenticate(header, now)
		}
	}
	return caller, err
}

// kind names how a caller authenticated, for the log: installation, previous_key or legacy.
func credentialKind(c webhook.Caller) string {
	switch {
	case c.Legacy:
		return "legacy"
	case c.Previous:
		return "previous_key"
	}
	return "installation"
}
