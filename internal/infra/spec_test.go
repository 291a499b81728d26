package infra_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

func parseTemplate(t *testing.T) *infra.Spec {
	t.Helper()
	s, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatalf("Parse(template.yaml) = %v", err)
	}
	return s
}

func TestParseTable(t *testing.T) {
	in := parseTemplate(t).Table.CreateTableInput("t1")

	if got := aws.ToString(in.TableName); got != "t1" {
		t.Errorf("TableName = %q, want t1", got)
	}
	if in.BillingMode != dbtypes.BillingModePayPerRequest {
		t.Errorf("BillingMode = %q, want PAY_PER_REQUEST", in.BillingMode)
	}
	if got := keys(in.KeySchema); got != "pk:HASH" {
		t.Errorf("KeySchema = %s, want pk:HASH", got)
	}
	defs := map[string]dbtypes.ScalarAttributeType{}
	for _, d := range in.AttributeDefinitions {
		defs[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	wantDefs := map[string]dbtypes.ScalarAttributeType{"pk": "S", "due_shard": "S", "refresh_due_at": "N"}
	if !maps.Equal(defs, wantDefs) {
		t.Errorf("AttributeDefinitions = %v, want %v", defs, wantDefs)
	}
	if len(in.GlobalSecondaryIndexes) != 1 {
		t.Fatalf("len(GlobalSecondaryIndexes) = %d, want 1", len(in.GlobalSecondaryIndexes))
	}
	gsi := in.GlobalSecondaryIndexes[0]
	if got := aws.ToString(gsi.IndexName); got != infra.DueIndexName {
		t.Errorf("GSI name = %q, want %q", got, infra.DueIndexName)
	}
	if got := keys(gsi.KeySchema); got != "due_shard:HASH refresh_due_at:RANGE" {
		t.Errorf("GSI KeySchema = %s, want due_shard:HASH refresh_due_at:RANGE", got)
	}
	if gsi.Projection == nil || gsi.Projection.ProjectionType != dbtypes.ProjectionTypeKeysOnly {
		t.Errorf("GSI Projection = %+v, want KEYS_ONLY", gsi.Projection)
	}
	if in.SSESpecification == nil || !aws.ToBool(in.SSESpecification.Enabled) {
		t.Errorf("SSESpecification = %+v, want enabled", in.SSESpecification)
	}

	spec := parseTemplate(t)
	if spec.Table.TTLAttribute != "expires_at" {
		t.Errorf("TTLAttribute = %q, want expires_at", spec.Table.TTLAttribute)
	}
	if !spec.Table.PointInTimeRecovery {
		t.Errorf("PointInTimeRecovery = false, want true")
	}
}

func TestCreateTableInputIsACopy(t *testing.T) {
	spec := parseTemplate(t)
	a := spec.Table.CreateTableInput("a")
	a.GlobalSecondaryIndexes[0].Projection.ProjectionType = dbtypes.ProjectionTypeAll
	a.KeySchema[0].AttributeName = aws.String("changed")
	b := spec.Table.CreateTableInput("b")
	if got := b.GlobalSecondaryIndexes[0].Projection.ProjectionType; got != dbtypes.ProjectionTypeKeysOnly {
		t.Errorf("after modifying an earlier input, ProjectionType = %q, want KEYS_ONLY", got)
	}
	if got := aws.ToString(b.KeySchema[0].AttributeName); got != "pk" {
		t.Errorf("after modifying an earlier input, key = %q, want pk", got)
	}
}

func TestParseQueues(t *testing.T) {
	spec := parseTemplate(t)
	if spec.JobsQueue.MaxReceiveCount != 12 {
		t.Errorf("JobsQueue.MaxReceiveCount = %d, want 12", spec.JobsQueue.MaxReceiveCount)
	}
	if spec.JobsQueue.DeadLetterTarget != infra.DeadLetterQueueID {
		t.Errorf("JobsQueue.DeadLetterTarget = %q, want %q", spec.JobsQueue.DeadLetterTarget, infra.DeadLetterQueueID)
	}

	const dlqARN = "arn:aws:sqs:us-east-1:123456789012:x-jobs-dlq"
	in, err := spec.JobsQueue.CreateQueueInput("x-jobs", dlqARN)
	if err != nil {
		t.Fatalf("JobsQueue.CreateQueueInput = %v", err)
	}
	var rp struct {
		DeadLetterTargetARN string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(in.Attributes["RedrivePolicy"]), &rp); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", in.Attributes["RedrivePolicy"], err)
	}
	if rp.DeadLetterTargetARN != dlqARN || rp.MaxReceiveCount != 12 {
		t.Errorf("RedrivePolicy = %+v, want {%s 12}", rp, dlqARN)
	}
	wantJobs := map[string]string{
		"VisibilityTimeout":      "180",
		"MessageRetentionPeriod": "345600",
		"SqsManagedSseEnabled":   "true",
		"RedrivePolicy":          in.Attributes["RedrivePolicy"],
	}
	if !maps.Equal(in.Attributes, wantJobs) {
		t.Errorf("jobs queue attributes = %v, want %v", in.Attributes, wantJobs)
	}
	if _, err := spec.JobsQueue.CreateQueueInput("x-jobs", ""); err == nil {
		t.Errorf("JobsQueue.CreateQueueInput without a dead-letter ARN = nil error, want an error")
	}

	dlq, err := spec.DeadLetterQueue.CreateQueueInput("x-jobs-dlq", "")
	if err != nil {
		t.Fatalf("DeadLetterQueue.CreateQueueInput = %v", err)
	}
	wantDLQ := map[string]string{"MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"}
	if !maps.Equal(dlq.Attributes, wantDLQ) {
		t.Errorf("dead-letter queue attributes = %v, want %v", dlq.Attributes, wantDLQ)
	}
}

func TestParseTopicSecretAndEnv(t *testing.T) {
	spec := parseTemplate(t)
	if got := spec.AlertsTopic.CreateTopicInput("x").Attributes; !maps.Equal(got, map[string]string{"DisplayName": "Pipedrive app alerts"}) {
		t.Errorf("topic attributes = %v, want the template's DisplayName", got)
	}

	s := spec.ClientSecret
	if want := []string{"client_id", "client_secret", "state_key"}; !slices.Equal(s.Keys, want) {
		t.Errorf("secret keys = %v, want %v", s.Keys, want)
	}
	if s.GenerateStringKey != "state_key" || s.PasswordLength != 64 || !s.ExcludePunctuation {
		t.Errorf("secret generation = %q/%d/%v, want state_key/64/true", s.GenerateStringKey, s.PasswordLength, s.ExcludePunctuation)
	}
	in, err := s.CreateSecretInput("x", infra.ClientCredentials{ClientID: "id", ClientSecret: "sec", StateKey: "key"})
	if err != nil {
		t.Fatalf("CreateSecretInput = %v", err)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(in.SecretString)), &body); err != nil {
		t.Fatalf("secret string is not JSON: %v", err)
	}
	if want := map[string]string{"client_id": "id", "client_secret": "sec", "state_key": "key"}; !maps.Equal(body, want) {
		t.Errorf("secret JSON = %v, want %v", body, want)
	}
	if _, err := s.CreateSecretInput("x", infra.ClientCredentials{ClientID: "id"}); err == nil {
		t.Errorf("CreateSecretInput without client secret = nil error, want an error")
	}

	wantRefs := map[string]string{
		"TOKENS_TABLE":     infra.TokensTableID,
		"CLIENT_SECRET_ID": infra.ClientSecretID,
		"JOBS_QUEUE_URL":   infra.JobsQueueID,
		"ALERTS_TOPIC_ARN": infra.AlertsTopicID,
		"TOKENS_KEY_ID":    infra.TokensKeyID,
	}
	if !maps.Equal(spec.FunctionEnvRefs, wantRefs) {
		t.Errorf("FunctionEnvRefs = %v, want %v", spec.FunctionEnvRefs, wantRefs)
	}
	if len(spec.FunctionEnvLiterals) != 0 {
		t.Errorf("FunctionEnvLiterals = %v, want none", spec.FunctionEnvLiterals)
	}
}

