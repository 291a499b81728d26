package infra_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

// TestFunctionSettings reads every function's settings from the real template.
func TestFunctionSettings(t *testing.T) {
	spec := parseTemplate(t)
	if got := slices.Sorted(maps.Keys(spec.Functions)); !slices.Equal(got, []string{"ApiCallFunction", "CallbackFunction", "RefresherFunction", "WebhooksFunction"}) {
		t.Fatalf("Functions = %v, want the four functions", got)
	}
	cb, rf, wk := spec.Functions["CallbackFunction"], spec.Functions["RefresherFunction"], spec.Functions["ApiCallFunction"]

	tests := []struct {
		name      string
		got, want any
	}{
		{"callback timeout (Globals)", cb.Timeout, 15 * time.Second},
		{"refresher timeout (own)", rf.Timeout, 120 * time.Second},
		{"worker timeout (own)", wk.Timeout, 30 * time.Second},
		{"memory size (Globals)", wk.MemorySize, 256},
		{"callback routes", cb.Routes, []infra.Route{{"GET", "/oauth/callback"}, {"GET", "/oauth/install"}, {"DELETE", "/oauth/callback"}}},
		{"refresher has no routes", len(rf.Routes), 0},
		{"webhook receiver route", spec.Functions["WebhooksFunction"].Routes, []infra.Route{{"POST", "/pipedrive/webhooks"}}},
		{"webhook receiver timeout (own)", spec.Functions["WebhooksFunction"].Timeout, 10 * time.Second},
		{"refresher schedule", rf.Schedules, []infra.Schedule{{Expression: "rate(5 minutes)", MaximumRetryAttempts: 0}}},
		{"worker SQS source", wk.Queues, []infra.QueueSource{{Queue: infra.JobsQueueID, BatchSize: 10, FunctionResponseTypes: []string{"ReportBatchItemFailures"}}}},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s = %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
	if every, ok := rf.Schedules[0].Every(); !ok || every != 5*time.Minute {
		t.Errorf("refresher Schedule.Every() = %v, %v; want 5m0s, true", every, ok)
	}
	if !wk.Queues[0].ReportsBatchItemFailures() {
		t.Errorf("worker ReportsBatchItemFailures() = false, want true")
	}
	// Environment: Globals overlaid with the function's own.
	for _, name := range []string{"TOKENS_TABLE", "PIPEDRIVE_OAUTH_URL", "REDIRECT_URI", "REQUIRE_STATE"} {
		if _, ok := cb.Environment[name]; !ok {
			t.Errorf("CallbackFunction environment lacks %s", name)
		}
	}
	if _, ok := rf.Environment["REDIRECT_URI"]; ok {
		t.Errorf("RefresherFunction environment has REDIRECT_URI, want only the callback's")
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []infra.Route:
		return slices.Equal(a, b.([]infra.Route))
	case []infra.Schedule:
		return slices.Equal(a, b.([]infra.Schedule))
	case []infra.QueueSource:
		bb := b.([]infra.QueueSource)
		return slices.EqualFunc(a, bb, func(x, y infra.QueueSource) bool {
			return x.Queue == y.Queue && x.BatchSize == y.BatchSize && slices.Equal(x.FunctionResponseTypes, y.FunctionResponseTypes)
		})
	}
	return a == b
}

func TestScheduleEvery(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
		ok   bool
	}{
		{"rate(1 minute)", time.Minute, true},
		{"rate(5 minutes)", 5 * time.Minute, true},
		{"rate(2 hours)", 2 * time.Hour, true},
		{"rate(1 day)", 24 * time.Hour, true},
		{"rate(0 minutes)", 0, false},
		{"cron(0 12 * * ? *)", 0, false},
		{"rate(5 weeks)", 0, false},
	}
	for _, tt := range tests {
		got, ok := infra.Schedule{Expression: tt.expr}.Every()
		if got != tt.want || ok != tt.ok {
			t.Errorf("Schedule{%q}.Every() = %v, %v; want %v, %v", tt.expr, got, ok, tt.want, tt.ok)
		}
	}
}

// TestShortTagsResolve adds a variable per intrinsic to the worker's environment and checks
// what each resolves to, with parameters at their defaults.
func TestShortTagsResolve(t *testing.T) {
	tmpl := mutate(t, string(pdkit.Template), "Mappings:\n", `Mappings:
  Limits:
    jobs:
      batch: "7"
`)
	tmpl = mutate(t, tmpl, "Conditions:\n", `Conditions:
  IsMarketplace: !Equals [!Ref RequireState, "false"]
`)
	tmpl = mutate(t, tmpl, "          JOBS_DLQ_URL: !Ref JobsDeadLetterQueue\n", `          JOBS_DLQ_URL: !Ref JobsDeadLetterQueue
          T_REF_PARAM: !Ref WebhookEvents
          T_SUB: !Sub "${JobsQueue}|${WebhookEvents}|${!Literal}"
          T_SUB_VARS: !Sub ["${a}-${JobsMaxReceiveCount}", {a: !Ref AlertsTopic}]
          T_IF: !If [IsMarketplace, yes, no]
          T_IF_NOT: !If [HasAlertEmail, mail, nomail]
          T_NOT: !Not [!Equals [!Ref SuccessURL, ""]]
          T_FIND: !FindInMap [Limits, jobs, batch]
          T_LONG: {"Fn::Sub": "${TokensTable}!"}
          T_NO_DEFAULT: !Sub "${TNoDefault}/x"
`)
	tmpl = mutate(t, tmpl, "Parameters:\n", "Parameters:\n  TNoDefault:\n    Type: String\n")
	spec, err := infra.Parse([]byte(tmpl))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	res := &infra.Resources{TableName: "tbl", JobsQueueURL: "http://q/jobs", AlertsTopicARN: "arn:topic", DeadLetterQueueURL: "http://q/dlq"}
	env, err := spec.FunctionEnv("ApiCallFunction", spec.Scope(func(name string) (string, bool) {
		switch name {
		case infra.HTTPAPIID:
			return "api", true
		case "AWS::Region":
			return "eu-west-1", true
		}
		return res.Ref(name)
	}))
	if err != nil {
		t.Fatalf("FunctionEnv = %v", err)
	}
	want := map[string]string{
		"T_REF_PARAM": "deal.*,person.*",
		"T_SUB":       "http://q/jobs|deal.*,person.*|${Literal}",
		"T_SUB_VARS":  "arn:topic-12",
		"T_IF":        "yes",
		"T_IF_NOT":    "nomail",
		"T_NOT":       "false",
		"T_FIND":      "7",
		"T_LONG":      "tbl!",
	}
	for k, w := range want {
		if env[k] != w {
			t.Errorf("%s = %q, want %q", k, env[k], w)
		}
	}
	if v, ok := env["T_NO_DEFAULT"]; ok {
		t.Errorf("T_NO_DEFAULT = %q, want it left out (TNoDefault has no default)", v)
	}
}

