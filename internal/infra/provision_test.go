package infra_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProvisionedResources(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	begin := time.Now()
	r := testenv.Provision(t)
	t.Logf("Provision took %v", time.Since(begin).Round(time.Millisecond))
	ctx := ctxT(t)

	if r.MaxReceiveCount != 12 || r.TTLAttribute != "expires_at" || r.DueIndex != "refresh-due" ||
		r.TableKey != "pk" || r.DueIndexHashKey != "due_shard" || r.DueIndexRangeKey != "refresh_due_at" ||
		r.JobsVisibilityTimeout != 180*time.Second {
		t.Errorf("Provision() = %+v, want MaxReceiveCount 12, TTL expires_at, index refresh-due(due_shard, refresh_due_at), key pk, visibility 3m0s", r)
	}
	wantEnv := map[string]string{
		"TOKENS_TABLE":     r.TableName,
		"CLIENT_SECRET_ID": r.SecretID,
		"JOBS_QUEUE_URL":   r.JobsQueueURL,
		"ALERTS_TOPIC_ARN": r.AlertsTopicARN,
		"TOKENS_KEY_ID":    r.TokensKeyID,
	}
	if got := r.Env(); !maps.Equal(got, wantEnv) {
		t.Errorf("Env() = %v, want %v", got, wantEnv)
	}
	wantWorker := map[string]string{
		"TOKENS_TABLE":           r.TableName,
		"CLIENT_SECRET_ID":       r.SecretID,
		"JOBS_QUEUE_URL":         r.JobsQueueURL,
		"ALERTS_TOPIC_ARN":       r.AlertsTopicARN,
		"TOKENS_KEY_ID":          r.TokensKeyID,
		"PIPEDRIVE_OAUTH_URL":    "https://oauth.pipedrive.com",
		"JOBS_DLQ_URL":           r.DeadLetterQueueURL,
		"JOBS_MAX_RECEIVES":      strconv.Itoa(r.MaxReceiveCount),
		"BUDGET_RESERVE_PERCENT": "20",
		// The stack's own receiver; outside AWS the gateway's id is a stand-in.
		"WEBHOOK_URL":    "https://" + infra.LocalHTTPAPIID + ".execute-api." + testenv.AWS(t).Region + ".amazonaws.com/pipedrive/webhooks",
		"WEBHOOK_EVENTS": "deal.*,person.*",
		"APP_NAME":       "Pipedrive Lambda Kit",
		// Lambda's own, from LoggingConfig.ApplicationLogLevel (the LogLevel parameter).
		"AWS_LAMBDA_LOG_LEVEL": "INFO",
		// Off unless the stack says so: invoking the worker must not act as a customer.
		"DIRECT_INVOKE":     "false",
		"API_PATH_PREFIXES": "",
		// Tokens in clear are refused in every function (RefusePlaintextTokens).
		"REFUSE_PLAINTEXT_TOKENS": "true",
	}
	if got := r.FunctionEnv("ApiCallFunction"); !maps.Equal(got, wantWorker) {
		t.Errorf("FunctionEnv(ApiCallFunction) = %v, want %v", got, wantWorker)
	}
	// RedirectURI defaults to empty: the callback derives its URL from the request's domain.
	wantCallback := maps.Clone(wantEnv)
	wantCallback["REDIRECT_URI"] = ""
	wantCallback["PIPEDRIVE_OAUTH_URL"] = "https://oauth.pipedrive.com"
	wantCallback["SUCCESS_URL"] = ""
	wantCallback["REQUIRE_STATE"] = "false"
	wantCallback["REFUSE_PLAINTEXT_TOKENS"] = "true"
	wantCallback["AWS_LAMBDA_LOG_LEVEL"] = "INFO"
	// The install caps' documented defaults (install.CapsFromEnv).
	wantCallback["INSTALL_ATTEMPTS_PER_IP"] = "30"
	wantCallback["INSTALL_ATTEMPTS_PER_STATE"] = "5"
	wantCallback["INSTALL_ATTEMPT_WINDOW_MINUTES"] = "10"
	if got := r.FunctionEnv("CallbackFunction"); !maps.Equal(got, wantCallback) {
		t.Errorf("FunctionEnv(CallbackFunction) = %v, want %v", got, wantCallback)
	}
	if got := r.FunctionEnv("NoSuchFunction"); got != nil {
		t.Errorf("FunctionEnv(NoSuchFunction) = %v, want nil", got)
	}

	db := dynamodb.NewFromConfig(cfg)
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(r.TableName)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive = %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != dbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Errorf("DescribeTimeToLive = %+v, want ENABLED on expires_at", d)
	}
	pitr, err := db.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(r.TableName)})
	if err != nil {
		t.Fatalf("DescribeContinuousBackups = %v", err)
	}
	if d := pitr.ContinuousBackupsDescription; d == nil || d.PointInTimeRecoveryDescription == nil ||
		d.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus != dbtypes.PointInTimeRecoveryStatusEnabled {
		t.Errorf("point-in-time recovery = %+v, want ENABLED", d)
	}

	attrs, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(r.JobsQueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes(jobs) = %v", err)
	}
	if got := attrs.Attributes["VisibilityTimeout"]; got != "180" {
		t.Errorf("jobs VisibilityTimeout = %q, want 180", got)
	}
	if got := attrs.Attributes["MessageRetentionPeriod"]; got != "345600" {
		t.Errorf("jobs MessageRetentionPeriod = %q, want 345600", got)
	}
	if got := attrs.Attributes["QueueArn"]; got != r.JobsQueueARN {
		t.Errorf("jobs QueueArn = %q, want %q", got, r.JobsQueueARN)
	}
	var rp struct {
		DeadLetterTargetARN string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &rp); err != nil {
		t.Fatalf("jobs RedrivePolicy %q: %v", attrs.Attributes["RedrivePolicy"], err)
	}
	if rp.DeadLetterTargetARN != r.DeadLetterQueueARN {
		t.Errorf("jobs redrive target = %q, want %q", rp.DeadLetterTargetARN, r.DeadLetterQueueARN)
	}
}

