package infra

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
)

// DueIndexName is the sparse GSI the refresher queries for installations due a refresh; the
// template must define it.
const DueIndexName = "refresh-due"

// Spec is what infra understood of template.yaml: the managed resources as SDK-shaped values,
// before any name is chosen. Build one with Parse.
type Spec struct {
	Table           Table
	DeadLetterQueue Queue
	JobsQueue       Queue
	AlertsTopic     Topic
	ClientSecret    Secret
	// FunctionEnvRefs maps each variable of Globals.Function.Environment whose value is
	// !Ref of a managed resource to that resource's logical ID (TOKENS_TABLE → TokensTable).
	FunctionEnvRefs map[string]string
	// FunctionEnvLiterals holds the variables of Globals.Function.Environment written as
	// plain strings. Variables that reference parameters are in neither map.
	FunctionEnvLiterals map[string]string
	// Parameters are the template's parameters by name.
	Parameters map[string]Parameter
	// GlobalEnv is Globals.Function.Environment.Variables, every variable.
	GlobalEnv map[string]EnvValue
	// Functions are the template's AWS::Serverless::Function resources by logical ID.
	Functions map[string]Function
}

// Parameter is one entry of the template's Parameters.
type Parameter struct {
	Type string
	// Default is the parameter's default; HasDefault tells an empty default from none.
	Default    string
	HasDefault bool
}

// EnvValue is the value of a function's environment variable: a literal, or !Ref of a
// resource or parameter (Ref names it).
type EnvValue struct {
	Literal string
	Ref     string
}

// Function is an AWS::Serverless::Function of the template.
type Function struct {
	// Environment is the function's own Environment.Variables, without Globals.
	Environment map[string]EnvValue
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
	// MaxReceiveCount is RedrivePolicy.maxReceiveCount, or 0 without a redrive policy.
	MaxReceiveCount int
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
	// GenerateStringKey is the key CloudFormation fills with a random string.
	GenerateStringKey  string
	PasswordLength     int
	ExcludePunctuation bool
}

// Parse reads a SAM/CloudFormation template and extracts the managed resources. Every
// property of those resources must be understood: an unknown property, a missing piece or
// a renamed resource is a *TemplateError, so that the harness never silently builds
// something other than what SAM deploys.
func Parse(template []byte) (*Spec, error) {
	root, err := decodeYAML(template)
	if err != nil {
		return nil, err
	}
	top, err := asObject(root, "(root)")
	if err != nil {
		return nil, err
	}
	resources, err := top.object("Resources")
	if err != nil {
		return nil, err
	}

	var s Spec
	if s.Parameters, err = parseParameters(top); err != nil {
		return nil, err
	}
	props, err := resourceProperties(resources, TokensTableID, "AWS::DynamoDB::Table")
	if err != nil {
		return nil, err
	}
	if s.Table, err = parseTable(props); err != nil {
		return nil, err
	}
	if props, err = resourceProperties(resources, DeadLetterQueueID, "AWS::SQS::Queue"); err != nil {
		return nil, err
	}
	if s.DeadLetterQueue, err = parseQueue(props, s.Parameters); err != nil {
		return nil, err
	}
	if s.DeadLetterQueue.DeadLetterTarget != "" {
		return nil, errAt(props.at("RedrivePolicy"), "a redrive policy on the dead-letter queue is not supported")
	}
	if props, err = resourceProperties(resources, JobsQueueID, "AWS::SQS::Queue"); err != nil {
		return nil, err
	}
	if s.JobsQueue, err = parseQueue(props, s.Parameters); err != nil {
		return nil, err
	}
	switch s.JobsQueue.DeadLetterTarget {
	case DeadLetterQueueID:
	case "":
		return nil, errAt(props.path, "missing RedrivePolicy (the jobs queue must dead-letter into %s)", DeadLetterQueueID)
	default:
		return nil, errAt(props.at("RedrivePolicy.deadLetterTargetArn"), "want !GetAtt %s.Arn, got !GetAtt %s.Arn", DeadLetterQueueID, s.JobsQueue.DeadLetterTarget)
	}
	if props, err = resourceProperties(resources, AlertsTopicID, "AWS::SNS::Topic"); err != nil {
		return nil, err
	}
	if s.AlertsTopic, err = parseTopic(props); err != nil {
		return nil, err
	}
	if props, err = resourceProperties(resources, ClientSecretID, "AWS::SecretsManager::Secret"); err != nil {
		return nil, err
	}
	if s.ClientSecret, err = parseSecret(props); err != nil {
		return nil, err
	}
	if s.FunctionEnvRefs, s.FunctionEnvLiterals, s.GlobalEnv, err = parseFunctionEnv(top); err != nil {
		return nil, err
	}
	if s.Functions, err = parseFunctions(resources, s.Parameters); err != nil {
		return nil, err
	}
	return &s, nil
}

