package refresh_test

import (
	"bytes"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// TestRefreshMetrics reads the EMF lines a Refresher writes back: one Refreshes per decision by
// outcome, one TokenCalls per call to the token endpoint by the answer's action, and nothing
// that names an installation.
func TestRefreshMetrics(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	var out bytes.Buffer
	r := e.refresher("test")
	r.Metrics = &metrics.Emitter{Out: &out, Function: "refresher", Now: e.clock.Now}

	mustRefresh(t, r, t.Context(), defaultID, false, refresh.OutcomeFresh) // no token call
	e.clock.Advance(untilDue)
	mustRefresh(t, r, t.Context(), defaultID, false, refresh.OutcomeRefreshed)
	e.sim.RevokeUser(pdsim.DefaultUserID)
	mustRefresh(t, r, t.Context(), defaultID, true, refresh.OutcomeNeedsReauth)

	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out.String())
	}
	tests := []struct {
		name string
		dim  metrics.Dim
		want float64
	}{
		{metrics.Refreshes, metrics.Outcome("fresh"), 1},
		{metrics.Refreshes, metrics.Outcome("refreshed"), 1},
		{metrics.Refreshes, metrics.Outcome("needs_reauth"), 1},
		{metrics.TokenCalls, metrics.Outcome("succeed"), 1},
		{metrics.TokenCalls, metrics.Outcome("reauthorize"), 1},
	}
	for _, tt := range tests {
		if got := metrics.Sum(pts, tt.name, tt.dim); got != tt.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tt.name, tt.dim, got, tt.want)
		}
	}
	if got := metrics.Sum(pts, metrics.TokenCalls); got != float64(e.refreshCalls()) {
		t.Errorf("TokenCalls = %v, want the simulator's count %d", got, e.refreshCalls())
	}
	for _, p := range pts {
		for k := range p.Dims {
			if k != metrics.DimFunction && k != metrics.DimOutcome {
				t.Errorf("point %+v has dimension %q, want only Function and Outcome", p, k)
			}
		}
	}
}
