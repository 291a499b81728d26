// Package infra turns the managed resources of template.yaml (TokensTable, JobsQueue,
// JobsDeadLetterQueue, AlertsTopic, ClientSecret, TokensKey) into AWS SDK calls, so that the test
// harness, the local stack and SAM share one definition of them.
//
// Parse reads a template; Provision creates the resources under chosen names (against moto
// or a real account) and returns their identifiers; Teardown removes them.
package infra

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// ErrMismatch reports that a resource of the wanted name already exists but differs from the
// template (another key schema, another TTL attribute, other queue attributes). Provision
// reuses existing resources only when they match.
var ErrMismatch = errors.New("infra: existing resource differs from the template")

// ErrInvalidName reports a resource name AWS would reject.
var ErrInvalidName = errors.New("infra: invalid resource name")

// tableActiveTimeout bounds the wait for a new table to become ACTIVE.
const tableActiveTimeout = 10 * time.Minute

// Names are the physical names of the managed resources.
type Names struct {
	Table           string
	Secret          string
	JobsQueue       string
	DeadLetterQueue string
	AlertsTopic     string
	// TokensKey is the alias of the tokens key, without "alias/" (a key has no name; the
	// alias finds it again on the next Provision).
	TokensKey string
}

// NamesWithPrefix returns the names a stack called prefix uses: prefix+"tokens",
// prefix+"client-secret", prefix+"jobs", prefix+"jobs-dlq", prefix+"alerts" and the key alias
// prefix+"tokens-key".
func NamesWithPrefix(prefix string) Names {
	return Names{
		Table:           prefix + "tokens",
		Secret:          prefix + "client-secret",
		JobsQueue:       prefix + "jobs",
		DeadLetterQueue: prefix + "jobs-dlq",
		AlertsTopic:     prefix + "alerts",
		TokensKey:       prefix + "tokens-key",
	}
}

var (
	tableNameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	queueNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	topicNameRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	secretNameRE = regexp.MustCompile(`^[A-Za-z0-9/_+=.@-]{1,512}$`)
	// KMS alias names after "alias/"; "aws/" is reserved for AWS-managed keys.
	keyAliasRE = regexp.MustCompile(`^[A-Za-z0-9/_-]{1,250}$`)
)

// Validate reports, wrapping ErrInvalidName, the first name AWS would reject (length and
// characters as documented for each service).
func (n Names) Validate() error {
	checks := []struct {
		what, name string
		re         *regexp.Regexp
	}{
		{"table", n.Table, tableNameRE},
		{"secret", n.Secret, secretNameRE},
		{"jobs queue", n.JobsQueue, queueNameRE},
		{"dead-letter queue", n.DeadLetterQueue, queueNameRE},
		{"alerts topic", n.AlertsTopic, topicNameRE},
		{"tokens key alias", n.TokensKey, keyAliasRE},
	}
	for _, c := range checks {
		if !c.re.MatchString(c.name) {
			return fmt.Errorf("%w: %s %q (want %s)", ErrInvalidName, c.what, c.name, c.re)
		}
	}
	if strings.HasPrefix(n.TokensKey, "aws/") {
		return fmt.Errorf("%w: tokens key alias %q (aws/ is reserved)", ErrInvalidName, n.TokensKey)
	}
	if n.JobsQueue == n.DeadLetterQueue {
		return fmt.Errorf("%w: jobs queue and dead-letter queue are both %q", ErrInvalidName, n.JobsQueue)
	}
	return nil
}

// ClientCredentials are the Pipedrive app credentials and the OAuth state signing key that
// Provision stores in the client secret as {"client_id","client_secret","state_key"}.
// String, GoString and LogValue redact the secret parts.
type ClientCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	StateKey     string `json:"state_key"`
}

// String shows the client ID only.
func (c ClientCredentials) String() string {
	return fmt.Sprintf("ClientCredentials{ClientID: %q, ClientSecret: [redacted], StateKey: [redacted]}", c.ClientID)
}