// resourceProperties checks a resource's Type and resource-level attributes and returns its
// Properties.
func resourceProperties(resources *object, id, wantType string) (*object, error) {
	v, ok := resources.get(id)
	if !ok {
		return nil, errAt(resources.at(id), "resource not found (renamed? internal/infra reads it by this logical ID)")
	}
	res, err := asObject(v, resources.at(id))
	if err != nil {
		return nil, err
	}
	typ, err := res.str("Type")
	if err != nil {
		return nil, err
	}
	if typ != wantType {
		return nil, errAt(res.at("Type"), "want %s, got %s", wantType, typ)
	}
	// Deletion policies only matter to CloudFormation; Condition or DependsOn would change
	// whether or when the resource exists, which Provision does not model.
	res.ignore("DeletionPolicy", "UpdateReplacePolicy")
	props, err := res.object("Properties")
	if err != nil {
		return nil, err
	}
	if err := res.finish(); err != nil {
		return nil, err
	}
	return props, nil
}

func parseTable(p *object) (Table, error) {
	var t Table
	mode, err := p.str("BillingMode")
	if err != nil {
		return t, err
	}
	// PROVISIONED would need ProvisionedThroughput, which infra does not translate.
	if mode != string(dbtypes.BillingModePayPerRequest) {
		return t, errAt(p.at("BillingMode"), "want %s, got %s", dbtypes.BillingModePayPerRequest, mode)
	}
	t.BillingMode = dbtypes.BillingModePayPerRequest

	defs, err := p.list("AttributeDefinitions")
	if err != nil {
		return t, err
	}
	declared := map[string]bool{}
	for i, d := range defs {
		path := fmt.Sprintf("%s[%d]", p.at("AttributeDefinitions"), i)
		o, err := asObject(d, path)
		if err != nil {
			return t, err
		}
		name, err := o.str("AttributeName")
		if err != nil {
			return t, err
		}
		typ, err := o.str("AttributeType")
		if err != nil {
			return t, err
		}
		if !slices.Contains(dbtypes.ScalarAttributeType("").Values(), dbtypes.ScalarAttributeType(typ)) {
			return t, errAt(o.at("AttributeType"), "want S, N or B, got %q", typ)
		}
		if declared[name] {
			return t, errAt(path, "attribute %q defined twice", name)
		}
		declared[name] = true
		if err := o.finish(); err != nil {
			return t, err
		}
		t.AttributeDefinitions = append(t.AttributeDefinitions, dbtypes.AttributeDefinition{
			AttributeName: aws.String(name), AttributeType: dbtypes.ScalarAttributeType(typ),
		})
	}

	used := map[string]bool{}
	if t.KeySchema, err = parseKeySchema(p, declared, used); err != nil {
		return t, err
	}

	gsis, err := p.list("GlobalSecondaryIndexes")
	if err != nil {
		return t, err
	}
	for i, g := range gsis {
		gsi, err := parseGSI(g, fmt.Sprintf("%s[%d]", p.at("GlobalSecondaryIndexes"), i), declared, used)
		if err != nil {
			return t, err
		}
		for _, prev := range t.GlobalSecondaryIndexes {
			if *prev.IndexName == *gsi.IndexName {
				return t, errAt(p.at("GlobalSecondaryIndexes"), "index %q defined twice", *gsi.IndexName)
			}
		}
		t.GlobalSecondaryIndexes = append(t.GlobalSecondaryIndexes, gsi)
	}
	if _, ok := t.Index(DueIndexName); !ok {
		return t, errAt(p.at("GlobalSecondaryIndexes"), "missing index %q (the refresher queries it)", DueIndexName)
	}
	// DynamoDB rejects attribute definitions that no key uses; say so before AWS does.
	for _, name := range sortedKeys(declared) {
		if !used[name] {
			return t, errAt(p.at("AttributeDefinitions"), "attribute %q is defined but used by no key schema", name)
		}
	}

	if v, ok := p.get("TimeToLiveSpecification"); ok {
		o, err := asObject(v, p.at("TimeToLiveSpecification"))
		if err != nil {
			return t, err
		}
		enabled, err := o.boolean("Enabled")
		if err != nil {
			return t, err
		}
		name, err := o.str("AttributeName")
		if err != nil {
			return t, err
		}
		if err := o.finish(); err != nil {
			return t, err
		}
		if enabled {
			t.TTLAttribute = name
		}
	}
	if v, ok := p.get("SSESpecification"); ok {
		o, err := asObject(v, p.at("SSESpecification"))
		if err != nil {
			return t, err
		}
		if t.SSEEnabled, err = o.boolean("SSEEnabled"); err != nil {
			return t, err
		}
		if err := o.finish(); err != nil {
			return t, err
		}
	}
	if v, ok := p.get("PointInTimeRecoverySpecification"); ok {
		o, err := asObject(v, p.at("PointInTimeRecoverySpecification"))
		if err != nil {
			return t, err
		}
		if t.PointInTimeRecovery, err = o.boolean("PointInTimeRecoveryEnabled"); err != nil {
			return t, err
		}
		if err := o.finish(); err != nil {
			return t, err
		}
	}
	return t, p.finish()
}

