package infra

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TemplateError reports a piece of the template that infra cannot turn into an AWS input:
// missing, of the wrong shape, or not understood. Path locates it, for example
// "Resources.TokensTable.Properties.GlobalSecondaryIndexes[0].Projection".
type TemplateError struct {
	Path   string
	Reason string
}

// Error reads "template: <path>: <reason>".
func (e *TemplateError) Error() string {
	return "template: " + e.Path + ": " + e.Reason
}

func errAt(path, format string, args ...any) error {
	return &TemplateError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" || path == "(root)" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// The template as infra reads it. Every struct is decoded with KnownFields, so a key infra
// does not model is an error; resources infra does not manage keep their properties raw.
type template struct {
	AWSTemplateFormatVersion text                                   `yaml:"AWSTemplateFormatVersion"`
	Transform                text                                   `yaml:"Transform"`
	Description              text                                   `yaml:"Description"`
	Metadata                 yaml.Node                              `yaml:"Metadata"`
	Parameters               map[string]parameterDecl               `yaml:"Parameters"`
	Mappings                 map[string]map[string]map[string]Value `yaml:"Mappings"`
	Conditions               map[string]Value                       `yaml:"Conditions"`
	Globals                  struct {
		Function functionSettings `yaml:"Function"`
	} `yaml:"Globals"`
	Resources *resources           `yaml:"Resources"`
	Outputs   map[string]yaml.Node `yaml:"Outputs"`
}

type parameterDecl struct {
	Type                  text     `yaml:"Type"`
	Default               *text    `yaml:"Default"`
	Description           text     `yaml:"Description"`
	AllowedValues         []text   `yaml:"AllowedValues"`
	AllowedPattern        text     `yaml:"AllowedPattern"`
	ConstraintDescription text     `yaml:"ConstraintDescription"`
	NoEcho                *boolean `yaml:"NoEcho"`
	MinValue              *integer `yaml:"MinValue"`
	MaxValue              *integer `yaml:"MaxValue"`
	MinLength             *integer `yaml:"MinLength"`
	MaxLength             *integer `yaml:"MaxLength"`
}

// resources names the managed resources; every other resource lands in Others.
type resources struct {
	TokensTable         *resource[tableProps]    `yaml:"TokensTable"`
	ClientSecret        *resource[secretProps]   `yaml:"ClientSecret"`
	JobsDeadLetterQueue *resource[queueProps]    `yaml:"JobsDeadLetterQueue"`
	JobsQueue           *resource[queueProps]    `yaml:"JobsQueue"`
	AlertsTopic         *resource[topicProps]    `yaml:"AlertsTopic"`
	TokensKey           *resource[keyProps]      `yaml:"TokensKey"`
	WebhookKeySecret    *resource[secretProps]   `yaml:"WebhookKeySecret"`
	Others              map[string]otherResource `yaml:",inline"`
}

// resource is a managed resource. It has no Condition or DependsOn: those change whether or
// when the resource exists, which Provision does not model. Deletion policies only matter
// to CloudFormation.
type resource[P any] struct {
	Type                text `yaml:"Type"`
	DeletionPolicy      text `yaml:"DeletionPolicy"`
	UpdateReplacePolicy text `yaml:"UpdateReplacePolicy"`
	Properties          *P   `yaml:"Properties"`
}

// otherResource is a resource infra does not provision; for functions, Properties is decoded
// again (strictly) as functionSettings.
type otherResource struct {
	Type                text      `yaml:"Type"`
	Condition           text      `yaml:"Condition"`
	DependsOn           yaml.Node `yaml:"DependsOn"`
	DeletionPolicy      text      `yaml:"DeletionPolicy"`
	UpdateReplacePolicy text      `yaml:"UpdateReplacePolicy"`
	Metadata            yaml.Node `yaml:"Metadata"`
	Properties          yaml.Node `yaml:"Properties"`
}

type tableProps struct {
	BillingMode            text         `yaml:"BillingMode"`
	AttributeDefinitions   []attrDef    `yaml:"AttributeDefinitions"`
	KeySchema              []keyElement `yaml:"KeySchema"`
	GlobalSecondaryIndexes []struct {
		IndexName  text         `yaml:"IndexName"`
		KeySchema  []keyElement `yaml:"KeySchema"`
		Projection *struct {
			ProjectionType   text   `yaml:"ProjectionType"`
			NonKeyAttributes []text `yaml:"NonKeyAttributes"`
		} `yaml:"Projection"`
	} `yaml:"GlobalSecondaryIndexes"`
	TimeToLiveSpecification *struct {
		AttributeName text     `yaml:"AttributeName"`
		Enabled       *boolean `yaml:"Enabled"`
	} `yaml:"TimeToLiveSpecification"`
	PointInTimeRecoverySpecification *struct {
		PointInTimeRecoveryEnabled *boolean `yaml:"PointInTimeRecoveryEnabled"`
	} `yaml:"PointInTimeRecoverySpecification"`
	SSESpecification *struct {
		SSEEnabled *boolean `yaml:"SSEEnabled"`
	} `yaml:"SSESpecification"`
}

type attrDef struct {
	AttributeName text `yaml:"AttributeName"`
	AttributeType text `yaml:"AttributeType"`
}

type keyElement struct {
	AttributeName text `yaml:"AttributeName"`
	KeyType       text `yaml:"KeyType"`
}

// queueProps are the AWS::SQS::Queue properties infra applies; all but RedrivePolicy are
// CreateQueue attributes of the same name.
type queueProps struct {
	VisibilityTimeout             *integer `yaml:"VisibilityTimeout"`
	MessageRetentionPeriod        *integer `yaml:"MessageRetentionPeriod"`
	DelaySeconds                  *integer `yaml:"DelaySeconds"`
	MaximumMessageSize            *integer `yaml:"MaximumMessageSize"`
	ReceiveMessageWaitTimeSeconds *integer `yaml:"ReceiveMessageWaitTimeSeconds"`
	KmsDataKeyReusePeriodSeconds  *integer `yaml:"KmsDataKeyReusePeriodSeconds"`
	SqsManagedSseEnabled          *boolean `yaml:"SqsManagedSseEnabled"`
	KmsMasterKeyId                *text    `yaml:"KmsMasterKeyId"`
	RedrivePolicy                 *struct {
		DeadLetterTargetArn *Value `yaml:"deadLetterTargetArn"`
		MaxReceiveCount     *Value `yaml:"maxReceiveCount"`
	} `yaml:"RedrivePolicy"`
}

// keyProps are the AWS::KMS::Key properties. KeyPolicy is kept raw: it names the account,
// which only CloudFormation resolves, and emulators do not enforce key policies.
type keyProps struct {
	Description         text      `yaml:"Description"`
	Enabled             *boolean  `yaml:"Enabled"`
	EnableKeyRotation   *boolean  `yaml:"EnableKeyRotation"`
	KeySpec             text      `yaml:"KeySpec"`
	KeyUsage            text      `yaml:"KeyUsage"`
	PendingWindowInDays *integer  `yaml:"PendingWindowInDays"`
	KeyPolicy           yaml.Node `yaml:"KeyPolicy"`
}

type topicProps struct {
	DisplayName    *text `yaml:"DisplayName"`
	KmsMasterKeyId *text `yaml:"KmsMasterKeyId"`
}

type secretProps struct {
	Description          text `yaml:"Description"`
	GenerateSecretString *struct {
		SecretStringTemplate text     `yaml:"SecretStringTemplate"`
		GenerateStringKey    text     `yaml:"GenerateStringKey"`
		PasswordLength       *integer `yaml:"PasswordLength"`
		ExcludePunctuation   *boolean `yaml:"ExcludePunctuation"`
	} `yaml:"GenerateSecretString"`
}

// functionSettings are Globals.Function and an AWS::Serverless::Function's Properties.
type functionSettings struct {
	CodeUri       text           `yaml:"CodeUri"`
	Description   text           `yaml:"Description"`
	Runtime       text           `yaml:"Runtime"`
	Architectures []text         `yaml:"Architectures"`
	Handler       text           `yaml:"Handler"`
	MemorySize    *integer       `yaml:"MemorySize"`
	Timeout       *integer       `yaml:"Timeout"`
	LoggingConfig *loggingConfig `yaml:"LoggingConfig"`
	// ReservedConcurrentExecutions matters to Lambda only (no local stack reserves any).
	ReservedConcurrentExecutions *Value `yaml:"ReservedConcurrentExecutions"`
	// AutoPublishAlias, DeploymentPreference and Tracing shape deployments and tracing in AWS
	// (an alias moved by CodeDeploy, X-Ray); the emulator runs the code as it is, so infra
	// reads them without applying them.
	AutoPublishAlias     text      `yaml:"AutoPublishAlias"`
	DeploymentPreference yaml.Node `yaml:"DeploymentPreference"`
	Tracing              *Value    `yaml:"Tracing"`
	Environment          *struct {
		Variables map[string]Value `yaml:"Variables"`
	} `yaml:"Environment"`
	// Policies are SAM policy templates ({Name: {…}}); infra does not apply them.
	Policies []Value `yaml:"Policies"`
	// RolePath is the IAM path of the function's role (the tokens key policy names it);
	// infra does not apply it.
	RolePath *Value `yaml:"RolePath"`
	Events   map[string]struct {
		Type       text        `yaml:"Type"`
		Properties eventSource `yaml:"Properties"`
	} `yaml:"Events"`
}

// loggingConfig is a function's LoggingConfig.
type loggingConfig struct {
	LogFormat text `yaml:"LogFormat"`
	// LogGroup is the function's own log group (!Ref of an AWS::Logs::LogGroup).
	LogGroup *Value `yaml:"LogGroup"`
	// ApplicationLogLevel becomes the function's AWS_LAMBDA_LOG_LEVEL, as Lambda sets it.
	ApplicationLogLevel *Value `yaml:"ApplicationLogLevel"`
}

// eventSource holds the properties of the event types infra understands; which apply
// depends on the event's Type.
type eventSource struct {
	// HttpApi
	ApiId  *Value `yaml:"ApiId"`
	Method text   `yaml:"Method"`
	Path   text   `yaml:"Path"`
	// RouteSettings (throttling) matter to API Gateway only.
	RouteSettings *Value `yaml:"RouteSettings"`
	// ScheduleV2
	ScheduleExpression *Value `yaml:"ScheduleExpression"`
	RetryPolicy        *struct {
		MaximumRetryAttempts *integer `yaml:"MaximumRetryAttempts"`
	} `yaml:"RetryPolicy"`
	// SQS
	Queue                 *Value   `yaml:"Queue"`
	BatchSize             *integer `yaml:"BatchSize"`
	FunctionResponseTypes []text   `yaml:"FunctionResponseTypes"`
	ScalingConfig         *struct {
		MaximumConcurrency *Value `yaml:"MaximumConcurrency"`
	} `yaml:"ScalingConfig"`
}

// text is a plain string; an intrinsic or a mapping where infra wants a literal is an error
// (yaml would otherwise read !Ref X as "X").
type text string

// UnmarshalYAML accepts a scalar without a CloudFormation tag.
func (t *text) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || isShortTag(n.Tag) || n.Tag == "!!null" {
		return typeErr(n, "want a string, got %s", describeNode(n))
	}
	*t = text(n.Value)
	return nil
}

