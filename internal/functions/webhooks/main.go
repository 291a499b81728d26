// Package webhooks is the receiver of Pipedrive's webhook deliveries (POST /pipedrive/webhooks
// behind the HTTP API): it authenticates, de-duplicates and enqueues each event for the worker,
// and never calls Pipedrive itself. See handler for the behaviour; this file only wires it.
package webhooks

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// envLegacyUntil is until when the deployment-wide Basic pair of older deployments is still
// accepted (the template's WebhookLegacyUntil); empty: never.
const envLegacyUntil = "WEBHOOK_LEGACY_UNTIL"

// Main wires the function from its environment and runs it under Lambda; it does not return.
func Main() {
	ctx := context.Background()
	// The receiver's role reads the webhook key secret, and the client secret only while the
	// legacy pair is accepted (WEBHOOK_LEGACY_UNTIL).
	app, err := wire.Load(ctx, wire.Options{Name: "webhooks", ClientSecretOptional: true})
	if err != nil {
		log.Fatal(err)
	}
	q := app.Jobs()
	if q == nil {
		log.Fatal("webhooks: JOBS_QUEUE_URL must be set")
	}
	auth, err := newAuthenticator(app.WebhookKeys, app.Creds, app.Getenv(envLegacyUntil))
	if err != nil {
		log.Fatal("webhooks: ", err)
	}
	h := &handler{auth: auth, events: app.Store, jobs: q, log: app.Log, metrics: metrics.New("webhooks")}
	lambda.Start(h.handle)
}