// TestParseFunctionErrors feeds broken functions: each must fail with a *TemplateError at
// the offending place.
func TestParseFunctionErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		wantPath string
	}{
		{"unknown function property",
			"      Timeout: 30\n", "      Timeout: 30\n      ReservedConcurrentExecutions: 5\n",
			"Resources.ApiCallFunction.Properties.ReservedConcurrentExecutions"},
		{"unknown Globals setting",
			"    Handler: bootstrap\n", "    Handler: bootstrap\n    ReservedConcurrentExecutions: 5\n",
			"Globals.Function.ReservedConcurrentExecutions"},
		{"unknown event property",
			"            BatchSize: 10\n", "            BatchSize: 10\n            Enabled: false\n",
			"Resources.ApiCallFunction.Properties.Events.Jobs.Properties.Enabled"},
		{"property of another event type",
			"            BatchSize: 10\n", "            BatchSize: 10\n            Path: /x\n",
			"Resources.ApiCallFunction.Properties.Events.Jobs.Properties.Path"},
		{"unsupported event type",
			"          Type: ScheduleV2\n", "          Type: Schedule\n",
			"Resources.RefresherFunction.Properties.Events.Schedule.Type"},
		{"intrinsic where a literal is wanted",
			"            Method: DELETE\n", "            Method: !Ref RequireState\n",
			"Resources.CallbackFunction.Properties.Events.Uninstall.Properties.Method"},
		{"timeout not a number",
			"      Timeout: 120\n", "      Timeout: two minutes\n",
			"Resources.RefresherFunction.Properties.Timeout"},
		{"unknown short tag",
			"REQUIRE_STATE: !Ref RequireState", "REQUIRE_STATE: !Bogus RequireState",
			"Resources.CallbackFunction.Properties.Environment.Variables.REQUIRE_STATE"},
		{"Ref of nothing",
			"REQUIRE_STATE: !Ref RequireState", "REQUIRE_STATE: !Ref NoSuchThing",
			"Resources.CallbackFunction.Properties.Environment.Variables.REQUIRE_STATE"},
		{"SQS source not a queue ARN",
			"            Queue: !GetAtt JobsQueue.Arn\n", "            Queue: !Ref JobsQueue\n",
			"Resources.ApiCallFunction.Properties.Events.Jobs.Properties.Queue"},
		{"unknown parameter key",
			"    Type: Number\n    Default: 12\n", "    Type: Number\n    Default: 12\n    Unit: count\n",
			"Parameters.JobsMaxReceiveCount.Unit"},
		{"maxReceiveCount parameter not a number",
			"    Type: Number\n    Default: 12\n", "    Type: Number\n    Default: twelve\n",
			"Resources.JobsQueue.Properties.RedrivePolicy.maxReceiveCount"},
		{"unknown top-level section",
			"Globals:\n", "Rules: {}\nGlobals:\n",
			"Rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := infra.Parse([]byte(mutate(t, string(pdkit.Template), tt.old, tt.new)))
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

// TestValueLongAndShortFormsAgree checks that both spellings decode to the same call.
func TestValueLongAndShortFormsAgree(t *testing.T) {
	short := mutate(t, string(pdkit.Template), "Queue: !GetAtt JobsQueue.Arn", "Queue: !GetAtt [JobsQueue, Arn]")
	long := mutate(t, string(pdkit.Template), "Queue: !GetAtt JobsQueue.Arn", `Queue: {"Fn::GetAtt": JobsQueue.Arn}`)
	for name, tmpl := range map[string]string{"list": short, "long": long} {
		spec, err := infra.Parse([]byte(tmpl))
		if err != nil {
			t.Fatalf("Parse(%s form) = %v", name, err)
		}
		if got := spec.Functions["ApiCallFunction"].Queues[0].Queue; got != infra.JobsQueueID {
			t.Errorf("%s form: SQS queue = %q, want %s", name, got, infra.JobsQueueID)
		}
	}
	if !strings.Contains(string(pdkit.Template), "!GetAtt JobsQueue.Arn") {
		t.Fatal("template changed; update the test")
	}
}