// parseKeySchema reads p.KeySchema: a HASH key and an optional RANGE key, each declared in
// AttributeDefinitions. It records the attributes it uses in used.
func parseKeySchema(p *object, declared, used map[string]bool) ([]dbtypes.KeySchemaElement, error) {
	elems, err := p.list("KeySchema")
	if err != nil {
		return nil, err
	}
	if len(elems) > 2 {
		return nil, errAt(p.at("KeySchema"), "want a HASH key and at most one RANGE key, got %d keys", len(elems))
	}
	var ks []dbtypes.KeySchemaElement
	for i, e := range elems {
		path := fmt.Sprintf("%s[%d]", p.at("KeySchema"), i)
		o, err := asObject(e, path)
		if err != nil {
			return nil, err
		}
		name, err := o.str("AttributeName")
		if err != nil {
			return nil, err
		}
		typ, err := o.str("KeyType")
		if err != nil {
			return nil, err
		}
		want := dbtypes.KeyTypeHash
		if i == 1 {
			want = dbtypes.KeyTypeRange
		}
		if typ != string(want) {
			return nil, errAt(o.at("KeyType"), "want %s, got %q", want, typ)
		}
		if !declared[name] {
			return nil, errAt(o.at("AttributeName"), "attribute %q is not in AttributeDefinitions", name)
		}
		if err := o.finish(); err != nil {
			return nil, err
		}
		used[name] = true
		ks = append(ks, dbtypes.KeySchemaElement{AttributeName: aws.String(name), KeyType: want})
	}
	return ks, nil
}

func parseGSI(v any, path string, declared, used map[string]bool) (dbtypes.GlobalSecondaryIndex, error) {
	var g dbtypes.GlobalSecondaryIndex
	o, err := asObject(v, path)
	if err != nil {
		return g, err
	}
	name, err := o.str("IndexName")
	if err != nil {
		return g, err
	}
	g.IndexName = aws.String(name)
	if g.KeySchema, err = parseKeySchema(o, declared, used); err != nil {
		return g, err
	}
	proj, err := o.object("Projection")
	if err != nil {
		return g, err
	}
	typ, err := proj.str("ProjectionType")
	if err != nil {
		return g, err
	}
	g.Projection = &dbtypes.Projection{ProjectionType: dbtypes.ProjectionType(typ)}
	switch dbtypes.ProjectionType(typ) {
	case dbtypes.ProjectionTypeKeysOnly, dbtypes.ProjectionTypeAll:
	case dbtypes.ProjectionTypeInclude:
		attrs, err := proj.list("NonKeyAttributes")
		if err != nil {
			return g, err
		}
		for i, a := range attrs {
			s, err := asString(a, fmt.Sprintf("%s[%d]", proj.at("NonKeyAttributes"), i))
			if err != nil {
				return g, err
			}
			g.Projection.NonKeyAttributes = append(g.Projection.NonKeyAttributes, s)
		}
	default:
		return g, errAt(proj.at("ProjectionType"), "want KEYS_ONLY, INCLUDE or ALL, got %q", typ)
	}
	if err := proj.finish(); err != nil {
		return g, err
	}
	return g, o.finish()
}

// queueAttributes are the AWS::SQS::Queue properties that are CreateQueue attributes of the
// same name, with the kind of value each takes.
var queueAttributes = map[string]string{
	"VisibilityTimeout":             "int",
	"MessageRetentionPeriod":        "int",
	"DelaySeconds":                  "int",
	"MaximumMessageSize":            "int",
	"ReceiveMessageWaitTimeSeconds": "int",
	"KmsDataKeyReusePeriodSeconds":  "int",
	"SqsManagedSseEnabled":          "bool",
	"KmsMasterKeyId":                "string",
}