// TestMaxReceiveCountIsOneFact checks that the jobs queue's redrive policy and the worker's
// JOBS_MAX_RECEIVES both come from the JobsMaxReceiveCount parameter.
func TestMaxReceiveCountIsOneFact(t *testing.T) {
	tmpl := mutate(t, string(pdkit.Template),
		"  JobsMaxReceiveCount:\n    Type: Number\n    Default: 12\n",
		"  JobsMaxReceiveCount:\n    Type: Number\n    Default: 7\n")
	spec, err := infra.Parse([]byte(tmpl))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if spec.JobsQueue.MaxReceiveCount != 7 {
		t.Errorf("JobsQueue.MaxReceiveCount = %d, want 7 (the parameter's default)", spec.JobsQueue.MaxReceiveCount)
	}
	if got, _ := spec.Functions["ApiCallFunction"].Environment["JOBS_MAX_RECEIVES"].RefTarget(); got != "JobsMaxReceiveCount" {
		t.Errorf("ApiCallFunction JOBS_MAX_RECEIVES = !Ref %q, want !Ref JobsMaxReceiveCount", got)
	}
}

func TestParseLongFormIntrinsics(t *testing.T) {
	tmpl := mutate(t, string(pdkit.Template),
		"deadLetterTargetArn: !GetAtt JobsDeadLetterQueue.Arn",
		`deadLetterTargetArn: {"Fn::GetAtt": [JobsDeadLetterQueue, Arn]}`)
	tmpl = mutate(t, tmpl, "TOKENS_TABLE: !Ref TokensTable", "TOKENS_TABLE: {Ref: TokensTable}")
	spec, err := infra.Parse([]byte(tmpl))
	if err != nil {
		t.Fatalf("Parse(long-form intrinsics) = %v", err)
	}
	if spec.JobsQueue.DeadLetterTarget != infra.DeadLetterQueueID || spec.FunctionEnvRefs["TOKENS_TABLE"] != infra.TokensTableID {
		t.Errorf("long forms read as %q and %q, want %s and %s", spec.JobsQueue.DeadLetterTarget,
			spec.FunctionEnvRefs["TOKENS_TABLE"], infra.DeadLetterQueueID, infra.TokensTableID)
	}
}