// GoString is String, so that %#v does not print the secret either.
func (c ClientCredentials) GoString() string { return c.String() }

// LogValue logs the client ID only.
func (c ClientCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", c.ClientID))
}

func (c ClientCredentials) secretString() (string, error) {
	if c.ClientID == "" || c.ClientSecret == "" || c.StateKey == "" {
		return "", errors.New("client credentials: client ID, client secret and state key are all required")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("client credentials: %w", err)
	}
	return string(b), nil
}

// Resources identifies one provisioned set of the managed resources.
type Resources struct {
	TableName          string `json:"table_name"`
	SecretID           string `json:"secret_id"` // the secret's ARN
	JobsQueueURL       string `json:"jobs_queue_url"`
	JobsQueueARN       string `json:"jobs_queue_arn"`
	DeadLetterQueueURL string `json:"dead_letter_queue_url"`
	DeadLetterQueueARN string `json:"dead_letter_queue_arn"`
	AlertsTopicARN     string `json:"alerts_topic_arn"`
	// TokensKeyID and TokensKeyARN identify the KMS key that seals the tokens (!Ref and
	// !GetAtt .Arn of TokensKey); TokensKeyAlias is its alias ("alias/…").
	TokensKeyID    string `json:"tokens_key_id"`
	TokensKeyARN   string `json:"tokens_key_arn"`
	TokensKeyAlias string `json:"tokens_key_alias"`
	// MaxReceiveCount is how many receives the jobs queue allows before dead-lettering.
	MaxReceiveCount int `json:"max_receive_count"`
	// JobsVisibilityTimeout is the jobs queue's visibility timeout (nanoseconds in JSON).
	JobsVisibilityTimeout time.Duration `json:"jobs_visibility_timeout"`
	// TableKey is the table's partition key attribute.
	TableKey string `json:"table_key"`
	// TTLAttribute is the attribute DynamoDB expires items by; empty when TTL is off.
	TTLAttribute string `json:"ttl_attribute"`
	// DueIndex is the sparse GSI of installations due a refresh, keyed by DueIndexHashKey
	// (the shard) and DueIndexRangeKey (when the refresh is due).
	DueIndex         string `json:"due_index"`
	DueIndexHashKey  string `json:"due_index_hash_key"`
	DueIndexRangeKey string `json:"due_index_range_key"`
	// GlobalEnv holds the variables of the template's Globals.Function.Environment that
	// refer to these resources, with their values (TOKENS_TABLE → table name, …), plus the
	// template's literal variables.
	GlobalEnv map[string]string `json:"function_env"`
	// FunctionEnvs holds each function's environment as deployed with the parameters'
	// defaults, by logical ID; see FunctionEnv.
	FunctionEnvs map[string]map[string]string `json:"function_envs"`
}

// FunctionEnv returns the environment the template gives the function logicalID
// (ApiCallFunction, …): Globals.Function.Environment overlaid with the function's own
// Environment.Variables, each !Ref resolved to these resources or to the parameter's
// default. Variables taken from a parameter without a default are left out: they are the
// caller's. Nil for a function the template does not define. The map is a
// copy.
func (r *Resources) FunctionEnv(logicalID string) map[string]string {
	return maps.Clone(r.FunctionEnvs[logicalID])
}

// Env returns a copy of GlobalEnv: TOKENS_TABLE, CLIENT_SECRET_ID, JOBS_QUEUE_URL,
// ALERTS_TOPIC_ARN and whatever else the template's Globals define from these resources.
// Variables the template takes from parameters (PIPEDRIVE_OAUTH_URL, …) are not included.
func (r *Resources) Env() map[string]string {
	return maps.Clone(r.GlobalEnv)
}