func parseQueue(p *object, params map[string]Parameter) (Queue, error) {
	q := Queue{Attributes: map[string]string{}}
	for _, key := range sortedKeys(queueAttributes) {
		v, ok := p.get(key)
		if !ok {
			continue
		}
		switch queueAttributes[key] {
		case "int":
			n, err := asInt(v, p.at(key))
			if err != nil {
				return q, err
			}
			q.Attributes[key] = strconv.Itoa(n)
		case "bool":
			b, err := asBool(v, p.at(key))
			if err != nil {
				return q, err
			}
			q.Attributes[key] = strconv.FormatBool(b)
		default:
			s, err := asString(v, p.at(key))
			if err != nil {
				return q, err
			}
			q.Attributes[key] = s
		}
	}
	if v, ok := p.get("RedrivePolicy"); ok {
		rp, err := asObject(v, p.at("RedrivePolicy"))
		if err != nil {
			return q, err
		}
		target, err := rp.require("deadLetterTargetArn")
		if err != nil {
			return q, err
		}
		res, attr, ok := getAttTarget(target)
		if !ok || attr != "Arn" {
			return q, errAt(rp.at("deadLetterTargetArn"), "want !GetAtt <Queue>.Arn, got %s", describe(target))
		}
		q.DeadLetterTarget = res
		mrc, err := rp.require("maxReceiveCount")
		if err != nil {
			return q, err
		}
		if q.MaxReceiveCount, err = intOrParam(mrc, rp.at("maxReceiveCount"), params); err != nil {
			return q, err
		}
		if q.MaxReceiveCount < 1 || q.MaxReceiveCount > 1000 {
			return q, errAt(rp.at("maxReceiveCount"), "want 1 to 1000, got %d", q.MaxReceiveCount)
		}
		if err := rp.finish(); err != nil {
			return q, err
		}
	}
	return q, p.finish()
}

func parseTopic(p *object) (Topic, error) {
	t := Topic{Attributes: map[string]string{}}
	for _, key := range []string{"KmsMasterKeyId", "DisplayName"} {
		v, ok := p.get(key)
		if !ok {
			continue
		}
		s, err := asString(v, p.at(key))
		if err != nil {
			return t, err
		}
		t.Attributes[key] = s
	}
	return t, p.finish()
}

// secretKeys are the JSON keys of ClientCredentials; the template's secret must have exactly
// these.
var secretKeys = []string{"client_id", "client_secret", "state_key"}

func parseSecret(p *object) (Secret, error) {
	var s Secret
	if v, ok := p.get("Description"); ok {
		d, err := asString(v, p.at("Description"))
		if err != nil {
			return s, err
		}
		s.Description = strings.TrimSpace(d)
	}
	gen, err := p.object("GenerateSecretString")
	if err != nil {
		return s, err
	}
	tmpl, err := gen.str("SecretStringTemplate")
	if err != nil {
		return s, err
	}
	var fields map[string]string
	if err := json.Unmarshal([]byte(tmpl), &fields); err != nil {
		return s, errAt(gen.at("SecretStringTemplate"), "want a JSON object of strings: %v", err)
	}
	if s.GenerateStringKey, err = gen.str("GenerateStringKey"); err != nil {
		return s, err
	}
	if _, dup := fields[s.GenerateStringKey]; dup {
		return s, errAt(gen.at("GenerateStringKey"), "%q is also in SecretStringTemplate", s.GenerateStringKey)
	}
	// CloudFormation's default length.
	s.PasswordLength = 32
	if v, ok := gen.get("PasswordLength"); ok {
		if s.PasswordLength, err = asInt(v, gen.at("PasswordLength")); err != nil {
			return s, err
		}
		if s.PasswordLength < 16 || s.PasswordLength > 4096 {
			return s, errAt(gen.at("PasswordLength"), "want 16 to 4096, got %d", s.PasswordLength)
		}
	}
	if v, ok := gen.get("ExcludePunctuation"); ok {
		if s.ExcludePunctuation, err = asBool(v, gen.at("ExcludePunctuation")); err != nil {
			return s, err
		}
	}
	if err := gen.finish(); err != nil {
		return s, err
	}
	s.Keys = append(sortedKeys(fields), s.GenerateStringKey)
	sort.Strings(s.Keys)
	if !slices.Equal(s.Keys, secretKeys) {
		return s, errAt(p.at("GenerateSecretString"), "secret keys are %v, want %v (ClientCredentials)", s.Keys, secretKeys)
	}
	if s.GenerateStringKey != "state_key" {
		return s, errAt(gen.at("GenerateStringKey"), "want state_key, got %q", s.GenerateStringKey)
	}
	return s, p.finish()
}