func TestConditionalPut(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	ctx := ctxT(t)
	db := dynamodb.NewFromConfig(cfg)

	put := func(status string) error {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(r.TableName),
			Item: map[string]dbtypes.AttributeValue{
				r.TableKey: &dbtypes.AttributeValueMemberS{Value: "company#1#user#2"},
				"status":   &dbtypes.AttributeValueMemberS{Value: status},
			},
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": r.TableKey},
		})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("first conditional PutItem = %v, want nil", err)
	}
	var ccf *dbtypes.ConditionalCheckFailedException
	if err := put("second"); !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem = %v, want *ConditionalCheckFailedException", err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(r.TableName),
		Key:            map[string]dbtypes.AttributeValue{r.TableKey: &dbtypes.AttributeValueMemberS{Value: "company#1#user#2"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem = %v", err)
	}
	if s, ok := out.Item["status"].(*dbtypes.AttributeValueMemberS); !ok || s.Value != "first" {
		t.Errorf("item status after the failed put = %v, want first", out.Item["status"])
	}
}

func TestDueIndexQuery(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	ctx := ctxT(t)
	db := dynamodb.NewFromConfig(cfg)

	items := []struct {
		pk    string
		shard string // empty: not on the index (sparse)
		due   int64
	}{
		{"a", "3", 100},
		{"b", "3", 300},
		{"c", "3", 200},
		{"d", "3", 900}, // not due yet
		{"e", "4", 100}, // another shard
		{"f", "", 0},    // uninstalled: no due_shard, never on the index
	}
	for _, it := range items {
		item := map[string]dbtypes.AttributeValue{r.TableKey: &dbtypes.AttributeValueMemberS{Value: it.pk}}
		if it.shard != "" {
			item[r.DueIndexHashKey] = &dbtypes.AttributeValueMemberS{Value: it.shard}
			item[r.DueIndexRangeKey] = &dbtypes.AttributeValueMemberN{Value: strconv.FormatInt(it.due, 10)}
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(r.TableName), Item: item}); err != nil {
			t.Fatalf("PutItem(%s) = %v", it.pk, err)
		}
	}

	var got []string
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
		TableName:                aws.String(r.TableName),
		IndexName:                aws.String(r.DueIndex),
		KeyConditionExpression:   aws.String("#shard = :shard AND #due <= :now"),
		ExpressionAttributeNames: map[string]string{"#shard": r.DueIndexHashKey, "#due": r.DueIndexRangeKey},
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{
			":shard": &dbtypes.AttributeValueMemberS{Value: "3"},
			":now":   &dbtypes.AttributeValueMemberN{Value: "500"},
		},
		Limit: aws.Int32(2), // force paging
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("Query(%s) = %v", r.DueIndex, err)
		}
		for _, it := range page.Items {
			got = append(got, it[r.TableKey].(*dbtypes.AttributeValueMemberS).Value)
		}
	}
	if want := []string{"a", "c", "b"}; !slices.Equal(got, want) {
		t.Errorf("Query(%s, shard 3, due <= 500) = %v, want %v", r.DueIndex, got, want)
	}
}

