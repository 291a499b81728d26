// Package apicall is the Pipedrive API worker: it runs the jobs of the jobs queue (SQS, batches
// with ReportBatchItemFailures) or one job given by a direct invocation, through the job engine
// (internal/worker) and the Pipedrive runners (internal/pdwork). This file only wires them.
package apicall

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// New wires the function for app a from its environment (o.Getenv, the process environment
// by default): the Lambda handler, or the configuration error. Each tune changes the engine's
// configuration read from the environment (pdkittest shortens the retry backoff).
func New(ctx context.Context, a kitapp.App, o wire.Options, tune ...func(*worker.Config)) (lambda.Handler, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	app, err := wire.Load(ctx, o.Named(name))
	if err != nil {
		return nil, err
	}
	cfg, err := configFromEnv(app.Getenv)
	if err != nil {
		return nil, err
	}
	for _, f := range tune {
		f(&cfg.Engine)
	}
	if app.WebhookKeys == nil {
		return nil, errors.New(name + ": WEBHOOK_KEY_SECRET_ID must be set (register_webhooks derives the webhooks' credentials from it)")
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
		Metrics:     app.Metrics(name),
	}, cfg, a)
	return lambda.NewHandler(h.Handle), nil
}

// Main runs the function for app a under Lambda; a configuration error ends the process at
// cold start (log.Fatal). It does not return.
func Main(a kitapp.App) {
	wire.Start(a, func(ctx context.Context, a kitapp.App, o wire.Options) (lambda.Handler, error) {
		return New(ctx, a, o)
	})
}