// Ref returns what CloudFormation's !Ref yields for the managed resource with the given
// logical ID: the table name, the secret ARN, the queue URL or the topic ARN.
func (r *Resources) Ref(logicalID string) (string, bool) {
	switch logicalID {
	case TokensTableID:
		return r.TableName, true
	case ClientSecretID:
		return r.SecretID, true
	case JobsQueueID:
		return r.JobsQueueURL, true
	case DeadLetterQueueID:
		return r.DeadLetterQueueURL, true
	case AlertsTopicID:
		return r.AlertsTopicARN, true
	case TokensKeyID:
		return r.TokensKeyID, true
	}
	return "", false
}

// GetAtt returns what CloudFormation's !GetAtt logicalID.attr yields for the managed
// queues (Arn) and the topic (TopicName); false for anything else.
func (r *Resources) GetAtt(logicalID, attr string) (string, bool) {
	switch {
	case logicalID == JobsQueueID && attr == "Arn":
		return r.JobsQueueARN, true
	case logicalID == DeadLetterQueueID && attr == "Arn":
		return r.DeadLetterQueueARN, true
	case logicalID == AlertsTopicID && attr == "TopicArn":
		return r.AlertsTopicARN, true
	case logicalID == TokensKeyID && attr == "Arn":
		return r.TokensKeyARN, true
	}
	return "", false
}

// Provision creates the resources of the embedded template.yaml under names; see
// Spec.Provision.
func Provision(ctx context.Context, cfg aws.Config, names Names, creds ClientCredentials) (*Resources, error) {
	spec, err := Parse(pdkit.Template)
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	return spec.Provision(ctx, cfg, names, creds)
}

// Provision creates the table (waiting until it is ACTIVE, then enabling TTL and
// point-in-time recovery as the template says), the dead-letter queue, the jobs queue with
// its redrive policy, the topic and the secret holding creds. An empty creds.StateKey is
// generated as the template's GenerateSecretString would.
//
// Resources that already exist are reused when they match the template (otherwise the
// error wraps ErrMismatch), and an existing secret is updated to creds, keeping its
// state_key when creds.StateKey is empty; so the local stack can run Provision on every
// start. Provision does not delete anything on failure.
func (s *Spec) Provision(ctx context.Context, cfg aws.Config, names Names, creds ClientCredentials) (*Resources, error) {
	if err := names.Validate(); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	due, ok := s.Table.Index(DueIndexName)
	if !ok || len(due.KeySchema) != 2 || len(s.Table.KeySchema) == 0 {
		return nil, fmt.Errorf("provision: table spec lacks a key schema or the %s index with two keys", DueIndexName)
	}
	r := &Resources{
		TableName:        names.Table,
		MaxReceiveCount:  s.JobsQueue.MaxReceiveCount,
		TableKey:         aws.ToString(s.Table.KeySchema[0].AttributeName),
		TTLAttribute:     s.Table.TTLAttribute,
		DueIndex:         DueIndexName,
		DueIndexHashKey:  aws.ToString(due.KeySchema[0].AttributeName),
		DueIndexRangeKey: aws.ToString(due.KeySchema[1].AttributeName),
	}
	if v, ok := s.JobsQueue.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)]; ok {
		secs, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("provision: jobs queue visibility timeout %q: %w", v, err)
		}
		r.JobsVisibilityTimeout = time.Duration(secs) * time.Second
	}

	// The five groups are independent; on AWS the table dominates the time taken.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return s.Table.provision(gctx, dynamodb.NewFromConfig(cfg), names.Table)
	})
	g.Go(func() error {
		client := sqs.NewFromConfig(cfg)
		in, err := s.DeadLetterQueue.CreateQueueInput(names.DeadLetterQueue, "")
		if err != nil {
			return err
		}
		if r.DeadLetterQueueURL, r.DeadLetterQueueARN, err = createQueue(gctx, client, in); err != nil {
			return err
		}
		if in, err = s.JobsQueue.CreateQueueInput(names.JobsQueue, r.DeadLetterQueueARN); err != nil {
			return err
		}
		r.JobsQueueURL, r.JobsQueueARN, err = createQueue(gctx, client, in)
		return err
	})
	g.Go(func() error {
		out, err := sns.NewFromConfig(cfg).CreateTopic(gctx, s.AlertsTopic.CreateTopicInput(names.AlertsTopic))
		if err != nil {
			return fmt.Errorf("create topic %s: %w", names.AlertsTopic, err)
		}
		r.AlertsTopicARN = aws.ToString(out.TopicArn)
		return nil
	})
	g.Go(func() error {
		var err error
		r.SecretID, err = s.ClientSecret.provision(gctx, secretsmanager.NewFromConfig(cfg), names.Secret, creds)
		return err
	})
	g.Go(func() error {
		var err error
		r.TokensKeyAlias = "alias/" + names.TokensKey
		r.TokensKeyID, r.TokensKeyARN, err = s.TokensKey.provision(gctx, kms.NewFromConfig(cfg), r.TokensKeyAlias)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}

	r.GlobalEnv = maps.Clone(s.FunctionEnvLiterals)
	if r.GlobalEnv == nil {
		r.GlobalEnv = map[string]string{}
	}
	for name, id := range s.FunctionEnvRefs {
		r.GlobalEnv[name], _ = r.Ref(id)
	}
	r.FunctionEnvs = map[string]map[string]string{}
	scope := s.Scope(func(name string) (string, bool) {
		switch {
		case strings.Contains(name, "."):
			return "", false // !GetAtt: functions get only !Ref of the managed resources
		case name == "AWS::Region":
			return cfg.Region, true
		case name == HTTPAPIID:
			// The gateway has no id outside AWS: URLs built from it name a host that does not
			// exist, and the local stack overrides the variables that carry one (WEBHOOK_URL).
			return LocalHTTPAPIID, true
		}
		return r.Ref(name)
	})
	for id := range s.Functions {
		env, err := s.FunctionEnv(id, scope)
		if err != nil {
			return nil, fmt.Errorf("provision: %w", err)
		}
		r.FunctionEnvs[id] = env
	}
	return r, nil
}