func TestSecretHoldsCredentials(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.SecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue(%s) = %v", r.SecretID, err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &got); err != nil {
		t.Fatalf("secret is not JSON: %v", err)
	}
	want := map[string]string{"client_id": testenv.ClientID, "client_secret": testenv.ClientSecret, "state_key": testenv.StateKey}
	if !maps.Equal(got, want) {
		t.Errorf("secret keys = %v, want the testenv credentials under client_id, client_secret, state_key", slices.Sorted(maps.Keys(got)))
	}
}

// TestRedriveToDeadLetterQueue receives a job maxReceiveCount times without deleting it; the
// next receive must find it gone from the jobs queue and in the dead-letter queue.
func TestRedriveToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	ctx := ctxT(t)
	q := sqs.NewFromConfig(cfg)

	sent, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.JobsQueueURL), MessageBody: aws.String(`{"job":"poison"}`)})
	if err != nil {
		t.Fatalf("SendMessage = %v", err)
	}
	// receive takes what is visible and, like a failing worker, puts it straight back. The
	// SDK drops ReceiveMessage's VisibilityTimeout when it is 0 (aws-sdk-go-v2 #1704), so
	// the message is released with ChangeMessageVisibility, which does send a 0.
	receive := func() []sqstypes.Message {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.JobsQueueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("ReceiveMessage(jobs) = %v", err)
		}
		for _, m := range out.Messages {
			if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(r.JobsQueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
			}); err != nil {
				t.Fatalf("ChangeMessageVisibility(0) = %v", err)
			}
		}
		return out.Messages
	}
	for i := 1; i <= r.MaxReceiveCount; i++ {
		msgs := receive()
		if len(msgs) != 1 || aws.ToString(msgs[0].MessageId) != aws.ToString(sent.MessageId) {
			t.Fatalf("receive %d of %d got %d messages, want the sent one", i, r.MaxReceiveCount, len(msgs))
		}
	}
	if msgs := receive(); len(msgs) != 0 {
		t.Fatalf("receive %d got %d messages, want 0 (moved to the dead-letter queue)", r.MaxReceiveCount+1, len(msgs))
	}
	dead := testenv.ReceiveAll(t, cfg, r.DeadLetterQueueURL, 1, 5*time.Second)
	if len(dead) != 1 || aws.ToString(dead[0].Body) != `{"job":"poison"}` {
		t.Fatalf("dead-letter queue holds %d messages, want the poison job", len(dead))
	}
}

func TestAlertsTopicDelivers(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	r := testenv.Provision(t)
	inbox := testenv.SubscribeAlerts(t, cfg, r.AlertsTopicARN)
	_, err := sns.NewFromConfig(cfg).Publish(ctxT(t), &sns.PublishInput{
		TopicArn: aws.String(r.AlertsTopicARN),
		Subject:  aws.String("refresh failed"),
		Message:  aws.String(`{"company_id":1}`),
	})
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	got := inbox.Wait(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].Subject != "refresh failed" || got[0].Message != `{"company_id":1}` {
		t.Errorf("alerts = %+v, want one with subject %q", got, "refresh failed")
	}
}

// TestProvisionAgain is the local stack's case: a second Provision with the same names
// reuses everything, updates the secret, and keeps its state key when none is given.
func TestProvisionAgain(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	ctx := ctxT(t)
	names := infra.NamesWithPrefix(testenv.Prefix(t))
	first, err := infra.Provision(ctx, cfg, names, testenv.Credentials())
	if err != nil {
		t.Fatalf("first Provision = %v", err)
	}
	t.Cleanup(func() { _ = first.Teardown(context.Background(), cfg) })

	begin := time.Now()
	rotated := infra.ClientCredentials{ClientID: testenv.ClientID, ClientSecret: "rotated-secret"}
	second, err := infra.Provision(ctx, cfg, names, rotated)
	if err != nil {
		t.Fatalf("second Provision = %v", err)
	}
	t.Logf("Provision over existing resources took %v", time.Since(begin).Round(time.Millisecond))
	if first.TableName != second.TableName || first.SecretID != second.SecretID || first.JobsQueueURL != second.JobsQueueURL ||
		first.DeadLetterQueueARN != second.DeadLetterQueueARN || first.AlertsTopicARN != second.AlertsTopicARN {
		t.Errorf("second Provision = %+v, want the resources of the first, %+v", second, first)
	}

	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(second.SecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue = %v", err)
	}
	var got infra.ClientCredentials
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &got); err != nil {
		t.Fatalf("secret is not JSON: %v", err)
	}
	if got.ClientSecret != "rotated-secret" || got.StateKey != testenv.StateKey {
		t.Errorf("secret after re-provision has client secret rotated=%v and state key kept=%v, want both true",
			got.ClientSecret == "rotated-secret", got.StateKey == testenv.StateKey)
	}
}

