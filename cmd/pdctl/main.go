// Command pdctl is the on-call engineer's command line: installations without tokens, what
// the refresher will do next, a refresh on demand, and the jobs dead-letter queue. Run
// `pdctl help`. It reads the same environment variables as the functions (internal/wire).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// The refresher's decision log goes to stderr: stdout is the command's output.
	app, err := wire.Load(ctx, wire.Options{Name: "pdctl", Optional: true, SkipCredentialCheck: true, LogOutput: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pdctl:", err)
		os.Exit(1)
	}
	cli := &opscli.CLI{Out: os.Stdout, JobsQueueURL: app.Getenv(wire.EnvJobsQueueURL), DeadLetterURL: app.Getenv("JOBS_DLQ_URL")}
	if app.Store != nil {
		cli.Store, cli.Inventory = app.Store, &tokenstore.Inventory{DB: dynamodb.NewFromConfig(app.AWS), Table: app.Store.Table}
	}
	host, _ := os.Hostname() // leases name the machine, for whoever reads `pdctl show`
	if r := app.Refresher("pdctl@" + host); r != nil {
		cli.Refresh = r.Refresh // the refresher's own leases and writes: never races the function
	}
	if app.Store != nil {
		cli.Warm = app.Store.SetAlwaysWarm
		cli.Pauses = app.Store
	}
	// migrate writes tokens: only with TOKENS_KEY_ID, so they are sealed like the callback's.
	if app.Store != nil && app.Store.Cipher != nil && app.OAuth != nil {
		cli.Migrator, cli.In = &opscli.Migrator{OAuth: app.OAuth, Users: &pdapi.Client{}, Installs: app.Store}, os.Stdin
		if j := app.Jobs(); j != nil { // a nil *jobs.Enqueuer must not become a non-nil interface
			cli.Migrator.Jobs = j
		}
	}
	if j := app.Jobs(); j != nil { // webhooks register; as for migrate, never a typed nil
		cli.Jobs = j
	}
	if id := app.Getenv(wire.EnvClientSecretID); id != "" {
		cli.Setup, cli.In = &opscli.Setup{Secrets: secretsmanager.NewFromConfig(app.AWS), SecretID: id}, os.Stdin
	}
	cli.Uninstall = uninstaller(app)
	// decrypt, the only command that reads a token, and only with TOKENS_KEY_ID and a role
	// allowed kms:Decrypt; every use is logged to stderr and alerted.
	cli.Audit = &opscli.Auditor{Log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), Who: operator(app.AWS)}
	if app.Alerts != nil {
		cli.Audit.Alerts = app.Alerts
	}
	if app.Store != nil && app.Store.Cipher != nil {
		cli.Tokens = app.Store
	}
	if cli.JobsQueueURL != "" || cli.DeadLetterURL != "" {
		cli.SQS = app.SQS()
	}
	if err := cli.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pdctl:", err)
		if errors.Is(err, opscli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
