// Package webhooks is the receiver of Pipedrive's webhook deliveries (POST /pipedrive/webhooks
// behind the HTTP API): it authenticates, de-duplicates and enqueues each event for the worker,
// and never calls Pipedrive itself. See handler for the behaviour; this file only wires it.
package webhooks

import (
	"context"
	"errors"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// New wires the function for app a from its environment (o.Getenv, the process environment
// by default): the Lambda handler, or the configuration error.
func New(ctx context.Context, a kitapp.App, o wire.Options) (lambda.Handler, error) {
	app, err := wire.Load(ctx, withName(o, "webhooks"))
	if err != nil {
		return nil, err
	}
	q := app.Jobs()
	if q == nil {
		return nil, errors.New("webhooks: JOBS_QUEUE_URL must be set")
	}
	h := &handler{creds: app.Creds, events: app.Store, jobs: q, log: app.Log, metrics: app.Metrics("webhooks")}
	return lambda.NewHandler(h.handle), nil
}

// Main runs the function for app a under Lambda; a configuration error ends the process at
// cold start (log.Fatal). It does not return.
func Main(a kitapp.App) {
	h, err := New(context.Background(), a, wire.Options{})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h)
}

func withName(o wire.Options, name string) wire.Options {
	o.Name = name
	return o
}
