package pdkit_test

import (
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
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
	// The threshold is one schedule period: the RefreshEvery mapping gives, for each allowed
	// RefreshEveryMinutes, the schedule and its period in seconds, and both the schedule and
	// the threshold look the parameter up there.
	if str("ComparisonOperator") != "GreaterThanThreshold" || str("Statistic") != "Maximum" {
		t.Errorf("alarm: %s %s, want Maximum GreaterThanThreshold", str("Statistic"), str("ComparisonOperator"))
	}
	th := node(props, "Threshold")
	if th == nil || th.Tag != "!FindInMap" || len(th.Content) != 3 || th.Content[0].Value != "RefreshEvery" ||
		th.Content[1].Tag != "!Ref" || th.Content[1].Value != "RefreshEveryMinutes" || th.Content[2].Value != "Seconds" {
		t.Errorf("alarm threshold is not !FindInMap [RefreshEvery, !Ref RefreshEveryMinutes, Seconds]")
	}
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	every, ok := spec.Functions["RefresherFunction"].Schedules[0].Every()
	if !ok {
		t.Fatal("RefresherFunction's schedule is not a rate()")
	}
	def := node(&doc, "Parameters", "RefreshEveryMinutes", "Default").Value
	rows := node(&doc, "Mappings", "RefreshEvery")
	if got := node(rows, def, "Seconds"); got == nil || got.Value != strconv.Itoa(int(every/time.Second)) {
		t.Errorf("RefreshEvery[%s].Seconds = %v, want %d (the deployed schedule's period)", def, got, int(every/time.Second))
	}
	var allowed []string
	for _, v := range node(&doc, "Parameters", "RefreshEveryMinutes", "AllowedValues").Content {
		allowed = append(allowed, v.Value)
	}
	if len(allowed) != len(rows.Content)/2 {
		t.Errorf("RefreshEveryMinutes allows %v, RefreshEvery maps %d values: want one row per allowed value", allowed, len(rows.Content)/2)
	}
	for _, m := range allowed {
		sched, secs := node(rows, m, "Schedule"), node(rows, m, "Seconds")
		if sched == nil || secs == nil {
			t.Errorf("RefreshEvery has no row %s", m)
			continue
		}
		period, ok := infra.Schedule{Expression: sched.Value}.Every()
		if n, _ := strconv.Atoi(m); !ok || period != time.Duration(n)*time.Minute || secs.Value != strconv.Itoa(n*60) {
			t.Errorf("RefreshEvery[%s] = %s, %s s; want rate() of %s minutes and %d s", m, sched.Value, secs.Value, m, n*60)
		}
		// One missed run must still leave time before a token in use expires.
		if 2*period > installation.RefreshLead {
			t.Errorf("RefreshEveryMinutes %s: two periods exceed the refresh lead (%v)", m, installation.RefreshLead)
		}
	}
	if actions := node(props, "AlarmActions"); actions == nil || len(actions.Content) == 0 {
		t.Error("the alarm notifies nobody (AlarmActions)")
	}
}
