// Package refresher is the token-refresh Lambda: the EventBridge Scheduler invokes it every few
// minutes and it refreshes every installation due (in use and about to expire, or idle and due
// its keep-alive), fanning the shards of the due list out to parallel invocations of itself
// when much is due; invoked with {"company_id":…,"user_id":…,"force":true} it refreshes that
// one installation now. Each scheduled run also queues the day's webhook health checks of the
// shards whose hour it is (webhookcheck). See Handler for the behaviour; this file only wires it.
package refresher

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	lambdaapi "github.com/aws/aws-sdk-go-v2/service/lambda"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhookcheck"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// New wires the function for app a from its environment (o.Getenv, the process environment
// by default): the Lambda handler, or the configuration error.
func New(ctx context.Context, a kitapp.App, o wire.Options) (lambda.Handler, error) {
	app, err := wire.Load(ctx, o.Named("refresher"))
	if err != nil {
		return nil, err
	}
	cfg, calls, fanOut, err := runConfig(app.Getenv)
	if err != nil {
		return nil, err
	}
	r := app.Refresher(app.Owner())
	r.OAuth = refresh.LimitCalls(r.OAuth, calls)
	cfg.Shards, cfg.Owner = app.Store, app.Owner()
	if fn := app.Getenv("AWS_LAMBDA_FUNCTION_NAME"); fanOut && fn != "" {
		cfg.FanOut = selfInvoke{Lambda: lambdaapi.NewFromConfig(app.AWS), Function: fn}
	}
	m := app.Metrics("refresher")
	r.Metrics = m
	h := &Handler{Store: app.Store, Refresher: r, Log: app.Log, Config: cfg, Metrics: m,
		Configured: func(ctx context.Context) error { _, err := app.Creds.Get(ctx); return err }}
	if q := app.Jobs(); q != nil {
		// The daily webhook health check, spread over the due shards' hours.
		h.WebhookChecks = &webhookcheck.Sweep{Store: app.Store, Marks: app.Store, Jobs: q}
	}
	return lambda.NewHandler(h.Handle), nil
}

// Main runs the function for app a under Lambda; a configuration error ends the process at
// cold start (log.Fatal). It does not return.
func Main(a kitapp.App) {
	wire.Start(a, New)
}
