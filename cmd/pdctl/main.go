// Command pdctl is the on-call engineer's command line: installations without tokens, what
// the refresher will do next, a refresh on demand, and the jobs dead-letter queue. Run
// `pdctl help`. It reads the same environment variables as the functions.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pdctl: AWS configuration:", err)
		os.Exit(1)
	}
	cli := &opscli.CLI{Out: os.Stdout, JobsQueueURL: os.Getenv("JOBS_QUEUE_URL"), DeadLetterURL: os.Getenv("JOBS_DLQ_URL")}
	if table := os.Getenv("TOKENS_TABLE"); table != "" {
		db := dynamodb.NewFromConfig(awsCfg)
		store := &tokenstore.Store{DB: db, Table: table}
		cli.Store, cli.Inventory = store, &tokenstore.Inventory{DB: db, Table: table}
		if secretID := os.Getenv("CLIENT_SECRET_ID"); secretID != "" {
			cli.Refresh = refresher(awsCfg, store, secretID, cmp.Or(os.Getenv("PIPEDRIVE_OAUTH_URL"), "https://oauth.pipedrive.com"))
		}
	}
	if cli.JobsQueueURL != "" || cli.DeadLetterURL != "" {
		cli.SQS = sqs.NewFromConfig(awsCfg)
	}
	if err := cli.Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pdctl:", err)
		if errors.Is(err, opscli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
