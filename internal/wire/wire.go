// Package wire builds, once per cold start, what every function and pdctl share: the AWS
// configuration, the JSON logger (internal/lambdalog: level from AWS_LAMBDA_LOG_LEVEL, request
// id on every line of an invocation), the client credentials from Secrets Manager, the token store,
// the OAuth client, the refresher and the alerts publisher. The functions' main.go and pdctl
// call Load and then only build their handler, so the environment is read in one place and
// every component is configured the same way everywhere.
package wire

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdalog"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// The environment variables Load reads (set by template.yaml's Globals).
const (
	EnvTokensTable    = "TOKENS_TABLE"
	EnvClientSecretID = "CLIENT_SECRET_ID"
	EnvOAuthURL       = "PIPEDRIVE_OAUTH_URL"
	EnvJobsQueueURL   = "JOBS_QUEUE_URL"
	// EnvJobsDLQURL is the jobs dead-letter queue (the apicall function and pdctl's dlq).
	EnvJobsDLQURL     = "JOBS_DLQ_URL"
	EnvAlertsTopicARN = "ALERTS_TOPIC_ARN"
	// EnvTokensKeyID is the KMS key that seals the tokens (TokensKey). Required wherever
	// TOKENS_TABLE is, except for pdctl, which then only reads what needs no key.
	EnvTokensKeyID = "TOKENS_KEY_ID"
	// EnvWebhookKeySecretID is the webhook key secret (WebhookKeySecret): the receiver and the
	// worker (which registers webhooks) read it, and pdctl rotates it.
	EnvWebhookKeySecretID = "WEBHOOK_KEY_SECRET_ID"
	// EnvRefusePlaintext, "true", makes the store refuse token attributes stored in clear
	// (tokenstore.Store.RefusePlaintext; template parameter RefusePlaintextTokens).
	EnvRefusePlaintext = "REFUSE_PLAINTEXT_TOKENS"
)

// Options say what a caller cannot run without. Functions need everything; pdctl runs the
// commands it can with what is configured.
type Options struct {
	// Name is the component ("callback", "refresher", "apicall", "pdctl"): the alerts' source
	// and the prefix of lease owners.
	Name string
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
	// Optional makes TOKENS_TABLE and CLIENT_SECRET_ID optional (pdctl); without it Load fails
	// when either is unset.
	Optional bool
	// ClientSecretOptional makes CLIENT_SECRET_ID optional for a function that works without the
	// client secret (the webhook receiver, whose role may not read it).
	ClientSecretOptional bool
	// SkipCredentialCheck does not load the client credentials at start (pdctl loads them on
	// first use); functions check them at cold start so a broken secret fails loudly. A
	// secret still holding the deploy's placeholder is not broken: Load then succeeds with
	// App.NotConfigured set.
	SkipCredentialCheck bool
	// LogOutput receives the JSON log; os.Stdout when nil.
	LogOutput io.Writer
	// AWS, when set, is the AWS configuration instead of the default one from the process
	// environment (functions run in process against a local stack's moto).
	AWS *aws.Config
	// Stack, when set, names the deployed CloudFormation stack whose outputs (StackOutputs)
	// give the variables: pdctl --stack, so an operator exports nothing. An output overrides
	// the variable of the same meaning; variables no output gives still come from Getenv.
	Stack string
}

// StackOutputs maps the template's Outputs to the variables Load reads (pdctl --stack). The
// template test checks that template.yaml declares every one of them.
var StackOutputs = map[string]string{
	"TokensTableName":        EnvTokensTable,
	"TokensKeyID":            EnvTokensKeyID,
	"ClientSecretARN":        EnvClientSecretID,
	"PipedriveOAuthURL":      EnvOAuthURL,
	"JobsQueueURL":           EnvJobsQueueURL,
	"JobsDeadLetterQueueURL": EnvJobsDLQURL,
	"AlertsTopicARN":         EnvAlertsTopicARN,
	"WebhookKeySecretARN":    EnvWebhookKeySecretID,
}

// StackDescriber reads a stack's outputs; *cloudformation.Client satisfies it.
type StackDescriber interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// StackEnv returns a Getenv that answers the variables of StackOutputs from stack's outputs
// and every other one from fallback. It fails for a stack that does not exist or is not
// deployed (no outputs), naming the stack.
func StackEnv(ctx context.Context, cfn StackDescriber, stack string, fallback func(string) string) (func(string) string, error) {
	out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", stack, err)
	}
	if len(out.Stacks) != 1 {
		return nil, fmt.Errorf("stack %s: %d stacks found, want 1", stack, len(out.Stacks))
	}
	vars := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		if k, ok := StackOutputs[aws.ToString(o.OutputKey)]; ok {
			vars[k] = aws.ToString(o.OutputValue)
		}
	}
	if vars[EnvTokensTable] == "" {
		return nil, fmt.Errorf("stack %s (%s): no %s output: not a stack of this template, or not deployed yet", stack, out.Stacks[0].StackStatus, "TokensTableName")
	}
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return fallback(k)
	}, nil
}

