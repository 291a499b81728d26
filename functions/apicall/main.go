// Command apicall is the Pipedrive API worker: it runs the jobs of the jobs queue (SQS, batches
// with ReportBatchItemFailures) or one job given by a direct invocation, and turns every
// Pipedrive answer into an outcome. See Handler for the behaviour; this file only wires it.
package main

import (
	"cmp"
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	table, secretID := os.Getenv("TOKENS_TABLE"), os.Getenv("CLIENT_SECRET_ID")
	queueURL, dlqURL := os.Getenv("JOBS_QUEUE_URL"), os.Getenv("JOBS_DLQ_URL")
	if table == "" || secretID == "" || queueURL == "" || dlqURL == "" {
		log.Fatal("apicall: TOKENS_TABLE, CLIENT_SECRET_ID, JOBS_QUEUE_URL and JOBS_DLQ_URL must all be set")
	}
	hooks := WebhookConfig{URL: os.Getenv("WEBHOOK_URL"), HTTPAuthUser: os.Getenv("WEBHOOK_USER"), HTTPAuthPassword: os.Getenv("WEBHOOK_PASSWORD")}
	if hooks.URL != "" {
		var err error
		if err = ValidateWebhookURL(hooks.URL); err != nil {
			log.Fatalf("apicall: WEBHOOK_URL: %v", err)
		}
		if hooks.Events, err = ParseWebhookEvents(os.Getenv("WEBHOOK_EVENTS")); err != nil {
			log.Fatalf("apicall: WEBHOOK_EVENTS: %v", err)
		}
	}
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL for local stacks
	if err != nil {
		log.Fatalf("apicall: load AWS config: %v", err)
	}
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(awsCfg), SecretID: secretID, Logger: logger}
	if _, err := creds.Load(ctx); err != nil {
		log.Fatalf("apicall: client credentials: %v", err)
	}
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(awsCfg), Table: table}
	refresher := &refresh.Refresher{
		OAuth:                 &pdoauth.Client{BaseURL: cmp.Or(os.Getenv("PIPEDRIVE_OAUTH_URL"), pdoauth.DefaultBaseURL), Credentials: creds.OAuthCredentials},
		Store:                 store,
		Log:                   logger,
		Owner:                 "apicall/" + cmp.Or(os.Getenv("AWS_LAMBDA_LOG_STREAM_NAME"), "local"),
		InvalidateCredentials: creds.Invalidate,
	}
	api := &pdapi.Client{}
	h := &Handler{
		Installations: store,
		Claims:        store,
		Refresher:     refresher,
		API:           api,
		Webhooks:      api,
		Queue:         sqs.NewFromConfig(awsCfg),
		Log:           logger,
		Config:        Config{JobsQueueURL: queueURL, DeadLetterQueueURL: dlqURL, Webhooks: hooks},
	}
	if arn := os.Getenv("ALERTS_TOPIC_ARN"); arn != "" {
		p := &alerts.Publisher{SNS: sns.NewFromConfig(awsCfg), TopicARN: arn, Source: "apicall", Dedupe: store.Once}
		h.Alerts, refresher.Alerts = p, p
	}
	lambda.Start(h.Handle)
}
