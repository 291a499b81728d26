package pdkit_test

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

// functionResources returns the template's resources and the logical IDs of its functions.
func functionResources(t *testing.T) (*yaml.Node, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	resources := node(&doc, "Resources")
	var fns []string
	for name := range keys(resources) {
		if node(resources, name, "Type").Value == "AWS::Serverless::Function" {
			fns = append(fns, name)
		}
	}
	slices.Sort(fns)
	if len(fns) == 0 {
		t.Fatal("template.yaml defines no function")
	}
	return resources, fns
}

// policyText flattens a function's Policies into "Name" for SAM policy templates and the
// actions of inline statements, so tests can look for what a role may do.
func policyText(n *yaml.Node) (templates []string, actions []string) {
	if n == nil {
		return nil, nil
	}
	for _, p := range n.Content {
		for name := range keys(p) {
			if name != "Statement" {
				templates = append(templates, name)
				continue
			}
			for _, st := range node(p, "Statement").Content {
				a := node(st, "Action")
				switch {
				case a == nil:
				case a.Kind == yaml.ScalarNode:
					actions = append(actions, a.Value)
				default:
					for _, x := range a.Content {
						actions = append(actions, x.Value)
					}
				}
			}
		}
	}
	return templates, actions
}

// TestFunctionsHaveLeastPrivilege: no function may read the whole table (no CRUD policy
// template, no Scan, no batch reads), and only the refresher and the worker may decrypt the
// tokens; the callback may only seal them, the webhook receiver may do neither.
func TestFunctionsHaveLeastPrivilege(t *testing.T) {
	resources, fns := functionResources(t)
	mayDecrypt := map[string]bool{"RefresherFunction": true, "ApiCallFunction": true}
	maySeal := map[string]bool{"RefresherFunction": true, "ApiCallFunction": true, "CallbackFunction": true}
	for _, fn := range fns {
		templates, actions := policyText(node(resources, fn, "Properties", "Policies"))
		for _, tpl := range templates {
			if strings.HasPrefix(tpl, "DynamoDB") {
				t.Errorf("%s has the policy template %s: list the DynamoDB actions it uses instead", fn, tpl)
			}
		}
		for _, a := range actions {
			switch {
			case strings.Contains(a, "*"):
				t.Errorf("%s may %s: wildcard actions are not least privilege", fn, a)
			case a == "dynamodb:Scan", a == "dynamodb:BatchGetItem", a == "dynamodb:PartiQLSelect":
				t.Errorf("%s may %s: a function reads single items or the due index, never the whole table", fn, a)
			case a == "kms:Decrypt" && !mayDecrypt[fn]:
				t.Errorf("%s may kms:Decrypt: only the refresher and the worker may open tokens", fn)
			case (a == "kms:GenerateDataKey" || a == "kms:Encrypt") && !maySeal[fn]:
				t.Errorf("%s may %s: it stores no token", fn, a)
			}
		}
		has := func(a string) bool { return slices.Contains(actions, a) }
		if mayDecrypt[fn] && (!has("kms:Decrypt") || !has("kms:GenerateDataKey")) {
			t.Errorf("%s lacks kms:Decrypt or kms:GenerateDataKey: it opens and seals tokens", fn)
		}
		if fn == "CallbackFunction" && !has("kms:GenerateDataKey") {
			t.Errorf("CallbackFunction lacks kms:GenerateDataKey: it seals the tokens it stores")
		}
	}
}

// TestFunctionsLogWithRetention: each function logs to its own log group, which the template
// defines with a retention.
func TestFunctionsLogWithRetention(t *testing.T) {
	resources, fns := functionResources(t)
	for _, fn := range fns {
		ref := node(resources, fn, "Properties", "LoggingConfig", "LogGroup")
		if ref == nil || ref.Tag != "!Ref" {
			t.Errorf("%s: LoggingConfig.LogGroup is not a !Ref of a log group", fn)
			continue
		}
		group := node(resources, ref.Value)
		if group == nil || node(group, "Type").Value != "AWS::Logs::LogGroup" {
			t.Errorf("%s logs to %s, which is not an AWS::Logs::LogGroup of the template", fn, ref.Value)
			continue
		}
		if node(group, "Properties", "RetentionInDays") == nil {
			t.Errorf("%s's log group %s has no RetentionInDays", fn, ref.Value)
		}
		if name := node(group, "Properties", "LogGroupName"); name == nil || !strings.HasPrefix(name.Value, "/aws/lambda/") || !strings.HasSuffix(name.Value, fn) {
			t.Errorf("%s's log group is named %v, want /aws/lambda/<stack>-%s", fn, name, fn)
		}
	}
}

// TestWorkerConcurrencyIsCapped: the jobs queue cannot start more worker invocations than the
// WorkerMaxConcurrency parameter, which leaves the account's concurrency to the callback.
func TestWorkerConcurrencyIsCapped(t *testing.T) {
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	q := spec.Functions["ApiCallFunction"].Queues
	if len(q) != 1 || q[0].MaximumConcurrency < 2 || q[0].MaximumConcurrency >= 10 {
		t.Errorf("ApiCallFunction queue sources = %+v, want one with MaximumConcurrency 2..9 (new accounts have 10)", q)
	}
	p, ok := spec.Parameters["WorkerMaxConcurrency"]
	if !ok || p.Default == nil || p.Type != "Number" {
		t.Errorf("parameter WorkerMaxConcurrency = %+v, want a Number with a default", p)
	}
}
