package pdkit

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/apicall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/callback"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/refresher"
	"github.com/pdkit/pipedrive-lambda-kit/internal/functions/webhooks"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// StartCallback runs the callback function (template.yaml's CallbackFunction: install,
// OAuth callback and Pipedrive's uninstall request) for a under Lambda. It queues a's
// OnInstall and OnUninstall hooks for the worker. It does not return; an invalid app or
// configuration ends the process at cold start with a log line saying what is wrong.
func StartCallback(a *App) { callback.Main(mustInternal(a)) }

// StartRefresher runs the refresher function (RefresherFunction: scheduled token refresh)
// under Lambda. It runs none of a's code; a is checked so every function of one app starts
// from the same value. It does not return.
func StartRefresher(a *App) { refresher.Main(mustInternal(a)) }

// StartWebhooks runs the webhook receiver (WebhooksFunction) under Lambda: it authenticates
// and de-duplicates Pipedrive's deliveries and queues each event for the worker, which runs
// a.Events. It does not return.
func StartWebhooks(a *App) { webhooks.Main(mustInternal(a)) }

// StartWorker runs the worker (ApiCallFunction: the jobs queue) under Lambda: the kit's jobs,
// and a's event handlers, hooks and job kinds. It does not return.
func StartWorker(a *App) { apicall.Main(mustInternal(a)) }

func mustInternal(a *App) app.App {
	in, err := a.internal()
	if err != nil {
		log.Fatal(err)
	}
	return in
}

func init() {
	app.Of = func(x any) (app.App, error) {
		a, ok := x.(*App)
		if !ok {
			return app.App{}, fmt.Errorf("pdkit: want a *pdkit.App, got %T", x)
		}
		return a.internal()
	}
}

// internal is a in the worker's terms, or what is wrong with it.
func (a *App) internal() (app.App, error) {
	if a == nil {
		return app.App{}, errors.New("pdkit: nil *App (use &pdkit.App{} for an app that only acknowledges events)")
	}
	var in app.App
	if a.Events != nil {
		in.Events = events{a.Events}
	}
	if a.OnInstall != nil {
		hook := a.OnInstall
		in.OnInstall = func(ctx context.Context, _ jobs.Job, c *pdwork.Client) error { return hook(ctx, &Client{c}) }
	}
	if a.OnUninstall != nil {
		hook := a.OnUninstall
		in.OnUninstall = func(ctx context.Context, id installation.ID) error { return hook(ctx, installationOf(id)) }
	}
	for name, k := range a.Jobs {
		if k.Run == nil {
			return app.App{}, fmt.Errorf("pdkit: App.Jobs[%q] has no Run", name)
		}
		if in.Jobs == nil {
			in.Jobs = map[string]app.Job{}
		}
		run := k.Run
		in.Jobs[name] = app.Job{UseReserve: k.UseBudgetReserve, Func: func(ctx context.Context, j jobs.Job, c *pdwork.Client) error {
			return run(ctx, Job{Kind: name, Key: jobs.AppKey(j), Payload: j.Body, NotBefore: j.NotBefore,
				Installation: installationOf(c.Installation()), Attempt: j.Attempt}, &Client{c})
		}}
	}
	if err := in.Validate(); err != nil {
		return app.App{}, fmt.Errorf("pdkit: %w", err)
	}
	return in, nil
}

// events adapts the app's EventHandler to the worker's.
type events struct{ h EventHandler }

func (e events) HandleEvent(ctx context.Context, ev webhook.Event, c *pdwork.Client) error {
	return e.h.HandleEvent(ctx, eventOf(ev), &Client{c})
}
