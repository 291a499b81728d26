package infra

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Logical IDs of the resources infra reads from template.yaml. Renaming one in the template
// without renaming it here is a parse error.
const (
	TokensTableID     = "TokensTable"
	ClientSecretID    = "ClientSecret"
	DeadLetterQueueID = "JobsDeadLetterQueue"
	JobsQueueID       = "JobsQueue"
	AlertsTopicID     = "AlertsTopic"
	TokensKeyID       = "TokensKey"
)

// HTTPAPIID is the template's HTTP API; LocalHTTPAPIID stands for its id outside AWS.
const (
	HTTPAPIID      = "HttpApi"
	LocalHTTPAPIID = "local-http-api"
)

var managedIDs = []string{TokensTableID, ClientSecretID, DeadLetterQueueID, JobsQueueID, AlertsTopicID, TokensKeyID}

func isManaged(id string) bool { return slices.Contains(managedIDs, id) }

// DueIndexName is the sparse GSI the refresher queries for installations due a refresh; the
// template must define it.
const DueIndexName = "refresh-due"

// Spec is what infra understood of template.yaml: the managed resources as SDK-shaped values,
// before any name is chosen, and the functions' settings. Build one with Parse.
type Spec struct {
	Table           Table
	DeadLetterQueue Queue
	JobsQueue       Queue
	AlertsTopic     Topic
	ClientSecret    Secret
	TokensKey       Key
	// FunctionEnvRefs maps each variable of Globals.Function.Environment whose value is
	// !Ref of a managed resource to that resource's logical ID (TOKENS_TABLE → TokensTable).
	FunctionEnvRefs map[string]string
	// FunctionEnvLiterals holds the variables of Globals.Function.Environment written as
	// plain strings. Variables that reference parameters are in neither map.
	FunctionEnvLiterals map[string]string
	// Functions are the template's AWS::Serverless::Function resources by logical ID.
	Functions map[string]Function
	// Parameters, Conditions and Mappings are the template's, for resolving values.
	Parameters map[string]Parameter
	Conditions map[string]Value
	Mappings   map[string]map[string]map[string]Value
}

// Parameter is one of the template's Parameters.
type Parameter struct {
	Type string
	// Default is nil for a parameter without one (its value comes only from a deployment).
	Default *string
}

// Table is the TokensTable definition.
type Table struct {
	BillingMode            dbtypes.BillingMode
	AttributeDefinitions   []dbtypes.AttributeDefinition
	KeySchema              []dbtypes.KeySchemaElement
	GlobalSecondaryIndexes []dbtypes.GlobalSecondaryIndex
	SSEEnabled             bool
	PointInTimeRecovery    bool
	// TTLAttribute is the attribute DynamoDB expires items by; empty when TTL is off.
	TTLAttribute string
}

// Queue is an SQS queue definition.
type Queue struct {
	// Attributes are CreateQueue attributes (VisibilityTimeout, …) without RedrivePolicy.
	Attributes map[string]string
	// DeadLetterTarget is the logical ID named by RedrivePolicy.deadLetterTargetArn, or empty.
	DeadLetterTarget string
	// MaxReceiveCount is RedrivePolicy.maxReceiveCount (a parameter's default when it is a
	// !Ref), or 0 without a redrive policy.
	MaxReceiveCount int
}

// Key is the TokensKey definition: the customer-managed KMS key that seals the tokens.
type Key struct {
	Description       string
	EnableKeyRotation bool
	// KeySpec and KeyUsage are KMS's (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT): the only ones
	// envelope encryption with GenerateDataKey works with.
	KeySpec  kmstypes.KeySpec
	KeyUsage kmstypes.KeyUsageType
	// HasPolicy reports a KeyPolicy in the template; it is not applied outside CloudFormation.
	HasPolicy bool
}

// Topic is an SNS topic definition.
type Topic struct {
	// Attributes are CreateTopic attributes (KmsMasterKeyId, …).
	Attributes map[string]string
}

// Secret is the ClientSecret definition.
type Secret struct {
	Description string
	// Keys are the JSON keys of the secret: those of SecretStringTemplate plus
	// GenerateStringKey, sorted.
	Keys []string
	// Template is SecretStringTemplate's fields: the value a fresh deploy holds besides the
	// generated key (client_id and client_secret still the placeholder).
	Template map[string]string
	// GenerateStringKey is the key CloudFormation fills with a random string.
	GenerateStringKey  string
	PasswordLength     int
	ExcludePunctuation bool
}

