package pdkit_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
)

// emitters are the Function dimension values the functions' metrics.Emitters use (their
// wire.Options names).
var emitters = []string{"callback", "refresher", "apicall", "webhooks"}

// metricRef is one metric the template's alarms or dashboard read from PipedriveKit.
type metricRef struct {
	where, name string
	dims        map[string]string
}

// dashboardBody returns the Dashboard's DashboardBody, its !Sub variables replaced by
// placeholders, as JSON.
func dashboardBody(t *testing.T, root *yaml.Node) map[string]any {
	t.Helper()
	n := node(root, "Resources", "Dashboard", "Properties", "DashboardBody")
	if n != nil && n.Tag == "!Sub" && n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
		n = n.Content[0] // !Sub [body, {variables}]
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		t.Fatalf("Resources.Dashboard.Properties.DashboardBody is not a !Sub string")
	}
	vars := regexp.MustCompile(`\$\{[A-Za-z0-9:.]+\}`)
	// A variable where JSON wants a number (an annotation's value) becomes 0.
	body := regexp.MustCompile(`(:\s*)\$\{[A-Za-z0-9:.]+\}`).ReplaceAllString(n.Value, "${1}0")
	body = vars.ReplaceAllString(body, "placeholder")
	var out map[string]any
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("DashboardBody is not JSON after !Sub: %v", err)
	}
	return out
}

// TestDashboardAndAlarmsUseTheEmittedMetrics checks the template against internal/metrics, the
// one list of names: every PipedriveKit metric the dashboard and the alarms read is one the
// code writes, with a Function the code uses, and the dashboard shows each of them.
func TestDashboardAndAlarmsUseTheEmittedMetrics(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &root); err != nil {
		t.Fatal(err)
	}
	var refs []metricRef
	search := regexp.MustCompile(`SEARCH\('\{([^}]*)\}([^']*)'`)
	metricName := regexp.MustCompile(`MetricName="([^"]+)"`)

	body := dashboardBody(t, &root)
	widgets, _ := body["widgets"].([]any)
	if len(widgets) == 0 {
		t.Fatal("the dashboard has no widgets")
	}
	titles := map[string]bool{}
	var dlq bool
	for _, w := range widgets {
		props, _ := w.(map[string]any)["properties"].(map[string]any)
		title, _ := props["title"].(string)
		titles[title] = true
		rows, _ := props["metrics"].([]any)
		if len(rows) == 0 {
			t.Errorf("widget %q has no metrics", title)
		}
		for _, r := range rows {
			row, _ := r.([]any)
			if len(row) == 0 {
				t.Errorf("widget %q has an empty metrics row", title)
				continue
			}
			if opts, ok := row[0].(map[string]any); ok {
				expr, _ := opts["expression"].(string)
				m := search.FindStringSubmatch(expr)
				if m == nil || metricName.FindStringSubmatch(m[2]) == nil {
					t.Errorf("widget %q: expression %q is not a SEARCH over a named metric", title, expr)
					continue
				}
				schema := regexp.MustCompile(`\s*,\s*`).Split(m[1], -1)
				if schema[0] != metrics.Namespace {
					t.Errorf("widget %q searches namespace %q, want %q", title, schema[0], metrics.Namespace)
				}
				refs = append(refs, metricRef{where: "dashboard " + title, name: metricName.FindStringSubmatch(m[2])[1]})
				continue
			}
			var names []string
			for _, v := range row {
				if s, ok := v.(string); ok {
					names = append(names, s)
				}
			}
			if len(names) < 2 || len(names)%2 != 0 {
				t.Errorf("widget %q: metrics row %v is not [namespace, name, dim, value, …]", title, row)
				continue
			}
			if names[0] == "AWS/SQS" && names[1] == "ApproximateNumberOfMessagesVisible" {
				dlq = true
			}
			if names[0] != metrics.Namespace {
				continue
			}
			dims := map[string]string{}
			for i := 2; i+1 < len(names); i += 2 {
				dims[names[i]] = names[i+1]
			}
			refs = append(refs, metricRef{where: "dashboard " + title, name: names[1], dims: dims})
		}
	}
	if !dlq {
		t.Errorf("the dashboard does not show the dead-letter queue's depth")
	}

	// The alarms: single-metric ones and the metric-math ones.
	for id, res := range mapping(node(&root, "Resources")) {
		if v := node(res, "Type"); v == nil || v.Value != "AWS::CloudWatch::Alarm" {
			continue
		}
		props := node(res, "Properties")
		if ns := node(props, "Namespace"); ns != nil && ns.Value == metrics.Namespace {
			refs = append(refs, metricRef{where: "alarm " + id, name: node(props, "MetricName").Value, dims: dimsOf(node(props, "Dimensions"))})
		}
		if ms := node(props, "Metrics"); ms != nil {
			for _, m := range ms.Content {
				metric := node(m, "MetricStat", "Metric")
				if metric == nil || node(metric, "Namespace").Value != metrics.Namespace {
					continue
				}
				refs = append(refs, metricRef{where: "alarm " + id, name: node(metric, "MetricName").Value, dims: dimsOf(node(metric, "Dimensions"))})
			}
		}
	}

	shown := map[string]bool{}
	for _, r := range refs {
		if !slices.Contains(metrics.Names, r.name) {
			t.Errorf("%s reads %s/%s, which the code never writes (internal/metrics.Names: %v)", r.where, metrics.Namespace, r.name, metrics.Names)
		}
		if fn, ok := r.dims[metrics.DimFunction]; ok && !slices.Contains(emitters, fn) {
			t.Errorf("%s reads %s with Function=%q, no function emits under that name (%v)", r.where, r.name, fn, emitters)
		}
		for k := range r.dims {
			if k != metrics.DimFunction && k != metrics.DimOutcome && k != metrics.DimReason {
				t.Errorf("%s reads %s with dimension %q, which the code never writes", r.where, r.name, k)
			}
		}
		if r.where[:9] == "dashboard" {
			shown[r.name] = true
		}
	}
	for _, n := range metrics.Names {
		if !shown[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
	// The alarms that mean a person must act.
	for _, id := range []string{"RefreshBacklogAlarm", "RefreshFailureRateAlarm", "JobsDeadLetterAlarm"} {
		if node(&root, "Resources", id, "Properties", "AlarmActions") == nil {
			t.Errorf("alarm %s is missing or notifies no one", id)
		}
	}
}

func mapping(n *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		out[n.Content[i].Value] = n.Content[i+1]
	}
	return out
}

func dimsOf(n *yaml.Node) map[string]string {
	out := map[string]string{}
	if n == nil {
		return out
	}
	for _, d := range n.Content {
		if name, value := node(d, "Name"), node(d, "Value"); name != nil && value != nil {
			out[name.Value] = value.Value
		}
	}
	return out
}