func TestProvisionGeneratesStateKey(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	ctx := ctxT(t)
	r, err := infra.Provision(ctx, cfg, infra.NamesWithPrefix(testenv.Prefix(t)),
		infra.ClientCredentials{ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatalf("Provision without state key = %v", err)
	}
	t.Cleanup(func() { _ = r.Teardown(context.Background(), cfg) })
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.SecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue = %v", err)
	}
	var got infra.ClientCredentials
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &got); err != nil {
		t.Fatalf("secret is not JSON: %v", err)
	}
	if len(got.StateKey) != 64 {
		t.Errorf("generated state key has %d characters, want 64 (PasswordLength)", len(got.StateKey))
	}
	for _, c := range got.StateKey {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			t.Errorf("generated state key contains %q, want letters and digits only (ExcludePunctuation)", c)
			break
		}
	}
}

func TestProvisionRefusesMismatchedTable(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	ctx := ctxT(t)
	names := infra.NamesWithPrefix(testenv.Prefix(t))
	db := dynamodb.NewFromConfig(cfg)
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(names.Table),
		BillingMode:          dbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: dbtypes.ScalarAttributeTypeS}},
		KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: dbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable(old schema) = %v", err)
	}
	t.Cleanup(func() {
		_ = (&infra.Resources{TableName: names.Table}).Teardown(context.Background(), cfg)
		_ = (&infra.Resources{SecretID: names.Secret}).Teardown(context.Background(), cfg)
	})
	if _, err := infra.Provision(ctx, cfg, names, testenv.Credentials()); !errors.Is(err, infra.ErrMismatch) {
		t.Errorf("Provision over a table with another key schema = %v, want ErrMismatch", err)
	}
}

func TestProvisionRejectsInvalidNames(t *testing.T) {
	// No AWS call may happen: the zero configuration has no endpoint or credentials.
	_, err := infra.Provision(context.Background(), aws.Config{}, infra.NamesWithPrefix("bad name "), testenv.Credentials())
	if !errors.Is(err, infra.ErrInvalidName) {
		t.Errorf("Provision(bad names) = %v, want ErrInvalidName", err)
	}
}

func TestTeardown(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	ctx := ctxT(t)
	r, err := infra.Provision(ctx, cfg, infra.NamesWithPrefix(testenv.Prefix(t)), testenv.Credentials())
	if err != nil {
		t.Fatalf("Provision = %v", err)
	}
	if err := r.Teardown(ctx, cfg); err != nil {
		t.Fatalf("Teardown = %v", err)
	}

	var noTable *dbtypes.ResourceNotFoundException
	if _, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(r.TableName)}); !errors.As(err, &noTable) {
		t.Errorf("DescribeTable after Teardown = %v, want ResourceNotFoundException", err)
	}
	var noQueue *sqstypes.QueueDoesNotExist
	for _, url := range []string{r.JobsQueueURL, r.DeadLetterQueueURL} {
		if _, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)}); !errors.As(err, &noQueue) {
			t.Errorf("GetQueueAttributes(%s) after Teardown = %v, want QueueDoesNotExist", url, err)
		}
	}
	if _, err := sns.NewFromConfig(cfg).GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(r.AlertsTopicARN)}); err == nil {
		t.Errorf("GetTopicAttributes after Teardown = nil error, want not found")
	}
	var noSecret *smtypes.ResourceNotFoundException
	if _, err := secretsmanager.NewFromConfig(cfg).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(r.SecretID)}); !errors.As(err, &noSecret) {
		t.Errorf("DescribeSecret after Teardown = %v, want ResourceNotFoundException", err)
	}
	if err := r.Teardown(ctx, cfg); err != nil {
		t.Errorf("second Teardown = %v, want nil (already gone is fine)", err)
	}
}
