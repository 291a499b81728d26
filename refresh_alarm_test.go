package pdkit_test

import (
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
)

// TestRefreshBacklogAlarm: the alarm on the refresh backlog watches the metric the refresher
// publishes (metrics.DueBacklogAge, its Function dimension) and fires when the oldest due
// installation has waited longer than one period of the refresher's schedule.
func TestRefreshBacklogAlarm(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	alarm := node(&doc, "Resources", "RefreshBacklogAlarm")
	if alarm == nil {
		t.Fatal("template.yaml has no RefreshBacklogAlarm")
	}
	props := node(alarm, "Properties")
	str := func(key string) string {
		if n := node(props, key); n != nil {
			return n.Value
		}
		return ""
	}
	if got := node(alarm, "Type").Value; got != "AWS::CloudWatch::Alarm" {
		t.Errorf("RefreshBacklogAlarm type = %s", got)
	}
	if str("Namespace") != metrics.Namespace || str("MetricName") != metrics.DueBacklogAge {
		t.Errorf("alarm watches %s/%s, want %s/%s", str("Namespace"), str("MetricName"), metrics.Namespace, metrics.DueBacklogAge)
	}
	dims := node(props, "Dimensions")
	if dims == nil || len(dims.Content) != 1 || node(dims.Content[0], "Name").Value != metrics.DimFunction || node(dims.Content[0], "Value").Value != "refresher" {
		t.Errorf("alarm dimensions: want exactly %s=refresher (main.go's metrics.New(\"refresher\"))", metrics.DimFunction)
	}
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	every, ok := spec.Functions["RefresherFunction"].Schedules[0].Every()
	if !ok {
		t.Fatal("RefresherFunction's schedule is not a rate()")
	}
	if want := strconv.Itoa(int(every / time.Second)); str("Threshold") != want || str("ComparisonOperator") != "GreaterThanThreshold" || str("Statistic") != "Maximum" {
		t.Errorf("alarm: %s %s %s, want Maximum GreaterThanThreshold %s (one schedule period in seconds)", str("Statistic"), str("ComparisonOperator"), str("Threshold"), want)
	}
	if actions := node(props, "AlarmActions"); actions == nil || len(actions.Content) == 0 {
		t.Error("the alarm notifies nobody (AlarmActions)")
	}
}