func (t Table) provision(ctx context.Context, db *dynamodb.Client, name string) error {
	_, err := db.CreateTable(ctx, t.CreateTableInput(name))
	var inUse *dbtypes.ResourceInUseException
	existed := errors.As(err, &inUse)
	if err != nil && !existed {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 5*time.Second
	})
	desc, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, tableActiveTimeout)
	if err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", name, err)
	}
	if existed {
		if err := t.matches(desc.Table); err != nil {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}

	if t.TTLAttribute != "" {
		out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("table %s: describe TTL: %w", name, err)
		}
		d := out.TimeToLiveDescription
		switch {
		case d != nil && (d.TimeToLiveStatus == dbtypes.TimeToLiveStatusEnabled || d.TimeToLiveStatus == dbtypes.TimeToLiveStatusEnabling):
			// DynamoDB refuses to enable TTL twice, and a different attribute cannot be
			// switched to without disabling first (which takes an hour on AWS).
			if got := aws.ToString(d.AttributeName); got != t.TTLAttribute {
				return fmt.Errorf("table %s: %w: TTL attribute is %q, want %q", name, ErrMismatch, got, t.TTLAttribute)
			}
		default:
			_, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
				TableName: aws.String(name),
				TimeToLiveSpecification: &dbtypes.TimeToLiveSpecification{
					AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true),
				},
			})
			if err != nil {
				return fmt.Errorf("table %s: enable TTL: %w", name, err)
			}
		}
	}
	if t.PointInTimeRecovery {
		_, err := db.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
			TableName: aws.String(name),
			PointInTimeRecoverySpecification: &dbtypes.PointInTimeRecoverySpecification{
				PointInTimeRecoveryEnabled: aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("table %s: enable point-in-time recovery: %w", name, err)
		}
	}
	return nil
}

