package refresher

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
)

// TestScheduledRunWritesEMF: a scheduled run writes the due backlog's age and, through the
// Refresher main.go gives the same Emitter, one Refreshes per installation and one TokenCalls
// per token request, read back from the EMF lines.
func TestScheduledRunWritesEMF(t *testing.T) {
	t.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true") // the simulator's api_domain is on loopback
	e := newEnv(t)
	var out bytes.Buffer
	m := &metrics.Emitter{Out: &out, Function: "refresher", Now: e.clock.Now}
	e.h.Metrics, e.refresher.Metrics = m, m // as main.go wires them
	e.install(201, -3*time.Minute)          // due since 13 minutes (expired 3 minutes ago)
	e.install(202, 5*time.Minute)           // due since 5 minutes
	e.install(203, time.Hour)               // not due

	if _, err := e.h.Handle(t.Context(), json.RawMessage(`{}`)); err != nil {
		t.Fatalf("Handle = %v", err)
	}
	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out.String())
	}
	if got := metrics.Sum(pts, metrics.Refreshes, metrics.Outcome("refreshed")); got != 2 {
		t.Errorf("Refreshes{refreshed} = %v, want 2", got)
	}
	if got := metrics.Sum(pts, metrics.TokenCalls, metrics.Outcome("succeed")); got != 2 {
		t.Errorf("TokenCalls{succeed} = %v, want 2", got)
	}
	var ages []float64
	for _, p := range pts {
		if p.Name == metrics.DueBacklogAge {
			ages = append(ages, p.Value)
			if p.Unit != metrics.Seconds {
				t.Errorf("DueBacklogAge unit = %s, want Seconds", p.Unit)
			}
		}
	}
	// The oldest due installation was due 13 minutes before the run (refresh.Lead is 10).
	if len(ages) != 1 || ages[0] < 12*60 || ages[0] > 14*60 {
		t.Errorf("DueBacklogAge points = %v, want one of about 780 s", ages)
	}
}