// Parse reads a SAM/CloudFormation template and extracts the managed resources and the
// functions' settings. Every key of those must be understood: an unknown key, a missing
// piece or a renamed resource is a *TemplateError, so that the harness never silently
// builds something other than what SAM deploys.
func Parse(tmpl []byte) (*Spec, error) {
	var t template
	if err := decodeStrict(tmpl, &t, ""); err != nil {
		return nil, err
	}
	if t.Resources == nil {
		return nil, errAt("(root)", "missing Resources")
	}
	s := &Spec{Conditions: t.Conditions, Mappings: t.Mappings, Parameters: map[string]Parameter{}}
	for name, p := range t.Parameters {
		s.Parameters[name] = Parameter{Type: string(p.Type), Default: (*string)(p.Default)}
	}
	rs := t.Resources

	props, path, err := managed(rs.TokensTable, TokensTableID, "AWS::DynamoDB::Table")
	if err != nil {
		return nil, err
	}
	if s.Table, err = parseTable(props, path); err != nil {
		return nil, err
	}
	dlq, path, err := managed(rs.JobsDeadLetterQueue, DeadLetterQueueID, "AWS::SQS::Queue")
	if err != nil {
		return nil, err
	}
	if s.DeadLetterQueue, err = s.parseQueue(dlq, path); err != nil {
		return nil, err
	}
	if s.DeadLetterQueue.DeadLetterTarget != "" {
		return nil, errAt(join(path, "RedrivePolicy"), "a redrive policy on the dead-letter queue is not supported")
	}
	jobs, path, err := managed(rs.JobsQueue, JobsQueueID, "AWS::SQS::Queue")
	if err != nil {
		return nil, err
	}
	if s.JobsQueue, err = s.parseQueue(jobs, path); err != nil {
		return nil, err
	}
	switch s.JobsQueue.DeadLetterTarget {
	case DeadLetterQueueID:
	case "":
		return nil, errAt(path, "missing RedrivePolicy (the jobs queue must dead-letter into %s)", DeadLetterQueueID)
	default:
		return nil, errAt(join(path, "RedrivePolicy.deadLetterTargetArn"), "want !GetAtt %s.Arn, got !GetAtt %s.Arn", DeadLetterQueueID, s.JobsQueue.DeadLetterTarget)
	}
	topic, _, err := managed(rs.AlertsTopic, AlertsTopicID, "AWS::SNS::Topic")
	if err != nil {
		return nil, err
	}
	s.AlertsTopic = Topic{Attributes: map[string]string{}}
	for key, v := range map[string]*text{"DisplayName": topic.DisplayName, "KmsMasterKeyId": topic.KmsMasterKeyId} {
		if v != nil {
			s.AlertsTopic.Attributes[key] = string(*v)
		}
	}
	key, path, err := managed(rs.TokensKey, TokensKeyID, "AWS::KMS::Key")
	if err != nil {
		return nil, err
	}
	if s.TokensKey, err = parseKey(key, path); err != nil {
		return nil, err
	}
	secret, path, err := managed(rs.ClientSecret, ClientSecretID, "AWS::SecretsManager::Secret")
	if err != nil {
		return nil, err
	}
	if s.ClientSecret, err = parseSecret(secret, path); err != nil {
		return nil, err
	}
	if err := s.parseFunctions(&t); err != nil {
		return nil, err
	}
	return s, nil
}

// managed checks a managed resource's presence and Type and returns its Properties and
// their path.
func managed[P any](r *resource[P], id, wantType string) (*P, string, error) {
	path := join("Resources", id)
	switch {
	case r == nil:
		return nil, "", errAt(path, "resource not found (renamed? internal/infra reads it by this logical ID)")
	case string(r.Type) != wantType:
		return nil, "", errAt(join(path, "Type"), "want %s, got %s", wantType, r.Type)
	case r.Properties == nil:
		return nil, "", errAt(path, "missing Properties")
	}
	return r.Properties, join(path, "Properties"), nil
}