// matches checks that an existing table has the template's key schema and indexes.
func (t Table) matches(d *dbtypes.TableDescription) error {
	if d == nil {
		return errors.New("describe table: empty description")
	}
	if !sameKeys(d.KeySchema, t.KeySchema) {
		return fmt.Errorf("%w: key schema %s, want %s", ErrMismatch, keysString(d.KeySchema), keysString(t.KeySchema))
	}
	for _, want := range t.GlobalSecondaryIndexes {
		i := slices.IndexFunc(d.GlobalSecondaryIndexes, func(g dbtypes.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(g.IndexName) == aws.ToString(want.IndexName)
		})
		if i < 0 {
			return fmt.Errorf("%w: index %s is missing", ErrMismatch, aws.ToString(want.IndexName))
		}
		got := d.GlobalSecondaryIndexes[i]
		if !sameKeys(got.KeySchema, want.KeySchema) {
			return fmt.Errorf("%w: index %s has key schema %s, want %s", ErrMismatch,
				aws.ToString(want.IndexName), keysString(got.KeySchema), keysString(want.KeySchema))
		}
		if got.Projection == nil || got.Projection.ProjectionType != want.Projection.ProjectionType {
			return fmt.Errorf("%w: index %s has another projection, want %s", ErrMismatch,
				aws.ToString(want.IndexName), want.Projection.ProjectionType)
		}
	}
	return nil
}

func sameKeys(a, b []dbtypes.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y dbtypes.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}

func keysString(ks []dbtypes.KeySchemaElement) string {
	s := "["
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return s + "]"
}

// createQueue creates a queue, or finds it when one with identical attributes exists, and
// returns its URL and ARN.
func createQueue(ctx context.Context, client *sqs.Client, in *sqs.CreateQueueInput) (url, arn string, err error) {
	name := aws.ToString(in.QueueName)
	out, err := client.CreateQueue(ctx, in)
	if err != nil {
		var exists *sqstypes.QueueNameExists
		if errors.As(err, &exists) {
			return "", "", fmt.Errorf("create queue %s: %w: %w", name, ErrMismatch, err)
		}
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	url = aws.ToString(out.QueueUrl)
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: get ARN: %w", name, err)
	}
	arn = attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", "", fmt.Errorf("queue %s: get ARN: no QueueArn attribute", name)
	}
	return url, arn, nil
}

// provision creates the secret, or brings an existing one up to date, and returns its ARN.
func (s Secret) provision(ctx context.Context, sm *secretsmanager.Client, name string, creds ClientCredentials) (string, error) {
	generated := creds.StateKey == ""
	if generated {
		key, err := s.generate()
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
		creds.StateKey = key
	}
	in, err := s.CreateSecretInput(name, creds)
	if err != nil {
		return "", err
	}
	out, err := sm.CreateSecret(ctx, in)
	if err == nil {
		return aws.ToString(out.ARN), nil
	}
	var exists *smtypes.ResourceExistsException
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("create secret %s: %w", name, err)
	}

	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("secret %s: read existing: %w", name, err)
	}
	var old ClientCredentials
	// A value that is not our JSON is simply replaced: nothing in it can be kept.
	if json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &old) == nil && generated && old.StateKey != "" {
		creds.StateKey = old.StateKey
	}
	if old == creds {
		return aws.ToString(cur.ARN), nil
	}
	body, err := creds.secretString()
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(body),
	})
	if err != nil {
		return "", fmt.Errorf("secret %s: update value: %w", name, err)
	}
	return aws.ToString(put.ARN), nil
}

const (
	alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// punctuation is the set Secrets Manager's ExcludePunctuation refers to.
	punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// generate returns a random string like GenerateSecretString would put under
// GenerateStringKey.
func (s Secret) generate() (string, error) {
	chars := alphanumeric
	if !s.ExcludePunctuation {
		chars += punctuation
	}
	out := make([]byte, s.PasswordLength)
	limit := big.NewInt(int64(len(chars)))
	for i := range out {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", fmt.Errorf("generate state key: %w", err)
		}
		out[i] = chars[n.Int64()]
	}
	return string(out), nil
}

