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

// Main wires the function from its environment and runs it under Lambda; it does not return.
func Main() {
	ctx := context.Background()
	app, err := wire.Load(ctx, wire.Options{Name: "webhooks"})
	if err != nil {
		log.Fatal(err)
	}
	q := app.Jobs()
	if q == nil {
		log.Fatal("webhooks: JOBS_QUEUE_URL must be set")
	}
	h := &handler{creds: app.Creds, events: app.Store, jobs: q, log: app.Log, metrics: metrics.New("webhooks")}
	lambda.Start(h.handle)
}
