// Package refresher is the token-refresh Lambda: the EventBridge Scheduler invokes it every few
// minutes and it refreshes every installation due (in use and about to expire, or idle and due
// its keep-alive), fanning the shards of the due list out to parallel invocations of itself
// when much is due; invoked with {"company_id":…,"user_id":…,"force":true} it refreshes that
// one installation now. Each scheduled run also queues the day's webhook health checks of the
// shards whose hour it is (webhookcheck). See Handler for the behaviour; this file only wires it.
package refresher

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	lambdaapi "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhookcheck"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// Main wires the function from its environment and runs it under Lambda; it does not return.
func Main() {
	app, err := wire.Load(context.Background(), wire.Options{Name: "refresher"})
	if err != nil {
		log.Fatal(err)
	}
	cfg, calls, fanOut, err := runConfig(app.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	r := app.Refresher(app.Owner())
	r.OAuth = refresh.LimitCalls(r.OAuth, calls)
	cfg.Shards, cfg.Owner = app.Store, app.Owner()
	if fn := app.Getenv("AWS_LAMBDA_FUNCTION_NAME"); fanOut && fn != "" {
		cfg.FanOut = selfInvoke{Lambda: lambdaapi.NewFromConfig(app.AWS), Function: fn}
	}
	m := metrics.New("refresher")
	r.Metrics = m
	h := &Handler{Store: app.Store, Refresher: r, Log: app.Log, Config: cfg, Metrics: m,
		Configured: func(ctx context.Context) error { _, err := app.Creds.Get(ctx); return err }}
	if q := app.Jobs(); q != nil {
		// The daily webhook health check, spread over the due shards' hours.
		h.WebhookChecks = &webhookcheck.Sweep{Store: app.Store, Marks: app.Store, Jobs: q}
	}
	lambda.Start(h.Handle)
}
