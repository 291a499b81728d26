package apicall

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// TestJobsWriteEMF: the worker's decisions reach its EMF output (what CloudWatch turns into
// the dashboard's jobs and 429 graphs), read back from the lines.
func TestJobsWriteEMF(t *testing.T) {
	t.Setenv("PIPEDRIVE_ALLOW_LOOPBACK", "true") // the simulator's api_domain is on loopback
	e := newEnv(t)
	e.install(pdsim.DefaultUserID)
	var out bytes.Buffer
	e.h.Engine.Metrics = &metrics.Emitter{Out: &out, Function: name}

	if res := e.direct(encode(t, job("emf-1", "GET", "/api/v2/deals", ""))); res.Outcome != worker.OutcomeSucceeded {
		t.Fatalf("job = %+v, want succeeded", res)
	}
	// Last: after a 429 the worker paces the company's next calls (on the test's clock).
	e.sim.Inject(pdsim.Fault{Path: "/api/v2/deals", Status: http.StatusTooManyRequests, Times: 1, Header: http.Header{"Retry-After": {"3"}}})
	if res := e.direct(encode(t, job("emf-2", "GET", "/api/v2/deals", ""))); res.Outcome != worker.OutcomeRetry {
		t.Fatalf("job under a 429 = %+v, want retry", res)
	}

	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out.String())
	}
	for _, c := range []struct {
		name string
		dims []metrics.Dim
		want float64
	}{
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("retry"), metrics.Reason("rate_limited")}, 1},
		{metrics.Jobs, []metrics.Dim{metrics.Outcome("succeeded"), metrics.Reason("ok")}, 1},
		{metrics.RateLimited, []metrics.Dim{metrics.Reason("rate_limited")}, 1},
		{metrics.Pauses, nil, 0},
	} {
		if got := metrics.Sum(pts, c.name, c.dims...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.dims, got, c.want)
		}
	}
	for _, p := range pts {
		if p.Namespace != metrics.Namespace || p.Dims[metrics.DimFunction] != "apicall" {
			t.Errorf("point %+v: want namespace %s, Function apicall", p, metrics.Namespace)
		}
	}
}
