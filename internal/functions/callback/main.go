// Package callback is the OAuth Lambda behind API Gateway: GET /oauth/install redirects to
// Pipedrive's consent page, GET /oauth/callback finishes an install (internal/install), DELETE
// /oauth/callback is Pipedrive's uninstall request. See handler for the behaviour; this file
// only wires it.
package callback

import (
	"cmp"
	"context"
	"log"
	"net/url"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// Main wires the function from its environment and runs it under Lambda; it does not return.
func Main() {
	app, err := wire.Load(context.Background(), wire.Options{Name: "callback"})
	if err != nil {
		log.Fatal(err)
	}
	// Empty: each request derives it from the domain API Gateway received it on (handler.redirectURI).
	redirectURI := app.Getenv("REDIRECT_URI")
	if u, err := url.Parse(redirectURI); redirectURI != "" && (err != nil || !u.IsAbs() || u.Host == "") {
		log.Fatalf("callback: REDIRECT_URI %q is not an absolute URL", redirectURI)
	}
	requireState, err := strconv.ParseBool(cmp.Or(app.Getenv("REQUIRE_STATE"), "false"))
	if err != nil {
		log.Fatalf("callback: REQUIRE_STATE %q is not true or false", app.Getenv("REQUIRE_STATE"))
	}
	caps, err := install.CapsFromEnv(app.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	in := &install.Installer{OAuth: app.OAuth, Users: &pdapi.Client{}, Claims: app.Store, Store: app.Store, Existing: app.Store,
		InvalidateCredentials: app.Creds.Invalidate, Alerts: app.Notifier, Log: app.Log, RedirectURI: redirectURI}
	if jobs := app.Jobs(); jobs != nil { // a nil *jobs.Enqueuer must not become a non-nil interface
		in.Jobs = jobs
	}
	h := &handler{
		Flow: &install.Flow{Creds: app.Creds, OAuth: app.OAuth, Installer: in, Attempts: app.Store, Alerts: app.Notifier, Log: app.Log,
			RequireState: requireState, AttemptsPerIP: caps.PerIP, AttemptsPerState: caps.PerState, AttemptWindow: caps.Window},
		Uninstall: &uninstall.Uninstaller{Creds: app.Creds, Store: app.Store, Alerts: app.Notifier, Log: app.Log},
		Alerts:    app.Notifier, Log: app.Log, Metrics: metrics.New("callback"),
		Config: config{SuccessURL: app.Getenv("SUCCESS_URL")},
	}
	lambda.Start(h.Handle)
}