func parseTable(p *tableProps, path string) (Table, error) {
	var t Table
	switch p.BillingMode {
	case "":
		return t, errAt(path, "missing BillingMode")
	// PROVISIONED would need ProvisionedThroughput, which infra does not translate.
	case text(dbtypes.BillingModePayPerRequest):
		t.BillingMode = dbtypes.BillingModePayPerRequest
	default:
		return t, errAt(join(path, "BillingMode"), "want %s, got %s", dbtypes.BillingModePayPerRequest, p.BillingMode)
	}

	if len(p.AttributeDefinitions) == 0 {
		return t, errAt(path, "missing AttributeDefinitions")
	}
	declared := map[string]bool{}
	for i, d := range p.AttributeDefinitions {
		at := index(join(path, "AttributeDefinitions"), i)
		switch {
		case d.AttributeName == "":
			return t, errAt(at, "missing AttributeName")
		case !slices.Contains(dbtypes.ScalarAttributeType("").Values(), dbtypes.ScalarAttributeType(d.AttributeType)):
			return t, errAt(join(at, "AttributeType"), "want S, N or B, got %q", d.AttributeType)
		case declared[string(d.AttributeName)]:
			return t, errAt(at, "attribute %q defined twice", d.AttributeName)
		}
		declared[string(d.AttributeName)] = true
		t.AttributeDefinitions = append(t.AttributeDefinitions, dbtypes.AttributeDefinition{
			AttributeName: aws.String(string(d.AttributeName)), AttributeType: dbtypes.ScalarAttributeType(d.AttributeType),
		})
	}

	used := map[string]bool{}
	var err error
	if t.KeySchema, err = parseKeySchema(p.KeySchema, path, declared, used); err != nil {
		return t, err
	}
	gsiPath := join(path, "GlobalSecondaryIndexes")
	if len(p.GlobalSecondaryIndexes) == 0 {
		return t, errAt(path, "missing GlobalSecondaryIndexes")
	}
	for i, g := range p.GlobalSecondaryIndexes {
		at := index(gsiPath, i)
		if g.IndexName == "" {
			return t, errAt(at, "missing IndexName")
		}
		if _, dup := t.Index(string(g.IndexName)); dup {
			return t, errAt(gsiPath, "index %q defined twice", g.IndexName)
		}
		gsi := dbtypes.GlobalSecondaryIndex{IndexName: aws.String(string(g.IndexName))}
		if gsi.KeySchema, err = parseKeySchema(g.KeySchema, at, declared, used); err != nil {
			return t, err
		}
		if g.Projection == nil {
			return t, errAt(at, "missing Projection")
		}
		typ := dbtypes.ProjectionType(g.Projection.ProjectionType)
		gsi.Projection = &dbtypes.Projection{ProjectionType: typ}
		switch typ {
		case dbtypes.ProjectionTypeKeysOnly, dbtypes.ProjectionTypeAll:
			if g.Projection.NonKeyAttributes != nil {
				return t, errAt(join(at, "Projection.NonKeyAttributes"), "only for ProjectionType INCLUDE")
			}
		case dbtypes.ProjectionTypeInclude:
			if len(g.Projection.NonKeyAttributes) == 0 {
				return t, errAt(join(at, "Projection"), "missing NonKeyAttributes")
			}
			for _, a := range g.Projection.NonKeyAttributes {
				gsi.Projection.NonKeyAttributes = append(gsi.Projection.NonKeyAttributes, string(a))
			}
		default:
			return t, errAt(join(at, "Projection.ProjectionType"), "want KEYS_ONLY, INCLUDE or ALL, got %q", typ)
		}
		t.GlobalSecondaryIndexes = append(t.GlobalSecondaryIndexes, gsi)
	}
	if _, ok := t.Index(DueIndexName); !ok {
		return t, errAt(gsiPath, "missing index %q (the refresher queries it)", DueIndexName)
	}
	// DynamoDB rejects attribute definitions that no key uses; say so before AWS does.
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		if !used[name] {
			return t, errAt(join(path, "AttributeDefinitions"), "attribute %q is defined but used by no key schema", name)
		}
	}

	if ttl := p.TimeToLiveSpecification; ttl != nil {
		at := join(path, "TimeToLiveSpecification")
		switch {
		case ttl.Enabled == nil:
			return t, errAt(at, "missing Enabled")
		case ttl.AttributeName == "":
			return t, errAt(at, "missing AttributeName")
		case bool(*ttl.Enabled):
			t.TTLAttribute = string(ttl.AttributeName)
		}
	}
	if sse := p.SSESpecification; sse != nil {
		if sse.SSEEnabled == nil {
			return t, errAt(join(path, "SSESpecification"), "missing SSEEnabled")
		}
		t.SSEEnabled = bool(*sse.SSEEnabled)
	}
	if pitr := p.PointInTimeRecoverySpecification; pitr != nil {
		if pitr.PointInTimeRecoveryEnabled == nil {
			return t, errAt(join(path, "PointInTimeRecoverySpecification"), "missing PointInTimeRecoveryEnabled")
		}
		t.PointInTimeRecovery = bool(*pitr.PointInTimeRecoveryEnabled)
	}
	return t, nil
}

