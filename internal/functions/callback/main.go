// Package callback is the OAuth Lambda behind API Gateway: GET /oauth/install redirects to
// Pipedrive's consent page, GET /oauth/callback finishes an install (internal/install), DELETE
// /oauth/callback is Pipedrive's uninstall request. See handler for the behaviour; this file
// only wires it.
package callback

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"net/url"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"

	kitapp "github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

// New wires the function for app a from its environment (o.Getenv, the process environment
// by default): the Lambda handler, or the configuration error.
func New(ctx context.Context, a kitapp.App, o wire.Options) (lambda.Handler, error) {
	app, err := wire.Load(ctx, o.Named("callback"))
	if err != nil {
		return nil, err
	}
	// Empty: each request derives it from the domain API Gateway received it on (handler.redirectURI).
	redirectURI := app.Getenv("REDIRECT_URI")
	if u, err := url.Parse(redirectURI); redirectURI != "" && (err != nil || !u.IsAbs() || u.Host == "") {
		return nil, fmt.Errorf("callback: REDIRECT_URI %q is not an absolute URL", redirectURI)
	}
	requireState, err := strconv.ParseBool(cmp.Or(app.Getenv("REQUIRE_STATE"), "false"))
	if err != nil {
		return nil, fmt.Errorf("callback: REQUIRE_STATE %q is not true or false", app.Getenv("REQUIRE_STATE"))
	}
	caps, err := install.CapsFromEnv(app.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	in := &install.Installer{OAuth: app.OAuth, Users: &pdapi.Client{}, Claims: app.Store, Store: app.Store, Existing: app.Store,
		InvalidateCredentials: app.Creds.Invalidate, Alerts: app.Notifier, Log: app.Log, RedirectURI: redirectURI}
	if q := app.Jobs(); q != nil { // a nil *jobs.Enqueuer must not become a non-nil interface
		in.Jobs = q
		in.AppInstall = a.OnInstall != nil
	}
	h := &handler{
		Flow: &install.Flow{Creds: app.Creds, OAuth: app.OAuth, Installer: in, Attempts: app.Store, Alerts: app.Notifier, Log: app.Log,
			RequireState: requireState, AttemptsPerIP: caps.PerIP, AttemptsPerState: caps.PerState, AttemptWindow: caps.Window},
		Uninstall: &uninstall.Uninstaller{Creds: app.Creds, Store: app.Store, Alerts: app.Notifier, Log: app.Log},
		Alerts:    app.Notifier, Log: app.Log, Metrics: app.Metrics("callback"),
		Config: config{SuccessURL: app.Getenv("SUCCESS_URL")},
	}
	if q := app.Jobs(); q != nil && a.OnUninstall != nil {
		h.Uninstall.Uninstalled = appUninstall(q, app.Notifier, app.Log)
	}
	return lambda.NewHandler(h.Handle), nil
}

// Main runs the function for app a under Lambda; a configuration error ends the process at
// cold start (log.Fatal). It does not return.
func Main(a kitapp.App) {
	wire.Start(a, New)
}
