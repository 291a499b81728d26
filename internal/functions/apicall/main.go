// Package apicall is the Pipedrive API worker: it runs the jobs of the jobs queue (SQS, batches
// with ReportBatchItemFailures) or one job given by a direct invocation, through the job engine
// (internal/worker) and the Pipedrive runners (internal/pdwork). This file only wires them.
package apicall

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// Main wires the function from its environment and runs it under Lambda; it does not return.
func Main() {
	ctx := context.Background()
	app, err := wire.Load(ctx, wire.Options{Name: name})
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := configFromEnv(app.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	if app.WebhookKeys == nil {
		log.Fatal(name + ": WEBHOOK_KEY_SECRET_ID must be set (register_webhooks derives the webhooks' credentials from it)")
	}
	h := newHandler(deps{
		Store:       app.Store,
		Refresher:   app.Refresher(app.Owner()),
		Pipedrive:   &pdapi.Client{},
		WebhookKeys: app.WebhookKeys,
		Queue:       app.SQS(),
		Alerts:      app.Notifier,
		// The daily webhook check alerts once per window, not once a day.
		CheckAlerts: app.NotifierWithin(pdwork.CheckAlertWindow),
		Log:         app.Log,
		Metrics:     metrics.New(name),
	}, cfg)
	lambda.Start(h.Handle)
}