// parseKeySchema reads the KeySchema under path: a HASH key and an optional RANGE key, each
// declared in AttributeDefinitions. It records the attributes it uses in used.
func parseKeySchema(elems []keyElement, path string, declared, used map[string]bool) ([]dbtypes.KeySchemaElement, error) {
	path = join(path, "KeySchema")
	switch {
	case len(elems) == 0:
		return nil, errAt(path, "empty or missing")
	case len(elems) > 2:
		return nil, errAt(path, "want a HASH key and at most one RANGE key, got %d keys", len(elems))
	}
	var ks []dbtypes.KeySchemaElement
	for i, e := range elems {
		at := index(path, i)
		want := dbtypes.KeyTypeHash
		if i == 1 {
			want = dbtypes.KeyTypeRange
		}
		switch {
		case e.AttributeName == "":
			return nil, errAt(at, "missing AttributeName")
		case e.KeyType != text(want):
			return nil, errAt(join(at, "KeyType"), "want %s, got %q", want, e.KeyType)
		case !declared[string(e.AttributeName)]:
			return nil, errAt(join(at, "AttributeName"), "attribute %q is not in AttributeDefinitions", e.AttributeName)
		}
		used[string(e.AttributeName)] = true
		ks = append(ks, dbtypes.KeySchemaElement{AttributeName: aws.String(string(e.AttributeName)), KeyType: want})
	}
	return ks, nil
}

func (s *Spec) parseQueue(p *queueProps, path string) (Queue, error) {
	q := Queue{Attributes: map[string]string{}}
	for key, v := range map[string]*integer{
		"VisibilityTimeout": p.VisibilityTimeout, "MessageRetentionPeriod": p.MessageRetentionPeriod,
		"DelaySeconds": p.DelaySeconds, "MaximumMessageSize": p.MaximumMessageSize,
		"ReceiveMessageWaitTimeSeconds": p.ReceiveMessageWaitTimeSeconds,
		"KmsDataKeyReusePeriodSeconds":  p.KmsDataKeyReusePeriodSeconds,
	} {
		if v != nil {
			q.Attributes[key] = strconv.Itoa(int(*v))
		}
	}
	if p.SqsManagedSseEnabled != nil {
		q.Attributes["SqsManagedSseEnabled"] = strconv.FormatBool(bool(*p.SqsManagedSseEnabled))
	}
	if p.KmsMasterKeyId != nil {
		q.Attributes["KmsMasterKeyId"] = string(*p.KmsMasterKeyId)
	}
	rp := p.RedrivePolicy
	if rp == nil {
		return q, nil
	}
	at := join(path, "RedrivePolicy")
	if rp.DeadLetterTargetArn == nil {
		return q, errAt(at, "missing deadLetterTargetArn")
	}
	res, attr, ok := rp.DeadLetterTargetArn.GetAttTarget()
	if !ok || attr != "Arn" {
		return q, errAt(join(at, "deadLetterTargetArn"), "want !GetAtt <Queue>.Arn, got %s", rp.DeadLetterTargetArn)
	}
	q.DeadLetterTarget = res
	if rp.MaxReceiveCount == nil {
		return q, errAt(at, "missing maxReceiveCount")
	}
	// A !Ref of a parameter counts at its default, the value a plain deployment gets.
	raw, err := s.Scope(nil).Resolve(*rp.MaxReceiveCount)
	if err != nil {
		return q, errAt(join(at, "maxReceiveCount"), "%v", err)
	}
	if q.MaxReceiveCount, err = strconv.Atoi(raw); err != nil {
		return q, errAt(join(at, "maxReceiveCount"), "want an integer, got %q", raw)
	}
	if q.MaxReceiveCount < 1 || q.MaxReceiveCount > 1000 {
		return q, errAt(join(at, "maxReceiveCount"), "want 1 to 1000, got %d", q.MaxReceiveCount)
	}
	return q, nil
}