// App is what Load built. Fields are nil when their environment is unset (Optional only).
type App struct {
	Name string
	Log  *slog.Logger
	AWS  aws.Config
	// Creds reads the client id, secret and state key; nil without CLIENT_SECRET_ID.
	Creds *clientcreds.Source
	// WebhookKeys reads the webhook key secret; nil without WEBHOOK_KEY_SECRET_ID.
	WebhookKeys *clientcreds.WebhookKeySource
	// Store is the tokens table; nil without TOKENS_TABLE. Its Cipher is Tokens (nil without
	// TOKENS_KEY_ID, pdctl only: then it can describe installations but not read or write
	// tokens, and Refresher is nil).
	Store *tokenstore.Store
	// Tokens seals and opens the tokens under TOKENS_KEY_ID, caching data keys per process;
	// its Stats count the KMS requests made.
	Tokens *tokencrypt.Envelope
	// OAuth is the client for Pipedrive's OAuth server; nil without Creds.
	OAuth *pdoauth.Client
	// Alerts publishes to ALERTS_TOPIC_ARN, de-duplicated through Store; nil without a topic.
	Alerts *alerts.Publisher
	// Notifier is alert-or-log over Alerts.
	Notifier oncall.Notifier
	// NotConfigured is the cold start's clientcreds.ErrNotConfigured error when the secret's
	// client id or secret was still the deploy's placeholder (logged once, as
	// action=not_configured); nil otherwise. Creds.Get keeps reporting it until an operator
	// sets them.
	NotConfigured error

	getenv func(string) string
	out    io.Writer // where the log goes
}

// ErrConfig matches every configuration error Load returns.
var ErrConfig = errors.New("configuration")

