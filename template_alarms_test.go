package pdkit_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// runbook is where every alarm's entry lives; each AlarmDescription points there.
const (
	runbookFile    = "docs/operations.md"
	runbookHeading = "## Alarms and what to do"
	runbookLink    = "Runbook: docs/operations.md#alarms-and-what-to-do."
)

// alarms returns the template's AWS::CloudWatch::Alarm resources by logical id.
func alarms(t *testing.T, doc *yaml.Node) map[string]*yaml.Node {
	t.Helper()
	out := map[string]*yaml.Node{}
	for id, r := range mapping(node(doc, "Resources")) {
		if v := node(r, "Type"); v != nil && v.Value == "AWS::CloudWatch::Alarm" {
			out[id] = node(r, "Properties")
		}
	}
	return out
}

// errorsAlarmOf returns the alarm on fn's Lambda Errors through its "live" alias, or "".
func errorsAlarmOf(t *testing.T, doc *yaml.Node, fn string) string {
	t.Helper()
	for id, p := range alarms(t, doc) {
		if v(node(p, "Namespace")) != "AWS/Lambda" || v(node(p, "MetricName")) != "Errors" {
			continue
		}
		dims := node(p, "Dimensions")
		var name, resource bool
		for _, d := range dims.Content {
			val := node(d, "Value")
			switch v(node(d, "Name")) {
			case "FunctionName":
				name = val.Tag == "!Ref" && val.Value == fn
			case "Resource":
				resource = val.Tag == "!Sub" && val.Value == "${"+fn+"}:live"
			}
		}
		if name && resource {
			return id
		}
	}
	return ""
}

func v(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}

// TestEveryFunctionHasAnErrorsAlarm: each function's crashes and timeouts (Lambda's Errors on
// its live alias) page someone, and roll back a deploy of it.
func TestEveryFunctionHasAnErrorsAlarm(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	for _, fn := range functions(t) {
		id := errorsAlarmOf(t, &doc, fn)
		if id == "" {
			t.Errorf("%s has no alarm on its Errors (FunctionName !Ref %s, Resource !Sub ${%s}:live)", fn, fn, fn)
			continue
		}
		var rollback []string
		if a := node(&doc, "Resources", fn, "Properties", "DeploymentPreference", "Alarms"); a != nil {
			for _, r := range a.Content {
				rollback = append(rollback, r.Value)
			}
		}
		if !slices.Contains(rollback, id) {
			t.Errorf("%s's DeploymentPreference rolls back on %v, want %s among them", fn, rollback, id)
		}
	}
}

// TestAlarmsForWhatAPersonMustSee: the failures Pipedrive never retries for us, and the
// backlogs, each have their alarm on the right metric.
func TestAlarmsForWhatAPersonMustSee(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	all := alarms(t, &doc)
	for _, tt := range []struct {
		id, namespace, metric, dimension, value string
		threshold                               string // a !Ref parameter, or a literal
	}{
		{"CallbackServerErrorsAlarm", "PipedriveKit", "ServerErrors", "Function", "callback", ""},
		{"WebhooksServerErrorsAlarm", "PipedriveKit", "ServerErrors", "Function", "webhooks", ""},
		{"HttpApi5xxAlarm", "AWS/ApiGateway", "5xx", "ApiId", "HttpApi", ""},
		{"JobsQueueAgeAlarm", "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", "JobsQueue.QueueName", "JobsOldestMessageAgeSeconds"},
		{"JobsDeadLetterAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "JobsDeadLetterQueue.QueueName", ""},
	} {
		p := all[tt.id]
		if p == nil {
			t.Errorf("template.yaml has no %s", tt.id)
			continue
		}
		if v(node(p, "Namespace")) != tt.namespace || v(node(p, "MetricName")) != tt.metric {
			t.Errorf("%s watches %s/%s, want %s/%s", tt.id, v(node(p, "Namespace")), v(node(p, "MetricName")), tt.namespace, tt.metric)
		}
		dims := node(p, "Dimensions")
		if dims == nil || len(dims.Content) != 1 || v(node(dims.Content[0], "Name")) != tt.dimension || v(node(dims.Content[0], "Value")) != tt.value {
			t.Errorf("%s dimensions, want exactly %s=%s", tt.id, tt.dimension, tt.value)
		}
		if th := node(p, "Threshold"); tt.threshold != "" && (th == nil || th.Tag != "!Ref" || th.Value != tt.threshold) {
			t.Errorf("%s threshold = %v, want !Ref %s", tt.id, th, tt.threshold)
		}
	}
	if d := node(&doc, "Parameters", "JobsOldestMessageAgeSeconds", "Default"); d == nil {
		t.Error("JobsOldestMessageAgeSeconds has no default")
	}
}

// TestEveryAlarmSaysWhatToDo: every alarm notifies the alerts topic, its description says what
// to do and points to the runbook, and the runbook has an entry for it.
func TestEveryAlarmSaysWhatToDo(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), runbookHeading+"\n")
	if !ok {
		t.Fatalf("%s has no %q section", runbookFile, runbookHeading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	all := alarms(t, &doc)
	if len(all) < 10 {
		t.Errorf("found %d alarms, want at least 10", len(all))
	}
	for id, p := range all {
		desc := v(node(p, "AlarmDescription"))
		if len(desc) < 80 || !strings.HasSuffix(strings.TrimSpace(desc), runbookLink) {
			t.Errorf("%s description %q: want what to do, then %q", id, desc, runbookLink)
		}
		if len(desc) > 1024 {
			t.Errorf("%s description is %d characters, CloudWatch's limit is 1024", id, len(desc))
		}
		if a := node(p, "AlarmActions"); a == nil || len(a.Content) == 0 || a.Content[0].Value != "AlertsTopic" {
			t.Errorf("%s notifies no one (AlarmActions: [!Ref AlertsTopic])", id)
		}
		if !regexp.MustCompile("(?m)^\\| `" + id + "` \\|").MatchString(section) {
			t.Errorf("%s has no row (| `%s` | …) in %s %q", id, id, runbookFile, runbookHeading)
		}
	}
}