func parseKey(p *keyProps, path string) (Key, error) {
	k := Key{
		Description: strings.TrimSpace(string(p.Description)),
		KeySpec:     kmstypes.KeySpecSymmetricDefault, KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt,
		HasPolicy: p.KeyPolicy.Kind != 0,
	}
	if p.EnableKeyRotation != nil {
		k.EnableKeyRotation = bool(*p.EnableKeyRotation)
	}
	if p.Enabled != nil && !bool(*p.Enabled) {
		return k, errAt(join(path, "Enabled"), "a disabled key cannot seal tokens")
	}
	if p.KeySpec != "" && kmstypes.KeySpec(p.KeySpec) != kmstypes.KeySpecSymmetricDefault {
		return k, errAt(join(path, "KeySpec"), "want %s (data keys need a symmetric key), got %q", kmstypes.KeySpecSymmetricDefault, p.KeySpec)
	}
	if p.KeyUsage != "" && kmstypes.KeyUsageType(p.KeyUsage) != kmstypes.KeyUsageTypeEncryptDecrypt {
		return k, errAt(join(path, "KeyUsage"), "want %s, got %q", kmstypes.KeyUsageTypeEncryptDecrypt, p.KeyUsage)
	}
	if p.PendingWindowInDays != nil && (*p.PendingWindowInDays < 7 || *p.PendingWindowInDays > 30) {
		return k, errAt(join(path, "PendingWindowInDays"), "want 7 to 30, got %d", *p.PendingWindowInDays)
	}
	return k, nil
}

// CreateKeyInput returns the CreateKey request for the tokens key. The template's key policy
// is not sent: it names the account, and emulators do not enforce it.
func (k Key) CreateKeyInput() *kms.CreateKeyInput {
	in := &kms.CreateKeyInput{KeySpec: k.KeySpec, KeyUsage: k.KeyUsage}
	if k.Description != "" {
		in.Description = aws.String(k.Description)
	}
	return in
}

// secretKeys are the JSON keys of ClientCredentials; the template's secret must have exactly
// these.
var secretKeys = []string{"client_id", "client_secret", "state_key"}

func parseSecret(p *secretProps, path string) (Secret, error) {
	s := Secret{Description: strings.TrimSpace(string(p.Description))}
	gen := p.GenerateSecretString
	if gen == nil {
		return s, errAt(path, "missing GenerateSecretString")
	}
	at := join(path, "GenerateSecretString")
	var fields map[string]string
	if gen.SecretStringTemplate == "" {
		return s, errAt(at, "missing SecretStringTemplate")
	}
	if err := json.Unmarshal([]byte(gen.SecretStringTemplate), &fields); err != nil {
		return s, errAt(join(at, "SecretStringTemplate"), "want a JSON object of strings: %v", err)
	}
	s.Template = fields
	s.GenerateStringKey = string(gen.GenerateStringKey)
	if s.GenerateStringKey == "" {
		return s, errAt(at, "missing GenerateStringKey")
	}
	if _, dup := fields[s.GenerateStringKey]; dup {
		return s, errAt(join(at, "GenerateStringKey"), "%q is also in SecretStringTemplate", s.GenerateStringKey)
	}
	// CloudFormation's default length.
	s.PasswordLength = 32
	if gen.PasswordLength != nil {
		s.PasswordLength = int(*gen.PasswordLength)
		if s.PasswordLength < 16 || s.PasswordLength > 4096 {
			return s, errAt(join(at, "PasswordLength"), "want 16 to 4096, got %d", s.PasswordLength)
		}
	}
	if gen.ExcludePunctuation != nil {
		s.ExcludePunctuation = bool(*gen.ExcludePunctuation)
	}
	s.Keys = slices.Sorted(maps.Keys(fields))
	s.Keys = append(s.Keys, s.GenerateStringKey)
	slices.Sort(s.Keys)
	if !slices.Equal(s.Keys, secretKeys) {
		return s, errAt(at, "secret keys are %v, want %v (ClientCredentials)", s.Keys, secretKeys)
	}
	if s.GenerateStringKey != "state_key" {
		return s, errAt(join(at, "GenerateStringKey"), "want state_key, got %q", s.GenerateStringKey)
	}
	return s, nil
}

