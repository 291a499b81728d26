// Package metrics writes CloudWatch metrics in the Embedded Metric Format (EMF): one JSON line
// per data point on the function's standard output, which Lambda sends to CloudWatch Logs and
// CloudWatch turns into metrics. No API call is made, so emitting never slows a function down
// or fails it.
//
// Dimensions are kept to a few low-cardinality values (Function, Outcome, Reason): a company or
// user id as a dimension would create a metric per customer. Ids belong in the log lines.
//
// The metric names are constants here, and template.yaml's alarms and dashboard use the same
// names (a test checks it), so one list of names serves the code and the operators.
package metrics

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Namespace is the CloudWatch namespace of every metric this package writes.
const Namespace = "PipedriveKit"

// The metric names. Each is documented with its unit and its dimensions (after Function,
// which every metric has).
const (
	// Refreshes counts refresh attempts of single installations, by Outcome (refresh.Outcome:
	// refreshed, fresh, needs_reauthorization, retry_later, failed, …).
	Refreshes = "Refreshes"
	// TokenCalls counts requests to Pipedrive's token endpoint, by Outcome (the pderrors
	// action of the answer: succeed, retry, reauthorize, dead_letter, …).
	TokenCalls = "TokenCalls"
	// Jobs counts the worker's job decisions, by Outcome (worker.Outcome) and Reason.
	Jobs = "Jobs"
	// RateLimited counts answers with HTTP 429 from Pipedrive, by Reason (rate_limited,
	// daily_budget_exceeded).
	RateLimited = "RateLimited"
	// Pauses counts jobs held back because the company's daily API budget is spent.
	Pauses = "Pauses"
	// WebhookDeliveries counts Pipedrive's webhook deliveries, by Outcome (the receiver's
	// action: queued, duplicate, dropped, rejected, …) and Reason.
	WebhookDeliveries = "WebhookDeliveries"
	// WebhookDuplicates counts deliveries of an event already received (Pipedrive retries).
	WebhookDuplicates = "WebhookDuplicates"
	// OAuthRequests counts the callback function's answers, by Outcome (the action logged:
	// redirect, succeed, reject, retry, error, uninstall, …) and Reason: installs, denied
	// installs, expired codes, outages and uninstalls at a glance.
	OAuthRequests = "OAuthRequests"
	// ServerErrors counts the HTTP functions' answers with a 5xx status (callback, webhooks),
	// by Reason: a failed install or uninstall the user or Pipedrive saw, a delivery Pipedrive
	// must retry. The callback's and the receiver's 5xx alarms watch it.
	ServerErrors = "ServerErrors"
	// DueBacklogAge is, per refresher run, how long the oldest installation due for a refresh
	// has been due, in seconds (0 when nothing is overdue).
	DueBacklogAge = "DueBacklogAge"
)

// Names lists every metric name above, for the template test.
var Names = []string{Refreshes, TokenCalls, Jobs, RateLimited, Pauses, WebhookDeliveries, WebhookDuplicates, OAuthRequests, ServerErrors, DueBacklogAge}

// Dimension names.
const (
	DimFunction = "Function"
	DimOutcome  = "Outcome"
	DimReason   = "Reason"
)

// Unit is a CloudWatch unit.
type Unit string

// The units this package writes.
const (
	Count   Unit = "Count"
	Seconds Unit = "Seconds"
)

// Dim is one dimension: a name and a low-cardinality value.
type Dim struct {
	Name, Value string
}

// Outcome is the Outcome dimension.
func Outcome(v string) Dim { return Dim{DimOutcome, v} }

// Reason is the Reason dimension.
func Reason(v string) Dim { return Dim{DimReason, v} }

// Emitter writes EMF lines. A nil *Emitter writes nothing, so a component holds an optional
// *Emitter field and calls it unconditionally. Safe for concurrent use: each data point is one
// Write of one line.
type Emitter struct {
	// Out receives the lines; os.Stdout when nil (where Lambda collects them).
	Out io.Writer
	// Function is the Function dimension of every metric ("refresher", "apicall", …).
	Function string
	// Now stamps each line; time.Now when nil.
	Now func() time.Time

	mu sync.Mutex
}

// New returns an Emitter for function writing to stdout.
func New(function string) *Emitter { return &Emitter{Function: function} }

// Count adds one to name, with dims after Function.
func (e *Emitter) Count(name string, dims ...Dim) { e.Put(name, Count, 1, dims...) }

// Put writes one data point of name. The metric is published for each prefix of the
// dimensions: [Function], [Function, dims[0]], [Function, dims[0], dims[1]], …, so a total
// per function exists beside every breakdown (what rates and alarms divide by). An empty
// dimension value is written as "none" (CloudWatch rejects empty values).
func (e *Emitter) Put(name string, unit Unit, value float64, dims ...Dim) {
	if e == nil || name == "" {
		return
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	fn := e.Function
	if fn == "" {
		fn = "none"
	}
	line := map[string]any{DimFunction: fn, name: value}
	keys := []string{DimFunction}
	sets := [][]string{{DimFunction}}
	for _, d := range dims {
		if d.Name == "" || d.Name == DimFunction || d.Name == name {
			continue
		}
		v := d.Value
		if v == "" {
			v = "none"
		}
		line[d.Name] = v
		keys = append(keys, d.Name)
		sets = append(sets, append([]string(nil), keys...))
	}
	line["_aws"] = awsMeta{
		Timestamp: now().UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  Namespace,
			Dimensions: sets,
			Metrics:    []metricDef{{Name: name, Unit: unit}},
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return // cannot happen: strings and numbers only
	}
	b = append(b, '\n')
	var out io.Writer = os.Stdout
	if e.Out != nil {
		out = e.Out
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = out.Write(b) // a metric is never worth failing the work for
}

// Job counts one job decision of the worker engine: Jobs by outcome and reason, and, from
// the same decision, RateLimited for a 429 and Pauses for a spent daily budget.
func (e *Emitter) Job(outcome, reason string, status int) {
	e.Count(Jobs, Outcome(outcome), Reason(reason))
	if status == 429 {
		e.Count(RateLimited, Reason(reason))
	}
	if reason == string(pderrors.ReasonDailyBudget) {
		e.Count(Pauses)
	}
}

// Answer counts an HTTP answer of status in ServerErrors when it is a 5xx, with its reason.
func (e *Emitter) Answer(status int, reason string) {
	if status >= 500 {
		e.Count(ServerErrors, Reason(reason))
	}
}

// Age writes DueBacklogAge: how long the oldest due item has waited (never negative).
func (e *Emitter) Age(oldestDue, now time.Time) {
	age := 0.0
	if !oldestDue.IsZero() && now.After(oldestDue) {
		age = now.Sub(oldestDue).Seconds()
	}
	e.Put(DueBacklogAge, Seconds, age)
}

type awsMeta struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

type metricDef struct {
	Name string `json:"Name"`
	Unit Unit   `json:"Unit"`
}