// TestParseErrors feeds broken variants of template.yaml: each must fail with a
// *TemplateError naming the offending place.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		wantPath string
	}{
		{"GSI without projection",
			"          Projection:\n            ProjectionType: KEYS_ONLY\n", "",
			"Resources.TokensTable.Properties.GlobalSecondaryIndexes[0]"},
		{"unknown projection type",
			"ProjectionType: KEYS_ONLY", "ProjectionType: SOME",
			"Resources.TokensTable.Properties.GlobalSecondaryIndexes[0].Projection.ProjectionType"},
		{"due index renamed",
			"IndexName: refresh-due", "IndexName: due",
			"Resources.TokensTable.Properties.GlobalSecondaryIndexes"},
		{"table renamed",
			"  TokensTable:\n    Type: AWS::DynamoDB::Table", "  Tokens:\n    Type: AWS::DynamoDB::Table",
			"Resources.TokensTable"},
		{"unknown table property",
			"      BillingMode: PAY_PER_REQUEST\n", "      BillingMode: PAY_PER_REQUEST\n      StreamSpecification:\n        StreamViewType: NEW_IMAGE\n",
			"Resources.TokensTable.Properties.StreamSpecification"},
		{"provisioned billing",
			"BillingMode: PAY_PER_REQUEST", "BillingMode: PROVISIONED",
			"Resources.TokensTable.Properties.BillingMode"},
		{"key attribute not defined",
			"        - AttributeName: pk\n          KeyType: HASH", "        - AttributeName: id\n          KeyType: HASH",
			"Resources.TokensTable.Properties.KeySchema[0].AttributeName"},
		{"TTL without attribute",
			"        AttributeName: expires_at\n", "",
			"Resources.TokensTable.Properties.TimeToLiveSpecification"},
		{"TTL enabled not a bool",
			"        Enabled: true\n", "        Enabled: sometimes\n",
			"Resources.TokensTable.Properties.TimeToLiveSpecification.Enabled"},
		{"dead-letter queue renamed",
			"  JobsDeadLetterQueue:\n", "  JobsDLQ:\n",
			"Resources.JobsDeadLetterQueue"},
		{"redrive to another resource",
			"!GetAtt JobsDeadLetterQueue.Arn", "!GetAtt AlertsTopic.Arn",
			"Resources.JobsQueue.Properties.RedrivePolicy.deadLetterTargetArn"},
		{"redrive to a literal ARN",
			"!GetAtt JobsDeadLetterQueue.Arn", "arn:aws:sqs:us-east-1:1:q",
			"Resources.JobsQueue.Properties.RedrivePolicy.deadLetterTargetArn"},
		{"redrive without maxReceiveCount",
			"        maxReceiveCount: !Ref JobsMaxReceiveCount\n", "",
			"Resources.JobsQueue.Properties.RedrivePolicy"},
		{"maxReceiveCount not a number",
			"maxReceiveCount: !Ref JobsMaxReceiveCount", "maxReceiveCount: five",
			"Resources.JobsQueue.Properties.RedrivePolicy.maxReceiveCount"},
		{"jobs queue without redrive",
			"      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt JobsDeadLetterQueue.Arn\n        maxReceiveCount: !Ref JobsMaxReceiveCount\n", "",
			"Resources.JobsQueue.Properties"},
		{"unknown queue property",
			"      VisibilityTimeout: 180\n", "      VisibilityTimeout: 180\n      FifoQueue: true\n",
			"Resources.JobsQueue.Properties.FifoQueue"},
		{"queue of another type",
			"  AlertsTopic:\n    Type: AWS::SNS::Topic", "  AlertsTopic:\n    Type: AWS::SQS::Queue",
			"Resources.AlertsTopic.Type"},
		{"conditional resource",
			"  AlertsTopic:\n    Type: AWS::SNS::Topic\n", "  AlertsTopic:\n    Type: AWS::SNS::Topic\n    Condition: HasAlertEmail\n",
			"Resources.AlertsTopic.Condition"},
		{"secret key renamed",
			`{"client_id":"REPLACE_ME","client_secret":"REPLACE_ME"}`, `{"clientId":"REPLACE_ME","client_secret":"REPLACE_ME"}`,
			"Resources.ClientSecret.Properties.GenerateSecretString"},
		{"secret template not JSON",
			`'{"client_id":"REPLACE_ME","client_secret":"REPLACE_ME"}'`, `'client_id=REPLACE_ME'`,
			"Resources.ClientSecret.Properties.GenerateSecretString.SecretStringTemplate"},
		{"secret generated key renamed",
			"GenerateStringKey: state_key", "GenerateStringKey: signing_key",
			"Resources.ClientSecret.Properties.GenerateSecretString"},
		{"function env from an unsupported intrinsic",
			"JOBS_QUEUE_URL: !Ref JobsQueue", "JOBS_QUEUE_URL: !GetAtt JobsQueue.Arn",
			"Globals.Function.Environment.Variables.JOBS_QUEUE_URL"},
		{"duplicate key",
			"      VisibilityTimeout: 180\n", "      VisibilityTimeout: 180\n      VisibilityTimeout: 30\n",
			"Resources.JobsQueue.Properties.VisibilityTimeout"},
		{"not YAML",
			"Resources:\n", "Resources: [\n",
			"(root)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := mutate(t, string(pdkit.Template), tt.old, tt.new)
			_, err := infra.Parse([]byte(tmpl))
			var te *infra.TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("Parse = %v, want a *TemplateError at %s", err, tt.wantPath)
			}
			if te.Path != tt.wantPath {
				t.Errorf("Parse error path = %q (%v), want %q", te.Path, err, tt.wantPath)
			}
		})
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "Resources: {}", "- a\n- b\n", "AWSTemplateFormatVersion: x\n---\nb: 1\n"} {
		var te *infra.TemplateError
		if _, err := infra.Parse([]byte(in)); !errors.As(err, &te) {
			t.Errorf("Parse(%q) = %v, want a *TemplateError", in, err)
		}
	}
}

