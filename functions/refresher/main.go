// Command refresher is the token-refresh Lambda: the EventBridge Scheduler invokes it every few
// minutes and it refreshes every installation whose access token is about to expire; invoked
// with {"company_id":…,"user_id":…,"force":true} it refreshes that one installation now. See
// Handler for the behaviour; this file only wires it.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"log"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	table, secretID := os.Getenv("TOKENS_TABLE"), os.Getenv("CLIENT_SECRET_ID")
	if table == "" || secretID == "" {
		log.Fatal("refresher: TOKENS_TABLE and CLIENT_SECRET_ID must both be set")
	}
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx) // honours AWS_ENDPOINT_URL for local stacks
	if err != nil {
		log.Fatalf("refresher: load AWS config: %v", err)
	}
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(awsCfg), SecretID: secretID, Logger: logger}
	if _, err := creds.Load(ctx); err != nil {
		log.Fatalf("refresher: client credentials: %v", err)
	}
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(awsCfg), Table: table}
	r := &refresh.Refresher{
		OAuth:                 &pdoauth.Client{BaseURL: cmp.Or(os.Getenv("PIPEDRIVE_OAUTH_URL"), pdoauth.DefaultBaseURL), Credentials: creds.OAuthCredentials},
		Store:                 store,
		Log:                   logger,
		Owner:                 owner(),
		InvalidateCredentials: creds.Invalidate,
	}
	if arn := os.Getenv("ALERTS_TOPIC_ARN"); arn != "" {
		r.Alerts = &alerts.Publisher{SNS: sns.NewFromConfig(awsCfg), TopicARN: arn, Source: "refresher", Dedupe: store.Once}
	}
	h := &Handler{Store: store, Refresher: r, Log: logger}
	lambda.Start(h.Handle)
}

// owner names this execution environment in leases: function name and log stream (one per
// environment), or a random id outside Lambda.
func owner() string {
	fn, stream := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"), os.Getenv("AWS_LAMBDA_LOG_STREAM_NAME")
	if fn != "" && stream != "" {
		return fn + "/" + stream
	}
	return cmp.Or(fn, "refresher") + "/" + rand.Text()
}