// intOrParam reads an integer written literally or as !Ref of a parameter with a default.
func intOrParam(v any, path string, params map[string]Parameter) (int, error) {
	if name, ok := refTarget(v); ok {
		p, ok := params[name]
		if !ok || !p.HasDefault {
			return 0, errAt(path, "!Ref %s: want a parameter with a default", name)
		}
		n, err := strconv.Atoi(p.Default)
		if err != nil {
			return 0, errAt(path, "!Ref %s: default %q is not an integer", name, p.Default)
		}
		return n, nil
	}
	return asInt(v, path)
}

// parseParameters reads the template's Parameters: each one's Type and Default.
func parseParameters(top *object) (map[string]Parameter, error) {
	out := map[string]Parameter{}
	v, ok := top.get("Parameters")
	if !ok {
		return out, nil
	}
	params, err := asObject(v, top.at("Parameters"))
	if err != nil {
		return nil, err
	}
	for _, name := range params.m.Keys {
		pv, _ := params.get(name)
		po, err := asObject(pv, params.at(name))
		if err != nil {
			return nil, err
		}
		var p Parameter
		if p.Type, err = po.str("Type"); err != nil {
			return nil, err
		}
		if d, ok := po.get("Default"); ok {
			if p.Default, err = asString(d, po.at("Default")); err != nil {
				return nil, err
			}
			p.HasDefault = true
		}
		out[name] = p
	}
	return out, nil
}

// parseEnvVars reads an Environment.Variables mapping.
func parseEnvVars(vars *object) (map[string]EnvValue, error) {
	out := map[string]EnvValue{}
	for _, name := range vars.m.Keys {
		v, _ := vars.get(name)
		if target, ok := refTarget(v); ok {
			out[name] = EnvValue{Ref: target}
			continue
		}
		if s, ok := v.(scalar); ok && s.Tag != "!!null" {
			out[name] = EnvValue{Literal: s.Value}
			continue
		}
		return nil, errAt(vars.at(name), "want a string or !Ref, got %s", describe(v))
	}
	return out, nil
}

// parseFunctions reads the environment of every AWS::Serverless::Function.
func parseFunctions(resources *object, params map[string]Parameter) (map[string]Function, error) {
	out := map[string]Function{}
	for _, id := range resources.m.Keys {
		v, _ := resources.get(id)
		res, err := asObject(v, resources.at(id))
		if err != nil {
			return nil, err
		}
		if typ, _ := res.get("Type"); describe(typ) != `"AWS::Serverless::Function"` {
			continue
		}
		props, err := res.object("Properties")
		if err != nil {
			return nil, err
		}
		fn := Function{Environment: map[string]EnvValue{}}
		if ev, ok := props.get("Environment"); ok {
			env, err := asObject(ev, props.at("Environment"))
			if err != nil {
				return nil, err
			}
			vars, err := env.object("Variables")
			if err != nil {
				return nil, err
			}
			if fn.Environment, err = parseEnvVars(vars); err != nil {
				return nil, err
			}
		}
		for name, val := range fn.Environment {
			if val.Ref != "" && !isManaged(val.Ref) {
				if _, ok := params[val.Ref]; !ok {
					return nil, errAt(props.at("Environment.Variables."+name), "!Ref %s: not a parameter or a resource infra provisions", val.Ref)
				}
			}
		}
		out[id] = fn
	}
	return out, nil
}

var managedIDs = []string{TokensTableID, ClientSecretID, DeadLetterQueueID, JobsQueueID, AlertsTopicID}

func isManaged(id string) bool { return slices.Contains(managedIDs, id) }

// parseFunctionEnv reads Globals.Function.Environment.Variables.
func parseFunctionEnv(top *object) (refs, literals map[string]string, all map[string]EnvValue, err error) {
	globals, err := top.object("Globals")
	if err != nil {
		return nil, nil, nil, err
	}
	fn, err := globals.object("Function")
	if err != nil {
		return nil, nil, nil, err
	}
	env, err := fn.object("Environment")
	if err != nil {
		return nil, nil, nil, err
	}
	vars, err := env.object("Variables")
	if err != nil {
		return nil, nil, nil, err
	}
	if all, err = parseEnvVars(vars); err != nil {
		return nil, nil, nil, err
	}
	refs, literals = map[string]string{}, map[string]string{}
	for name, v := range all {
		switch {
		case v.Ref == "":
			literals[name] = v.Literal
		case isManaged(v.Ref):
			refs[name] = v.Ref
		}
		// Otherwise a parameter: its value comes from the deployment, not from infra.
	}
	return refs, literals, all, nil
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