func TestNamesWithPrefix(t *testing.T) {
	n := infra.NamesWithPrefix("dev-")
	want := infra.Names{Table: "dev-tokens", Secret: "dev-client-secret", JobsQueue: "dev-jobs",
		DeadLetterQueue: "dev-jobs-dlq", AlertsTopic: "dev-alerts", TokensKey: "dev-tokens-key", WebhookKeySecret: "dev-webhook-key"}
	if n != want {
		t.Errorf("NamesWithPrefix(dev-) = %+v, want %+v", n, want)
	}
	if err := n.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", n, err)
	}
	bad := []infra.Names{
		infra.NamesWithPrefix("has space-"),
		infra.NamesWithPrefix(strings.Repeat("q", 73)), // jobs-dlq makes 81 characters
		func() infra.Names { n := infra.NamesWithPrefix("x-"); n.DeadLetterQueue = n.JobsQueue; return n }(),
		func() infra.Names { n := infra.NamesWithPrefix("x-"); n.Table = "ab"; return n }(),
		func() infra.Names { n := infra.NamesWithPrefix("x-"); n.TokensKey = "aws/tokens"; return n }(),
		func() infra.Names { n := infra.NamesWithPrefix("x-"); n.TokensKey = "has.dot"; return n }(),
	}
	for _, n := range bad {
		if err := n.Validate(); !errors.Is(err, infra.ErrInvalidName) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidName", n, err)
		}
	}
}

func TestClientCredentialsRedacted(t *testing.T) {
	c := infra.ClientCredentials{ClientID: "the-id", ClientSecret: "s3cr3t-value", StateKey: "st4te-value"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, c)
		if strings.Contains(out, "s3cr3t-value") || strings.Contains(out, "st4te-value") || !strings.Contains(out, "the-id") {
			t.Errorf("Sprintf(%q, creds) = %q, want the client ID and no secret", format, out)
		}
	}
}

// mutate replaces old with new once in s, failing if old is absent so that a test cannot
// pass on an unchanged template.
func mutate(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("template.yaml does not contain %q; update the test", old)
	}
	return strings.Replace(s, old, new, 1)
}

func keys(ks []dbtypes.KeySchemaElement) string {
	var parts []string
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+":"+string(k.KeyType))
	}
	return strings.Join(parts, " ")
}
