// Command callback is the OAuth Lambda behind API Gateway: GET /oauth/install redirects to
// Pipedrive's consent page, GET /oauth/callback finishes an install, DELETE /oauth/callback is
// Pipedrive's uninstall request. See Handler for the behaviour; this file only wires it.
package main

import (
	"cmp"
	"context"
	"log"
	"log/slog"
	"net/url"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	table, secretID, redirectURI := os.Getenv("TOKENS_TABLE"), os.Getenv("CLIENT_SECRET_ID"), os.Getenv("REDIRECT_URI")
	if table == "" || secretID == "" || redirectURI == "" {
		log.Fatal("callback: TOKENS_TABLE, CLIENT_SECRET_ID and REDIRECT_URI must all be set")
	}
	if u, err := url.Parse(redirectURI); err != nil || !u.IsAbs() || u.Host == "" {
		log.Fatalf("callback: REDIRECT_URI %q is not an absolute URL", redirectURI)
	}
	requireState, err := strconv.ParseBool(cmp.Or(os.Getenv("REQUIRE_STATE"), "false"))
	if err != nil {
		log.Fatalf("callback: REQUIRE_STATE %q is not true or false", os.Getenv("REQUIRE_STATE"))
	}
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL for local stacks
	if err != nil {
		log.Fatalf("callback: load AWS config: %v", err)
	}
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(awsCfg), SecretID: secretID, Logger: logger}
	if _, err := creds.Load(ctx); err != nil {
		log.Fatalf("callback: client credentials: %v", err)
	}
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(awsCfg), Table: table}
	h := &Handler{
		Creds:         creds,
		OAuth:         &pdoauth.Client{BaseURL: cmp.Or(os.Getenv("PIPEDRIVE_OAUTH_URL"), pdoauth.DefaultBaseURL), Credentials: creds.OAuthCredentials},
		Users:         &pdapi.Client{},
		Claims:        store,
		Installations: store,
		Log:           logger,
		Config:        Config{RedirectURI: redirectURI, SuccessURL: os.Getenv("SUCCESS_URL"), RequireState: requireState},
	}
	if q := os.Getenv("JOBS_QUEUE_URL"); q != "" {
		h.Jobs, h.Config.EnqueueOnInstall = &jobs.Enqueuer{SQS: sqs.NewFromConfig(awsCfg), QueueURL: q}, true
	}
	if arn := os.Getenv("ALERTS_TOPIC_ARN"); arn != "" {
		h.Alerts = &alerts.Publisher{SNS: sns.NewFromConfig(awsCfg), TopicARN: arn, Source: "callback", Dedupe: store.Once}
	}
	lambda.Start(h.Handle)
}
