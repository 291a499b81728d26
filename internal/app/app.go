// Package app is an app as the functions run it: the handlers the public package pdkit builds
// from an app developer's pdkit.App, in the worker's terms (internal/pdwork). The functions
// take an App in their Main; the kit's own functions/ run the empty App (events acknowledged,
// no hooks, no job kinds).
package app

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// App is what the functions run of an app. The zero App does nothing but acknowledge events.
type App struct {
	// Events handles webhook events (the worker's webhook_event jobs); nil acknowledges them.
	Events pdwork.EventHandler
	// Jobs are the app's job kinds, by name (the job kind is jobs.AppKind(name)).
	Jobs map[string]Job
	// OnInstall runs on the worker (an app_install job) after each install stored a new
	// installation version; nil queues no such job.
	OnInstall pdwork.JobFunc
	// OnUninstall runs on the worker (an app_uninstall job) after an uninstall is recorded;
	// nil queues no such job.
	OnUninstall pdwork.UninstallFunc
}

// Job is one of the app's job kinds.
type Job struct {
	Func pdwork.JobFunc
	// UseReserve lets its calls spend the company's budget reserve (see jobs.Job.UseReserve).
	UseReserve bool
}

// Validate reports an App the worker cannot run: a job kind name jobs.ValidAppKindName refuses,
// or one without a function.
func (a App) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(a.Jobs)) {
		if !jobs.ValidAppKindName(name) {
			return fmt.Errorf("app: job kind %q: want 1 to %d lowercase letters, digits or underscores, starting with a letter", name, jobs.MaxAppKindName)
		}
		if a.Jobs[name].Func == nil {
			return fmt.Errorf("app: job kind %q has no function", name)
		}
	}
	return nil
}

// Kinds are the job kinds a producer in the worker may queue: the kit's and the app's.
func (a App) Kinds() map[string]jobs.KindCheck {
	out := maps.Clone(jobs.Kinds)
	for name := range a.Jobs {
		out[jobs.AppKind(name)] = nil
	}
	return out
}

// Runners are the worker's runners of the app's work (the kit's own runners come from the
// worker): each job kind, app_install and app_uninstall (a no-op without a hook: a job queued
// before a deploy removed the hook still ends).
func (a App) Runners(s *pdwork.Sessions, enqueue pdwork.Enqueuer) map[string]worker.Runner {
	out := map[string]worker.Runner{}
	for name, k := range a.Jobs {
		out[jobs.AppKind(name)] = &pdwork.AppJobs{Sessions: s, Jobs: enqueue, Func: k.Func, UseReserve: k.UseReserve}
	}
	install := a.OnInstall
	if install == nil {
		install = func(context.Context, jobs.Job, *pdwork.Client) error { return nil }
	}
	// A user just installed and waits for the app to work, as for register_webhooks.
	out[jobs.KindAppInstall] = &pdwork.AppJobs{Sessions: s, Jobs: enqueue, Func: install, UseReserve: true}
	uninstall := a.OnUninstall
	if uninstall == nil {
		uninstall = func(context.Context, installation.ID) error { return nil }
	}
	out[jobs.KindAppUninstall] = &pdwork.AppUninstall{Func: uninstall}
	return out
}

// EventHandler is a.Events, or one that acknowledges every event when it is nil.
func (a App) EventHandler() pdwork.EventHandler {
	if a.Events == nil {
		return acknowledge{}
	}
	return a.Events
}

// acknowledge handles every event by doing nothing.
type acknowledge struct{}

func (acknowledge) HandleEvent(context.Context, webhook.Event, *pdwork.Client) error { return nil }

// Of converts the public package's *pdkit.App into an App; pdkit sets it when it is linked
// (it imports this package, so this package cannot import it). pdkittest uses it to run an
// app's handlers in process.
var Of func(publicApp any) (App, error)
