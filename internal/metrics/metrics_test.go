package metrics_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func emitter(buf *bytes.Buffer) *metrics.Emitter {
	return &metrics.Emitter{Out: buf, Function: "refresher", Now: func() time.Time { return t0 }}
}

func TestCountWritesOneEMFLine(t *testing.T) {
	var buf bytes.Buffer
	emitter(&buf).Count(metrics.Refreshes, metrics.Outcome("refreshed"))

	// The exact shape CloudWatch reads (the EMF specification's example, with our names).
	want := map[string]any{
		"_aws": map[string]any{
			"Timestamp": float64(t0.UnixMilli()),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "PipedriveKit",
				"Dimensions": []any{[]any{"Function"}, []any{"Function", "Outcome"}},
				"Metrics":    []any{map[string]any{"Name": "Refreshes", "Unit": "Count"}},
			}},
		},
		"Function":  "refresher",
		"Outcome":   "refreshed",
		"Refreshes": float64(1),
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("line %q is not JSON: %v", buf.String(), err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Count() wrote %s\nwant %v", buf.String(), want)
	}
	if strings.Count(buf.String(), "\n") != 1 || !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("Count() wrote %q, want exactly one line", buf.String())
	}
}

func TestParseRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	e := emitter(&buf)
	buf.WriteString(`{"level":"INFO","msg":"refresh refreshed","company_id":1}` + "\n") // a log line between
	e.Job("retry", "rate_limited", 429)
	e.Job("deferred", "daily_budget_exceeded", 429)
	e.Job("succeeded", "ok", 200)
	e.Age(t0.Add(-90*time.Second), t0)
	e.Put(metrics.TokenCalls, metrics.Count, 2, metrics.Outcome(""))
	buf.WriteString("not json at all\n")

	pts, err := metrics.Parse(&buf)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name string
		dims []metrics.Dim
		want float64
	}{
		{metrics.Jobs, nil, 3},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("retry"), metrics.Reason("rate_limited")}, 1},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("succeeded")}, 1},
		{metrics.RateLimited, nil, 2},
		{metrics.RateLimited, []metrics.Dim{metrics.Reason("daily_budget_exceeded")}, 1},
		{metrics.Pauses, nil, 1},
		{metrics.DueBacklogAge, nil, 90},
		{metrics.TokenCalls, []metrics.Dim{metrics.Outcome("none")}, 2},
	}
	for _, tt := range tests {
		if got := metrics.Sum(pts, tt.name, tt.dims...); got != tt.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tt.name, tt.dims, got, tt.want)
		}
	}
	for _, p := range pts {
		if p.Namespace != metrics.Namespace || p.Dims["Function"] != "refresher" || p.Timestamp != t0.UnixMilli() {
			t.Errorf("point %+v: want namespace %s, Function refresher, timestamp %d", p, metrics.Namespace, t0.UnixMilli())
		}
		if p.Name == metrics.DueBacklogAge && p.Unit != metrics.Seconds {
			t.Errorf("DueBacklogAge unit = %s, want Seconds", p.Unit)
		}
	}
}

func TestAgeNeverNegative(t *testing.T) {
	for _, oldest := range []time.Time{{}, t0.Add(time.Hour)} {
		var buf bytes.Buffer
		emitter(&buf).Age(oldest, t0)
		pts, err := metrics.Parse(&buf)
		if err != nil || len(pts) != 1 || pts[0].Value != 0 {
			t.Errorf("Age(%v, now) = %+v, %v; want one 0", oldest, pts, err)
		}
	}
}

func TestNilEmitterWritesNothing(t *testing.T) {
	var e *metrics.Emitter
	e.Count(metrics.Refreshes) // must not panic
	e.Job("succeeded", "ok", 200)
	e.Age(t0, t0)
}

func TestParseRejectsBrokenEMF(t *testing.T) {
	for _, line := range []string{
		`{"_aws":{"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":1}`,                    // no timestamp
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":1}`,                      // no namespace
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[],"Metrics":[{"Name":"M"}]}]},"M":"x"}`,    // value not a number
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]},"M":1}`, // dimension absent
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}`,
		`{"_aws": truncated`,
	} {
		if _, err := metrics.Parse(strings.NewReader(line)); err == nil {
			t.Errorf("Parse(%s) = nil error, want one", line)
		}
	}
}

// TestConcurrentLinesStayWhole writes from many goroutines into a plain bytes.Buffer: without the
// Emitter's own lock the race detector fails this test, and interleaved lines would not parse.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	e := &metrics.Emitter{Out: &buf, Function: "apicall"}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { e.Job("succeeded", "ok", 200) })
	}
	wg.Wait()
	pts, err := metrics.Parse(&buf)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := metrics.Sum(pts, metrics.Jobs); got != 50 {
		t.Errorf("Sum(Jobs) = %v, want 50", got)
	}
}

func TestNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range metrics.Names {
		if n == "" || seen[n] {
			t.Errorf("metric name %q empty or listed twice", n)
		}
		seen[n] = true
	}
}

// TestAnswerCountsOnly5xx: ServerErrors counts 5xx answers with their reason, nothing else.
func TestAnswerCountsOnly5xx(t *testing.T) {
	var out bytes.Buffer
	e := &metrics.Emitter{Out: &out, Function: "callback"}
	for _, st := range []int{200, 302, 401, 429, 499} {
		e.Answer(st, "fine")
	}
	e.Answer(500, "store_failed")
	e.Answer(503, "pipedrive_unavailable")
	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got := metrics.Sum(pts, metrics.ServerErrors); got != 2 {
		t.Errorf("ServerErrors = %v, want 2 (the 500 and the 503)", got)
	}
	if got := metrics.Sum(pts, metrics.ServerErrors, metrics.Reason("store_failed")); got != 1 {
		t.Errorf("ServerErrors{store_failed} = %v, want 1", got)
	}
}
