// Package webhooks is the receiver of Pipedrive's webhook deliveries (POST /pipedrive/webhooks
// behind the HTTP API): it authenticates, de-duplicates and enqueues each event for the worker,
// and never calls Pipedrive itself. See handler for the behaviour; this file only wires it.
package webhooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// envLegacyUntil is until when the deployment-wide Basic pair of older deployments is still
// accepted (the template's WebhookLegacyUntil); empty: never.
const envLegacyUntil = "WEBHOOK_LEGACY_UNTIL"

// New wires the function for app a from its environment (o.Getenv, the process environment
// by default): the Lambda handler, or the configuration error.
func New(ctx context.Context, a kitapp.App, o wire.Options) (lambda.Handler, error) {
	// The receiver's role reads the webhook key secret, and the client secret only while the
	// legacy pair is accepted (WEBHOOK_LEGACY_UNTIL).
	o = o.Named("webhooks")
	o.ClientSecretOptional = true
	app, err := wire.Load(ctx, o)
	if err != nil {
		return nil, err
	}
	q := app.Jobs()
	if q == nil {
		return nil, errors.New("webhooks: JOBS_QUEUE_URL must be set")
	}
	auth, err := newAuthenticator(app.WebhookKeys, app.Creds, app.Getenv(envLegacyUntil))
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	h := &handler{auth: auth, events: app.Store, jobs: q, log: app.Log, metrics: app.Metrics("webhooks")}
	return lambda.NewHandler(h.handle), nil
}

// Main runs the function for app a under Lambda; a configuration error ends the process at
// cold start (log.Fatal). It does not return.
func Main(a kitapp.App) {
	wire.Start(a, New)
}
