package pdkit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// samTransform expands template.yaml as `sam deploy` would (testdata/sam_transform.py, with the
// aws-sam-translator that cfn-lint brings) with the given parameter values, and returns its
// Resources. It fails, never skips, when the translator is missing.
func samTransform(t *testing.T, params map[string]string) map[string]map[string]any {
	t.Helper()
	if params == nil {
		params = map[string]string{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "testdata/sam_transform.py", "template.yaml", string(p))
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("SAM transform (pip install cfn-lint brings aws-sam-translator): %v\n%s", err, stderr.String())
	}
	var doc struct {
		Resources map[string]map[string]any
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("SAM transform output: %v", err)
	}
	return doc.Resources
}

// refs lists every {"Ref": X} and "${X}" in v.
func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "Ref" {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			out = append(out, refs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	case string:
		for rest := v; ; {
			i := strings.Index(rest, "${")
			if i < 0 {
				break
			}
			j := strings.Index(rest[i:], "}")
			if j < 0 {
				break
			}
			out = append(out, rest[i+2:i+j])
			rest = rest[i+j:]
		}
	}
	return out
}

// functions lists the template's AWS::Serverless::Function logical ids.
func functions(t *testing.T) []string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id, r := range mapping(node(&doc, "Resources")) {
		if v := node(r, "Type"); v != nil && v.Value == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) < 4 {
		t.Fatalf("found functions %v, want the four", ids)
	}
	return ids
}

// TestSafeRollouts checks what SAM generates from the template: each function publishes a
// version behind the "live" alias, which CodeDeploy moves with the DeploymentType parameter's
// configuration, rolling back when one of the function's alarms goes off; and every event
// source (the HTTP API's integrations and permissions, the jobs queue's mapping, the
// schedule) invokes the alias, never the unqualified function ($LATEST).
func TestSafeRollouts(t *testing.T) {
	fns := functions(t)
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	alias := node(&doc, "Globals", "Function", "AutoPublishAlias")
	if alias == nil || alias.Value != "live" {
		t.Fatalf("Globals.Function.AutoPublishAlias = %v, want live", alias)
	}
	var types []string
	for _, v := range node(&doc, "Parameters", "DeploymentType", "AllowedValues").Content {
		types = append(types, v.Value)
	}
	if !slices.Contains(types, "AllAtOnce") || !slices.ContainsFunc(types, func(s string) bool { return strings.HasPrefix(s, "Canary") }) ||
		!slices.ContainsFunc(types, func(s string) bool { return strings.HasPrefix(s, "Linear") }) {
		t.Errorf("DeploymentType allows %v, want canary, linear and AllAtOnce types", types)
	}
	if d := node(&doc, "Parameters", "DeploymentType", "Default"); d == nil || !strings.HasPrefix(d.Value, "Canary") {
		t.Errorf("DeploymentType default = %v, want a canary", d)
	}

	for _, tt := range []struct{ deployment, config string }{
		{"", "Canary10Percent5Minutes"}, // the default
		{"AllAtOnce", "AllAtOnce"},
		{"Linear10PercentEvery1Minute", "Linear10PercentEvery1Minute"},
	} {
		params := map[string]string{}
		if tt.deployment != "" {
			params["DeploymentType"] = tt.deployment
		}
		res := samTransform(t, params)
		for _, fn := range fns {
			aliasID := fn + "Aliaslive"
			a := res[aliasID]
			if a == nil || a["Type"] != "AWS::Lambda::Alias" {
				t.Errorf("%s: SAM generated no alias %s", fn, aliasID)
				continue
			}
			g := res[fn+"DeploymentGroup"]
			if g == nil {
				t.Errorf("%s: no CodeDeploy deployment group", fn)
				continue
			}
			props := g["Properties"].(map[string]any)
			b, _ := json.Marshal(props["DeploymentConfigName"])
			if !strings.Contains(string(b), `"`+tt.config+`"`) {
				t.Errorf("%s deployment config = %s, want CodeDeployDefault.Lambda%s", fn, b, tt.config)
			}
			rollback, _ := json.Marshal(props["AutoRollbackConfiguration"])
			if !strings.Contains(string(rollback), "DEPLOYMENT_STOP_ON_ALARM") {
				t.Errorf("%s: no rollback on alarm: %s", fn, rollback)
			}
			alarms := refs(props["AlarmConfiguration"])
			if want := errorsAlarmOf(t, &doc, fn); want == "" || !slices.Contains(alarms, want) {
				t.Errorf("%s rolls back on %v, want its errors alarm %q among them", fn, alarms, want)
			}
		}
		if tt.deployment != "" {
			continue
		}
		// Every event source names an alias, never a function.
		sources := 0
		for id, r := range res {
			var target any
			props, _ := r["Properties"].(map[string]any)
			switch r["Type"] {
			case "AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission":
				target = props["FunctionName"]
			case "AWS::Scheduler::Schedule":
				target = props["Target"].(map[string]any)["Arn"]
			case "AWS::ApiGatewayV2::Api":
				target = props["Body"]
			default:
				continue
			}
			sources++
			for _, ref := range refs(target) {
				name, _, _ := strings.Cut(ref, ".")
				if slices.Contains(fns, name) {
					t.Errorf("%s (%s) invokes %s itself, want its alias %sAliaslive", id, r["Type"], name, name)
				}
			}
			if !slices.ContainsFunc(refs(target), func(s string) bool { return strings.HasSuffix(s, "Aliaslive") }) {
				t.Errorf("%s (%s) names no alias: %v", id, r["Type"], refs(target))
			}
		}
		if sources < 6 {
			t.Errorf("found %d event sources, want the routes, the queue and the schedule", sources)
		}
	}
}

// TestTracingParameter: X-Ray tracing is off by default and one parameter turns it on for
// every function.
func TestTracingParameter(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	if d := node(&doc, "Parameters", "Tracing", "Default"); d == nil || d.Value != "false" {
		t.Errorf("Tracing default = %v, want false", d)
	}
	res := samTransform(t, nil)
	for _, fn := range functions(t) {
		tc, _ := json.Marshal(res[fn]["Properties"].(map[string]any)["TracingConfig"])
		if string(tc) != `{"Mode":{"Fn::If":["TracingOn","Active","PassThrough"]}}` {
			t.Errorf("%s TracingConfig = %s, want Active when Tracing is true, else PassThrough", fn, tc)
		}
	}
	if c := node(&doc, "Conditions", "TracingOn"); c == nil || c.Tag != "!Equals" || len(c.Content) != 2 || c.Content[0].Value != "Tracing" || c.Content[1].Value != "true" {
		t.Errorf("Conditions.TracingOn = %v, want !Equals [!Ref Tracing, \"true\"]", c)
	}
}