// Load reads the environment and builds the shared components. A function's main calls it
// once per cold start and log.Fatal's on the error.
func Load(ctx context.Context, o Options) (*App, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	name := cmp.Or(o.Name, "pdkit")
	out := o.LogOutput
	if out == nil {
		out = os.Stdout
	}
	// Lambda sets the level from the template's LogLevel; every line of an invocation carries
	// its request id (lambdalog).
	level, err := lambdalog.ParseLevel(getenv(lambdalog.EnvLevel))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", name, ErrConfig, err)
	}
	a := &App{Name: name, Log: lambdalog.New(out, level), out: out}
	if o.AWS != nil {
		a.AWS = *o.AWS
	} else if a.AWS, err = config.LoadDefaultConfig(ctx); err != nil { // honours AWS_ENDPOINT_URL for local stacks
		return nil, fmt.Errorf("%s: load AWS config: %w", name, err)
	}
	if o.Stack != "" {
		if getenv, err = StackEnv(ctx, cloudformation.NewFromConfig(a.AWS), o.Stack, getenv); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	a.getenv = getenv
	if u := getenv(EnvOAuthURL); u != "" {
		// Refused at start: an http:// URL would send the client secret and every refresh
		// token in clear.
		loopback, _ := strconv.ParseBool(getenv(pdoauth.EnvAllowLoopback))
		if err := pdoauth.CheckBaseURL(u, loopback); err != nil {
			return nil, fmt.Errorf("%s: %w: %s: %w", name, ErrConfig, EnvOAuthURL, err)
		}
	}
	table, secretID := getenv(EnvTokensTable), getenv(EnvClientSecretID)
	if !o.Optional {
		var missing []string
		for _, k := range []string{EnvTokensTable, EnvClientSecretID} {
			if getenv(k) == "" && !(k == EnvClientSecretID && o.ClientSecretOptional) {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: %w: %s must be set", name, ErrConfig, strings.Join(missing, " and "))
		}
	}
	if secretID != "" {
		a.Creds = &clientcreds.Source{Client: secretsmanager.NewFromConfig(a.AWS), SecretID: secretID, Logger: a.Log}
		if !o.SkipCredentialCheck {
			_, err := a.Creds.Load(ctx)
			switch {
			case errors.Is(err, clientcreds.ErrNotConfigured):
				// A first deploy: the function starts and says so once; each request reads the
				// secret again, so setting it takes effect without a restart.
				a.NotConfigured = err
				a.Log.Warn(name+": not configured: "+clientcreds.SetupHint,
					"action", "not_configured", "reason", "client_credentials_placeholder", "secret_id", secretID)
			case err != nil:
				return nil, fmt.Errorf("%s: client credentials: %w", name, err)
			}
		}
		a.OAuth = &pdoauth.Client{BaseURL: cmp.Or(getenv(EnvOAuthURL), pdoauth.DefaultBaseURL), Credentials: a.Creds.OAuthCredentials}
	}
	if id := getenv(EnvWebhookKeySecretID); id != "" {
		a.WebhookKeys = &clientcreds.WebhookKeySource{Client: secretsmanager.NewFromConfig(a.AWS), SecretID: id, Logger: a.Log}
		if !o.SkipCredentialCheck {
			if _, err := a.WebhookKeys.Load(ctx); err != nil {
				return nil, fmt.Errorf("%s: webhook keys: %w", name, err)
			}
		}
	}
	if table != "" {
		a.Store = &tokenstore.Store{DB: dynamodb.NewFromConfig(a.AWS), Table: table}
		switch key := getenv(EnvTokensKeyID); {
		case key != "":
			a.Tokens = &tokencrypt.Envelope{KMS: kms.NewFromConfig(a.AWS), KeyID: key}
			a.Store.Cipher = a.Tokens
		case !o.Optional:
			// Why: a function without the key would store tokens in clear.
			return nil, fmt.Errorf("%s: %w: %s must be set with %s", name, ErrConfig, EnvTokensKeyID, EnvTokensTable)
		}
		switch v := getenv(EnvRefusePlaintext); v {
		case "", "false":
		case "true":
			a.Store.RefusePlaintext = true
		default:
			return nil, fmt.Errorf("%s: %w: %s = %q, want true or false", name, ErrConfig, EnvRefusePlaintext, v)
		}
	}
	if arn := getenv(EnvAlertsTopicARN); arn != "" {
		a.Alerts = &alerts.Publisher{SNS: sns.NewFromConfig(a.AWS), TopicARN: arn, Source: name}
		if a.Store != nil {
			a.Alerts.Marks = a.Store
		}
	}
	a.Notifier = oncall.Notifier{Log: a.Log}
	if a.Alerts != nil {
		a.Notifier.Sender = a.Alerts
	}
	return a, nil
}

// NotifierWithin is Notifier with alerts de-duplicated for window instead of the publisher's
// default (per reason and installation): for checks that run daily and must alert once.
func (a *App) NotifierWithin(window time.Duration) oncall.Notifier {
	n := a.Notifier
	if a.Alerts != nil {
		p := *a.Alerts
		p.Window = window
		n.Sender = &p
	}
	return n
}

// Metrics is function's metrics emitter, writing its EMF lines where the log goes (stdout in
// Lambda, where CloudWatch collects both).
func (a *App) Metrics(function string) *metrics.Emitter {
	return &metrics.Emitter{Out: a.out, Function: function}
}

// Getenv reads one variable of the environment Load was given.
func (a *App) Getenv(key string) string { return a.getenv(key) }

// Refresher is the one refresher configuration every caller uses (the scheduled function, the
// worker's on-demand refresh, pdctl), leasing as owner. Nil without Store or OAuth.
func (a *App) Refresher(owner string) *refresh.Refresher {
	if a.Store == nil || a.Store.Cipher == nil || a.OAuth == nil {
		return nil // without the key it could neither read nor store tokens
	}
	r := &refresh.Refresher{
		OAuth:                 a.OAuth,
		Store:                 a.Store,
		Log:                   a.Log,
		Owner:                 owner,
		InvalidateCredentials: a.Creds.Invalidate,
	}
	if a.Alerts != nil {
		r.Alerts = a.Alerts
	}
	return r
}

// Owner names this execution environment in leases: function name and log stream (one per
// environment), or the component's name and a random id outside Lambda.
func (a *App) Owner() string {
	fn, stream := a.getenv("AWS_LAMBDA_FUNCTION_NAME"), a.getenv("AWS_LAMBDA_LOG_STREAM_NAME")
	if fn != "" && stream != "" {
		return fn + "/" + stream
	}
	return cmp.Or(fn, a.Name) + "/" + rand.Text()
}

// SQS is an SQS client on the shared configuration.
func (a *App) SQS() *sqs.Client { return sqs.NewFromConfig(a.AWS) }

// Jobs is the enqueuer of JOBS_QUEUE_URL; nil when it is unset.
func (a *App) Jobs() *jobs.Enqueuer {
	q := a.getenv(EnvJobsQueueURL)
	if q == "" {
		return nil
	}
	return &jobs.Enqueuer{SQS: a.SQS(), QueueURL: q}
}

// Named returns o for the component name (Options.Name), leaving the caller's Options as given.
func (o Options) Named(name string) Options {
	o.Name = name
	return o
}

// Start builds a function's Lambda handler for app with build, from the process environment, and
// runs it under Lambda; a configuration error ends the process at cold start (log.Fatal). It does
// not return. Each function's Main is this call with its New.
func Start[A any](app A, build func(context.Context, A, Options) (lambda.Handler, error)) {
	h, err := build(context.Background(), app, Options{})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h)
}
