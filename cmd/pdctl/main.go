// Command pdctl is the on-call engineer's command line: installations without tokens, what
// the refresher will do next, a refresh on demand, and the jobs dead-letter queue. Run
// `pdctl -h`. It reads the same environment variables as the functions (internal/wire), or,
// with --stack NAME, the deployed stack's outputs.
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
	cli := &opscli.CLI{Out: os.Stdout, In: os.Stdin, Connect: connect}
	if err := cli.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pdctl:", err)
		if errors.Is(err, opscli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// connect wires cli from the environment, or from the outputs of cli.Stack (--stack), before
// its command runs; help and completion never get here.
func connect(ctx context.Context, cli *opscli.CLI) error {
	// The refresher's decision log goes to stderr: stdout is the command's output.
	app, err := wire.Load(ctx, wire.Options{Name: "pdctl", Stack: cli.Stack, Optional: true, SkipCredentialCheck: true, LogOutput: os.Stderr})
	if err != nil {
		return err
	}
	cli.JobsQueueURL, cli.DeadLetterURL = app.Getenv(wire.EnvJobsQueueURL), app.Getenv(wire.EnvJobsDLQURL)
	if app.Store != nil {
		cli.Store, cli.Inventory = app.Store, &tokenstore.Inventory{DB: dynamodb.NewFromConfig(app.AWS), Table: app.Store.Table}
		cli.Warm = app.Store.SetAlwaysWarm
		cli.Pauses = app.Store
	}
	host, _ := os.Hostname() // leases name the machine, for whoever reads `pdctl show`
	if r := app.Refresher("pdctl@" + host); r != nil {
		cli.Refresh = r.Refresh // the refresher's own leases and writes: never races the function
	}
	// migrate writes tokens: only with TOKENS_KEY_ID, so they are sealed like the callback's.
	if app.Store != nil && app.Store.Cipher != nil && app.OAuth != nil {
		cli.Migrator = &opscli.Migrator{OAuth: app.OAuth, Users: &pdapi.Client{}, Installs: app.Store}
		if j := app.Jobs(); j != nil { // a nil *jobs.Enqueuer must not become a non-nil interface
			cli.Migrator.Jobs = j
		}
	}
	if j := app.Jobs(); j != nil { // webhooks register; as for migrate, never a typed nil
		cli.Jobs = j
	}
	if id := app.Getenv(wire.EnvClientSecretID); id != "" {
		cli.Setup = &opscli.Setup{Secrets: secretsmanager.NewFromConfig(app.AWS), SecretID: id}
	}
	if id := app.Getenv(wire.EnvWebhookKeySecretID); id != "" { // webhooks rotate-key
		cli.WebhookKeySecret, cli.WebhookKeySecretID = secretsmanager.NewFromConfig(app.AWS), id
	}
	cli.Uninstall = uninstaller(app)
	// decrypt, the only command that reads a token, and only with TOKENS_KEY_ID and a role
	// allowed kms:Decrypt; every use is logged to stderr and alerted.
	cli.Audit = &opscli.Auditor{Log: slog.New(slog.NewJSONHandler(os.Stderr, nil)), Who: operator(app.AWS)}
	if app.Alerts != nil {
		// Every decryption alerts: the audit copy of the publisher has no dedupe marks.
		audit := *app.Alerts
		audit.Marks = nil
		cli.Audit.Alerts = &audit
	}
	if app.Store != nil && app.Store.Cipher != nil {
		// Like the functions (RefusePlaintextTokens): decrypt and refresh never hand out or use
		// a token planted in clear; tokens seal does not read through it.
		app.Store.RefusePlaintext = true
		cli.Tokens = app.Store
		db := dynamodb.NewFromConfig(app.AWS)
		cli.Seal = func(ctx context.Context) (int, error) { return app.Store.SealPlaintext(ctx, db) }
	}
	if cli.JobsQueueURL != "" || cli.DeadLetterURL != "" {
		cli.SQS = app.SQS()
	}
	if app.Store != nil { // dlq redrive --id of an outcome_unknown job clears its claim
		cli.Claims = app.Store
	}
	return nil
}
