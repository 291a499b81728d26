package pdkit_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

// node finds the mapping value at path (keys) under n, or nil.
func node(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func keys(n *yaml.Node) map[string]bool {
	out := map[string]bool{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = true
	}
	return out
}

// requiredEnv is what each function's main.go refuses to start without (log.Fatal), plus
// what it needs to reach Pipedrive and the alerts topic.
var requiredEnv = map[string][]string{
	"CallbackFunction":  {"TOKENS_TABLE", "CLIENT_SECRET_ID", "REDIRECT_URI", "PIPEDRIVE_OAUTH_URL", "JOBS_QUEUE_URL", "ALERTS_TOPIC_ARN", "SUCCESS_URL", "REQUIRE_STATE"},
	"RefresherFunction": {"TOKENS_TABLE", "CLIENT_SECRET_ID", "PIPEDRIVE_OAUTH_URL", "ALERTS_TOPIC_ARN"},
	"ApiCallFunction":   {"TOKENS_TABLE", "CLIENT_SECRET_ID", "PIPEDRIVE_OAUTH_URL", "JOBS_QUEUE_URL", "JOBS_DLQ_URL", "JOBS_MAX_RECEIVES", "ALERTS_TOPIC_ARN", "WEBHOOK_URL", "WEBHOOK_EVENTS", "WEBHOOK_KEY_SECRET_ID", "APP_NAME"},
	"WebhooksFunction":  {"TOKENS_TABLE", "WEBHOOK_KEY_SECRET_ID", "WEBHOOK_LEGACY_UNTIL", "JOBS_QUEUE_URL"},
}

// TestTemplateMatchesTheFunctions guards the template against drifting from the code: every
// function gets the variables its main.go reads, is built by a Makefile target SAM can call,
// and its code folder exists.
func TestTemplateMatchesTheFunctions(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	resources := node(&doc, "Resources")
	functions := 0
	for name := range keys(resources) {
		res := node(resources, name)
		if node(res, "Type").Value != "AWS::Serverless::Function" {
			continue
		}
		functions++
		want, ok := requiredEnv[name]
		if !ok {
			t.Errorf("function %s has no entry in requiredEnv: add what its main.go reads", name)
			continue
		}
		// Globals and the function's own variables, as infra reads them.
		env := spec.Functions[name].Environment
		for _, v := range want {
			if _, ok := env[v]; !ok {
				t.Errorf("%s: environment variable %s is not set by the template", name, v)
			}
		}
		if m := node(res, "Metadata", "BuildMethod"); m == nil || m.Value != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod is not makefile", name)
		}
		target := regexp.MustCompile(`(?m)^build-` + name + `:\s*\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/(\w+)`).FindSubmatch(makefile)
		if target == nil {
			t.Errorf("%s: Makefile has no build-%s target writing $(ARTIFACTS_DIR)/bootstrap", name, name)
			continue
		}
		if _, err := os.Stat("functions/" + string(target[1]) + "/main.go"); err != nil {
			t.Errorf("%s: build target points at functions/%s, which has no main.go", name, target[1])
		}
	}
	if functions != len(requiredEnv) {
		t.Errorf("template has %d functions, want %d (%s)", functions, len(requiredEnv), strings.Join(mapKeys(requiredEnv), ", "))
	}
}

func mapKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