// integer accepts numbers written plain or quoted, as CloudFormation does.
type integer int

// UnmarshalYAML accepts a scalar holding a decimal integer.
func (i *integer) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || isShortTag(n.Tag) {
		return typeErr(n, "want an integer, got %s", describeNode(n))
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return typeErr(n, "want an integer, got %q", n.Value)
	}
	*i = integer(v)
	return nil
}

// boolean accepts true/false written plain or quoted, as CloudFormation does.
type boolean bool

// UnmarshalYAML accepts true or false in any case.
func (b *boolean) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && !isShortTag(n.Tag) {
		switch strings.ToLower(n.Value) {
		case "true":
			*b = true
			return nil
		case "false":
			*b = false
			return nil
		}
	}
	return typeErr(n, "want true or false, got %s", describeNode(n))
}

// isShortTag reports whether tag is a CloudFormation short form such as !Ref (YAML's own
// tags start with "!!").
func isShortTag(tag string) bool {
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

func describeNode(n *yaml.Node) string {
	switch {
	case isShortTag(n.Tag):
		return n.Tag
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Tag == "!!null":
		return "null"
	}
	return fmt.Sprintf("%q", n.Value)
}

// decodeStrict decodes one YAML document into v with unknown keys as errors, and turns
// yaml's errors into a *TemplateError whose path is below prefix.
func decodeStrict(data []byte, v any, prefix string) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return errAt("(root)", "empty document")
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var root yaml.Node
		_ = yaml.Unmarshal(data, &root)
		return typeError(&root, te.Errors[0], prefix)
	}
	if err != nil {
		return errAt("(root)", "invalid YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errAt("(root)", "more than one YAML document")
	}
	return nil
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (.+) not found in type`)
	duplicateRE    = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined`)
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// typeError locates one of yaml's messages ("line 12: field X not found in type …") in the
// document root.
func typeError(root *yaml.Node, msg, prefix string) error {
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return errAt(join(prefix, pathOf(root, line, m[2])), "not supported by internal/infra (teach it, or remove it from the template)")
	}
	if m := duplicateRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return errAt(join(prefix, pathOf(root, line, m[2])), "duplicate key on line %d", line)
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return errAt(join(prefix, pathOf(root, line, "")), "%s", m[2])
	}
	return errAt(join(prefix, "(root)"), "%s", msg)
}

// pathOf returns the path of the deepest key on line (named key, when given) or of the
// deepest value starting on line; "(root)" when nothing matches.
func pathOf(root *yaml.Node, line int, key string) string {
	best, bestDepth := "(root)", -1
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := index(path, i)
				if key == "" && c.Line == line && depth > bestDepth {
					best, bestDepth = p, depth
				}
				walk(c, p, depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if k.Line == line && (key == "" || k.Value == key) && depth >= bestDepth {
					best, bestDepth = p, depth
				}
				walk(v, p, depth+1)
			}
		}
	}
	walk(root, "", 0)
	return best
}
