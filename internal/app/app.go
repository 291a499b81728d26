// Package app is your app: what it does when Pipedrive tells it something changed. Edit this
// package. The kit does the rest: the webhook receiver authenticates and de-duplicates
// Pipedrive's deliveries, the worker runs each event once (a retried or repeated delivery of
// the same event is not run again), skips a change older than one already handled, and calls
// New's Handler with a Client for the installation the event belongs to. Every call through
// that Client gets the worker's safety: the access token refreshed when it expires and once
// after a 401, a 429 retried at the time Pipedrive asks for, 5xx retried with backoff, dead
// letters with their reason when retrying cannot help, and alerts when a person must act.
//
// A handler's contract: return nil when the event is handled (or of no interest); return the
// Client's error, wrapped with %w, when a call failed (the worker decides from it: retry later
// or dead-letter); return any other error to have the event retried with backoff and, after
// the jobs queue's last receive, dead-lettered with an alert. A retried event runs the handler
// again from the start, so make each step safe to repeat (see DealNotes).
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// Client calls the Pipedrive API as the installation an event belongs to: method path
// (relative to the installation's api_domain, e.g. "/api/v1/notes") with an optional JSON body.
// It returns the 2xx answer; any other outcome is an error to return from HandleEvent (the
// worker turns it into a retry at Pipedrive's time or a dead letter). Not safe for concurrent
// use: make an event's calls one after another.
type Client interface {
	Do(ctx context.Context, method, path string, body []byte) (pdapi.Response, error)
}

// Handler reacts to one Pipedrive webhook event (v1 and v2 deliveries arrive in one shape,
// webhook.Event). HandleEvent runs at most once at a time per event, and again only when an
// earlier run returned an error.
type Handler interface {
	HandleEvent(ctx context.Context, ev webhook.Event, api Client) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, ev webhook.Event, api Client) error

// HandleEvent calls f.
func (f HandlerFunc) HandleEvent(ctx context.Context, ev webhook.Event, api Client) error {
	return f(ctx, ev, api)
}

// Handlers runs several handlers on each event, in order, stopping at the first error (the
// event is retried, and every handler runs again: each must be safe to repeat).
type Handlers []Handler

// HandleEvent runs each handler in order.
func (hs Handlers) HandleEvent(ctx context.Context, ev webhook.Event, api Client) error {
	for _, h := range hs {
		if err := h.HandleEvent(ctx, ev, api); err != nil {
			return err
		}
	}
	return nil
}

// Config is the app's settings, from the worker's environment (template.yaml's
// ApiCallFunction, set by the ExampleApp and AppName parameters).
type Config struct {
	// ExampleApp turns the worked example (DealNotes) on.
	ExampleApp bool
	// AppName is how the app names itself to users (DefaultAppName when empty).
	AppName string
}

// The environment variables ConfigFromEnv reads.
const (
	EnvExampleApp = "EXAMPLE_APP"
	EnvAppName    = "APP_NAME"
)

// DefaultAppName names the app when APP_NAME is empty.
const DefaultAppName = "Pipedrive Lambda Kit"

// ErrConfig is wrapped by ConfigFromEnv's errors.
var ErrConfig = errors.New("app: invalid configuration")

// ConfigFromEnv reads EXAMPLE_APP ("true" or "false"; empty is false) and APP_NAME.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{AppName: strings.TrimSpace(getenv(EnvAppName))}
	if c.AppName == "" {
		c.AppName = DefaultAppName
	}
	switch v := strings.TrimSpace(getenv(EnvExampleApp)); v {
	case "true":
		c.ExampleApp = true
	case "false", "":
	default:
		return Config{}, fmt.Errorf("%w: %s = %q, want true or false", ErrConfig, EnvExampleApp, v)
	}
	return c, nil
}

// New returns the Handler the worker runs for every webhook event. Add your own handlers
// here; with none, events are acknowledged and nothing else happens.
func New(c Config) Handler {
	var hs Handlers
	if c.ExampleApp {
		hs = append(hs, &DealNotes{AppName: c.AppName})
	}
	// hs = append(hs, &YourHandler{…})
	return hs
}