// provision finds the key by its alias, or creates it (with rotation as the template says)
// and the alias, and returns its id and ARN.
func (k Key) provision(ctx context.Context, client *kms.Client, alias string) (id, arn string, err error) {
	found, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	var missing *kmstypes.NotFoundException
	switch {
	case err == nil && found.KeyMetadata != nil:
		md := found.KeyMetadata
		if md.KeyState != kmstypes.KeyStateEnabled || md.KeySpec != k.KeySpec {
			return "", "", fmt.Errorf("key %s: %w: state %s, spec %s", alias, ErrMismatch, md.KeyState, md.KeySpec)
		}
		return aws.ToString(md.KeyId), aws.ToString(md.Arn), nil
	case err != nil && !errors.As(err, &missing):
		return "", "", fmt.Errorf("key %s: describe: %w", alias, err)
	}
	out, err := client.CreateKey(ctx, k.CreateKeyInput())
	if err != nil {
		return "", "", fmt.Errorf("create key %s: %w", alias, err)
	}
	id, arn = aws.ToString(out.KeyMetadata.KeyId), aws.ToString(out.KeyMetadata.Arn)
	if k.EnableKeyRotation {
		if _, err := client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)}); err != nil {
			return "", "", fmt.Errorf("key %s: enable rotation: %w", alias, err)
		}
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(id)}); err != nil {
		return "", "", fmt.Errorf("key %s: create alias: %w", alias, err)
	}
	return id, arn, nil
}

// Teardown deletes every resource r names, best effort: it tries them all, treats "already
// gone" as success and returns the other failures joined. The tokens key is scheduled for
// deletion after KMS's shortest window (7 days) and loses its alias.
func (r *Resources) Teardown(ctx context.Context, cfg aws.Config) error {
	var errs []error
	if r.TableName != "" {
		_, err := dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(r.TableName)})
		var gone *dbtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &gone) {
			errs = append(errs, fmt.Errorf("delete table %s: %w", r.TableName, err))
		}
	}
	q := sqs.NewFromConfig(cfg)
	for _, url := range []string{r.JobsQueueURL, r.DeadLetterQueueURL} {
		if url == "" {
			continue
		}
		_, err := q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
		var gone *sqstypes.QueueDoesNotExist
		if err != nil && !errors.As(err, &gone) {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", url, err))
		}
	}
	if r.AlertsTopicARN != "" {
		_, err := sns.NewFromConfig(cfg).DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(r.AlertsTopicARN)})
		var gone *snstypes.NotFoundException
		if err != nil && !errors.As(err, &gone) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", r.AlertsTopicARN, err))
		}
	}
	if r.TokensKeyID != "" {
		client := kms.NewFromConfig(cfg)
		var gone *kmstypes.NotFoundException
		if r.TokensKeyAlias != "" {
			if _, err := client.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(r.TokensKeyAlias)}); err != nil && !errors.As(err, &gone) {
				errs = append(errs, fmt.Errorf("delete key alias %s: %w", r.TokensKeyAlias, err))
			}
		}
		_, err := client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(r.TokensKeyID), PendingWindowInDays: aws.Int32(7)})
		var pending *kmstypes.KMSInvalidStateException
		if err != nil && !errors.As(err, &gone) && !errors.As(err, &pending) {
			errs = append(errs, fmt.Errorf("delete key %s: %w", r.TokensKeyID, err))
		}
	}
	if r.SecretID != "" {
		_, err := secretsmanager.NewFromConfig(cfg).DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
			SecretId: aws.String(r.SecretID), ForceDeleteWithoutRecovery: aws.Bool(true),
		})
		var gone *smtypes.ResourceNotFoundException
		if err != nil && !errors.As(err, &gone) {
			errs = append(errs, fmt.Errorf("delete secret %s: %w", r.SecretID, err))
		}
	}
	return errors.Join(errs...)
}
