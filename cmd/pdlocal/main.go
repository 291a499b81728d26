// Command pdlocal runs the backend locally on its embedded defaults: moto_server for AWS,
// the Pipedrive simulator, and the functions' real bootstraps under the Lambda Runtime
// Interface Emulator (the callback and the webhook receiver behind a local HTTP API, the
// worker fed by the jobs queue, the refresher invoked as its schedule would), built from the
// worked example app (examples/dealnotes; -app names another app's module). It walks one installation through install, webhook registration, reload,
// refreshes, API calls, a webhook from a deal a user creates to the note the example app adds
// (and duplicate deliveries that change nothing), and uninstall, and exits 0 when every step
// answered as expected.
//
//	go run ./cmd/pdlocal          # run the install flow and exit
//	go run ./cmd/pdlocal -serve   # then keep the stack up for a browser and curl, the refresher on
//	                              # template.yaml's schedule (-refresh-every to change it)
//
// With PIPEDRIVE_CLIENT_ID set (or -client-id), it serves a real Pipedrive app instead of the
// simulator: PIPEDRIVE_CLIENT_SECRET (environment only, never a flag), PIPEDRIVE_REDIRECT_URI
// (-redirect-uri: the public callback URL of a tunnel to -gateway) and PIPEDRIVE_OAUTH_URL
// (-oauth-url, default https://oauth.pipedrive.com). None of them is printed but the URLs.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
)

func main() {
	serve := flag.Bool("serve", false, "keep the stack running after the install flow, until interrupted")
	gateway := flag.String("gateway", "127.0.0.1:8080", "address of the local HTTP API (the callback URL's host)")
	sim := flag.String("sim", "127.0.0.1:8787", "address of the Pipedrive simulator")
	rotate := flag.Bool("rotate", false, "simulate refresh-token rotation")
	verbose := flag.Bool("v", false, "print the functions' and the stack's JSON logs")
	clientID := flag.String("client-id", "", "a real Pipedrive app's client id (or "+localstack.EnvAppClientID+"); the secret comes from "+localstack.EnvAppClientSecret+" only")
	redirectURI := flag.String("redirect-uri", "", "with a real app: its public callback URL, https://<tunnel>/oauth/callback (or "+localstack.EnvAppRedirectURI+")")
	oauthURL := flag.String("oauth-url", "", "with a real app: Pipedrive's OAuth server (or "+localstack.EnvAppOAuthURL+"; default "+localstack.DefaultAppOAuthURL+")")
	appDir := flag.String("app", "", "the Go module of the app whose functions/<name> to run (default: the kit's "+localstack.ExampleAppDir+")")
	every := flag.Duration("refresh-every", 0, "with -serve, run the refresher at this interval instead of template.yaml's RefreshEveryMinutes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	app, err := realApp(*clientID, *redirectURI, *oauthURL)
	if err != nil {
		log.Fatalf("pdlocal: %v", err)
	}
	root, err := localstack.ModuleRoot()
	if err != nil {
		log.Fatalf("pdlocal: %v", err)
	}
	dir := *appDir
	if dir == "" {
		dir = filepath.Join(root, localstack.ExampleAppDir)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		log.Fatalf("pdlocal: -app: %v", err)
	}
	cfg := localstack.Config{Root: root, AppDir: dir, GatewayAddr: *gateway, SimulatorAddr: *sim, RotateRefreshTokens: *rotate, App: app}
	if *serve || app != nil {
		cfg.Schedules, cfg.RefreshEvery = true, *every
	}
	if *verbose {
		cfg.FunctionOutput = os.Stderr
		cfg.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	start := time.Now()
	st, err := localstack.Start(ctx, cfg)
	if err != nil {
		log.Fatalf("pdlocal: %v", err)
	}
	defer st.Close()
	if app != nil {
		fmt.Printf("stack up in %s: gateway %s, moto %s, your Pipedrive app at %s\n", time.Since(start).Round(time.Millisecond), st.GatewayURL, st.MotoURL, app.OAuthURL)
		fmt.Printf("\nserving until Ctrl-C (the tunnel must forward %s to %s):\n  install:   %s/oauth/install\n  callback:  %s (registered in Developer Hub)\n",
			app.PublicBaseURL(), st.GatewayURL, app.PublicBaseURL(), app.RedirectURI)
		printPdctl(st, app.OAuthURL)
		<-ctx.Done()
		return
	}
	fmt.Printf("stack up in %s: gateway %s, simulator %s, moto %s\n", time.Since(start).Round(time.Millisecond), st.GatewayURL, st.SimulatorURL, st.MotoURL)

	if err := st.Demo(ctx, os.Stdout); err != nil {
		st.Close()
		log.Fatalf("pdlocal: install flow failed: %v", err)
	}
	if !*serve {
		return
	}
	fmt.Printf("\nserving until Ctrl-C:\n  install:   %s/oauth/install\n  simulator: %s (admin API under /_sim/, see docs/simulator.md)\n", st.GatewayURL, st.SimulatorURL)
	printPdctl(st, st.SimulatorURL)
	<-ctx.Done()
}

// printPdctl prints how to point pdctl at the running stack.
func printPdctl(st *localstack.Stack, oauthURL string) {
	fmt.Printf("  pdctl:     AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \\\n"+
		"             TOKENS_TABLE=%s JOBS_QUEUE_URL=%s JOBS_DLQ_URL=%s CLIENT_SECRET_ID=%s PIPEDRIVE_OAUTH_URL=%s \\\n"+
		"             go run ./cmd/pdctl list\n",
		st.MotoURL, st.Resources.TableName, st.Resources.JobsQueueURL, st.Resources.DeadLetterQueueURL, st.Resources.SecretID, oauthURL)
}

// realApp is the real Pipedrive app of the environment, flags overriding it; nil when no
// client id is given (the simulator).
func realApp(clientID, redirectURI, oauthURL string) (*localstack.App, error) {
	flags := map[string]string{localstack.EnvAppClientID: clientID, localstack.EnvAppRedirectURI: redirectURI, localstack.EnvAppOAuthURL: oauthURL}
	app, err := localstack.AppFromEnv(func(k string) string { return cmp.Or(flags[k], os.Getenv(k)) })
	if app != nil {
		app.OAuthURL = cmp.Or(app.OAuthURL, localstack.DefaultAppOAuthURL)
	}
	return app, err
}
