package pdkit_test

import (
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// secretReads lists the secrets a function's policies let it read (the SecretArn of each
// AWSSecretsManagerGetSecretValuePolicy), split into those it always may read and those only
// under a condition (an !If policy), by the condition's name.
func secretReads(t *testing.T, resources *yaml.Node, fn string) (always []string, when map[string][]string) {
	t.Helper()
	when = map[string][]string{}
	for _, p := range node(resources, fn, "Properties", "Policies").Content {
		cond := ""
		branches := []*yaml.Node{p}
		if p.Tag == "!If" {
			cond, branches = p.Content[0].Value, p.Content[1:]
		}
		for _, b := range branches {
			arn := node(b, "AWSSecretsManagerGetSecretValuePolicy", "SecretArn")
			if arn == nil {
				continue
			}
			if arn.Tag != "!Ref" {
				t.Fatalf("%s reads a secret that is not a !Ref: %v", fn, arn.Value)
			}
			if cond == "" {
				always = append(always, arn.Value)
			} else {
				when[cond] = append(when[cond], arn.Value)
			}
		}
	}
	return always, when
}

// TestReceiverReadsOnlyTheWebhookKey: the webhook receiver may read the webhook key secret and
// not the client secret (client secret and state key), except while the legacy pair is
// accepted during an upgrade (WebhookLegacyUntil set); its CLIENT_SECRET_ID follows the same
// condition. The worker, which registers the webhooks, reads both; the other functions never
// read the webhook key.
func TestReceiverReadsOnlyTheWebhookKey(t *testing.T) {
	resources, fns := functionResources(t)
	for _, fn := range fns {
		always, when := secretReads(t, resources, fn)
		switch fn {
		case "WebhooksFunction":
			if !slices.Equal(always, []string{"WebhookKeySecret"}) {
				t.Errorf("WebhooksFunction always reads %v, want [WebhookKeySecret] only", always)
			}
			if len(when) != 1 || !slices.Equal(when["HasWebhookLegacy"], []string{"ClientSecret"}) {
				t.Errorf("WebhooksFunction reads %v under conditions, want ClientSecret only under HasWebhookLegacy", when)
			}
			id := node(resources, fn, "Properties", "Environment", "Variables", "CLIENT_SECRET_ID")
			if id == nil || id.Tag != "!If" || id.Content[0].Value != "HasWebhookLegacy" || id.Content[2].Value != "" {
				t.Errorf("WebhooksFunction's CLIENT_SECRET_ID is not !If [HasWebhookLegacy, …, \"\"]")
			}
		case "ApiCallFunction":
			if !slices.Contains(always, "WebhookKeySecret") || !slices.Contains(always, "ClientSecret") {
				t.Errorf("ApiCallFunction reads %v, want the client secret and the webhook key (it registers webhooks)", always)
			}
		default:
			if slices.Contains(always, "WebhookKeySecret") || len(when) > 0 {
				t.Errorf("%s reads %v %v: only the receiver and the worker need the webhook key", fn, always, when)
			}
		}
	}
}

// TestPipedriveRoutesHaveTheirOwnThrottling: the routes Pipedrive calls (webhook deliveries,
// uninstall notices) have route settings of their own from parameters whose defaults are above
// the stage's default route budget, so a flood of another route never takes theirs; and the
// reserved concurrency parameters reserve nothing unless set.
func TestPipedriveRoutesHaveTheirOwnThrottling(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	resources, params := node(&doc, "Resources"), node(&doc, "Parameters")
	def := node(resources, "HttpApi", "Properties", "DefaultRouteSettings")
	defRate, _ := strconv.Atoi(node(def, "ThrottlingRateLimit").Value)
	defBurst, _ := strconv.Atoi(node(def, "ThrottlingBurstLimit").Value)
	for _, r := range []struct{ fn, event, rate, burst string }{
		{"WebhooksFunction", "Deliveries", "WebhookRouteRateLimit", "WebhookRouteBurstLimit"},
		{"CallbackFunction", "Uninstall", "UninstallRouteRateLimit", "UninstallRouteBurstLimit"},
	} {
		rs := node(resources, r.fn, "Properties", "Events", r.event, "Properties", "RouteSettings")
		for _, p := range []struct {
			key, param string
			floor      int
		}{{"ThrottlingRateLimit", r.rate, defRate}, {"ThrottlingBurstLimit", r.burst, defBurst}} {
			v := node(rs, p.key)
			if v == nil || v.Tag != "!Ref" || v.Value != p.param {
				t.Errorf("%s.%s: RouteSettings.%s is not !Ref %s", r.fn, r.event, p.key, p.param)
				continue
			}
			n, err := strconv.Atoi(node(params, p.param, "Default").Value)
			if err != nil || n <= p.floor {
				t.Errorf("parameter %s defaults to %d (%v), want more than the default route's %d", p.param, n, err, p.floor)
			}
		}
	}
	for fn, param := range map[string]string{"WebhooksFunction": "WebhooksReservedConcurrency", "CallbackFunction": "CallbackReservedConcurrency"} {
		rc := node(resources, fn, "Properties", "ReservedConcurrentExecutions")
		if rc == nil || rc.Tag != "!If" || rc.Content[1].Value != param || rc.Content[2].Value != "AWS::NoValue" {
			t.Errorf("%s: ReservedConcurrentExecutions is not !If [cond, !Ref %s, !Ref AWS::NoValue]", fn, param)
			continue
		}
		cond := node(&doc, "Conditions", rc.Content[0].Value)
		if cond == nil || node(params, param, "Default").Value != "0" {
			t.Errorf("%s: condition %s missing, or %s does not default to 0 (no reservation)", fn, rc.Content[0].Value, param)
		}
	}
}