// Scope returns a Scope over the template's parameters (at their defaults), conditions
// and mappings, with ref resolving resources (nil: none).
func (s *Spec) Scope(ref func(name string) (string, bool)) Scope {
	return Scope{Ref: ref, Parameters: s.Parameters, Conditions: s.Conditions, Mappings: s.Mappings}
}

// FunctionEnv resolves the environment of the function logicalID (Globals overlaid with
// its own variables) in scope. Variables from a parameter without a default are left out;
// nil for a function the template does not define.
func (s *Spec) FunctionEnv(logicalID string, scope Scope) (map[string]string, error) {
	fn, ok := s.Functions[logicalID]
	if !ok {
		return nil, nil
	}
	env := map[string]string{}
	for name, v := range fn.Environment {
		val, err := scope.Resolve(v)
		if errors.Is(err, ErrNoValue) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", logicalID, name, err)
		}
		env[name] = val
	}
	return env, nil
}

// Index returns the global secondary index called name.
func (t Table) Index(name string) (dbtypes.GlobalSecondaryIndex, bool) {
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == name {
			return g, true
		}
	}
	return dbtypes.GlobalSecondaryIndex{}, false
}

// CreateTableInput returns the CreateTable request for a table called name. Each call
// returns fresh slices, so callers may modify the result.
func (t Table) CreateTableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          t.BillingMode,
		AttributeDefinitions: slices.Clone(t.AttributeDefinitions),
		KeySchema:            slices.Clone(t.KeySchema),
	}
	for _, g := range t.GlobalSecondaryIndexes {
		g.KeySchema = slices.Clone(g.KeySchema)
		if g.Projection != nil {
			p := *g.Projection
			p.NonKeyAttributes = slices.Clone(p.NonKeyAttributes)
			g.Projection = &p
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, g)
	}
	if t.SSEEnabled {
		in.SSESpecification = &dbtypes.SSESpecification{Enabled: aws.Bool(true)}
	}
	return in
}

// CreateQueueInput returns the CreateQueue request for a queue called name. deadLetterARN
// is the ARN of the queue named by DeadLetterTarget; it is required exactly when the queue
// has a redrive policy.
func (q Queue) CreateQueueInput(name, deadLetterARN string) (*sqs.CreateQueueInput, error) {
	attrs := maps.Clone(q.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	switch {
	case q.DeadLetterTarget != "" && deadLetterARN == "":
		return nil, fmt.Errorf("create queue %s: redrive policy needs the ARN of %s", name, q.DeadLetterTarget)
	case q.DeadLetterTarget == "" && deadLetterARN != "":
		return nil, fmt.Errorf("create queue %s: dead-letter ARN given but the template has no redrive policy", name)
	case q.DeadLetterTarget != "":
		rp, err := json.Marshal(struct {
			DeadLetterTargetARN string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}{deadLetterARN, q.MaxReceiveCount})
		if err != nil {
			return nil, fmt.Errorf("create queue %s: redrive policy: %w", name, err)
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(rp)
	}
	return &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs}, nil
}

// CreateTopicInput returns the CreateTopic request for a topic called name.
func (t Topic) CreateTopicInput(name string) *sns.CreateTopicInput {
	return &sns.CreateTopicInput{Name: aws.String(name), Attributes: maps.Clone(t.Attributes)}
}

// FirstValue is the secret's value right after a deploy: SecretStringTemplate's fields with
// stateKey under GenerateStringKey, as CloudFormation creates it.
func (s Secret) FirstValue(stateKey string) (string, error) {
	v := maps.Clone(s.Template)
	if v == nil {
		v = map[string]string{}
	}
	v[s.GenerateStringKey] = stateKey
	b, err := json.Marshal(v)
	return string(b), err
}

// CreateSecretInput returns the CreateSecret request for a secret called name holding creds
// as JSON. creds.StateKey must be set (Provision generates one when the caller has none).
func (s Secret) CreateSecretInput(name string, creds ClientCredentials) (*secretsmanager.CreateSecretInput, error) {
	body, err := creds.secretString()
	if err != nil {
		return nil, fmt.Errorf("create secret %s: %w", name, err)
	}
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(body)}
	if s.Description != "" {
		in.Description = aws.String(s.Description)
	}
	return in, nil
}
