package refreshbench_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/refreshbench"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var (
	benchLine = regexp.MustCompile(`^refresh-bench N=\d+ L=\S+ C=\d+( racers=\d+)?( fanout=\d+)? wall=\S+ floor=\S+ ratio=\d+\.\d\d token_calls_per_due=\d+\.\d\d ddb_per_refresh=\d+\.\d\d$`)
	idleLine  = regexp.MustCompile(`^refresh-idle days=\d+ installs=\d+ active=\d+ token_calls_per_idle_day=\d+\.\d{3} token_calls_per_active_day=\d+\.\d\d expired_on_use=\d+ runs_per_day=\d+\.\d jobs_per_day=\d+\.\d token_calls_per_day=\d+\.\d ops_per_day=(\w+:\d+\.\d,?)+( checks_per_day=\d+\.\d)?$`)
)

// TestSmoke runs each scenario of make bench-refresh small, so the benchmark's machinery is
// exercised by every test run: one run, fan-out over the shards, racing runs, simulated days.
func TestSmoke(t *testing.T) {
	env := refreshbench.AWS{Config: testenv.AWS(t)}
	for _, sc := range []struct {
		name   string
		t      refreshbench.Throughput
		serial bool
	}{
		{"one run", refreshbench.Throughput{N: 24, L: 20 * time.Millisecond, C: 4}, false},
		{"fan-out", refreshbench.Throughput{N: 24, L: 20 * time.Millisecond, C: 4, FanOut: true, FanOutAbove: 4}, false},
		{"racers", refreshbench.Throughput{N: 24, L: 20 * time.Millisecond, C: 4, Racers: 3}, true},
	} {
		t.Run(sc.name, func(t *testing.T) {
			env.Serial = sc.serial
			r, err := refreshbench.RunThroughput(t.Context(), env, sc.t)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(r.Line())
			if !benchLine.MatchString(r.Line()) {
				t.Errorf("Line() = %q, not the compared form", r.Line())
			}
			if r.Refreshed != sc.t.N || r.TokenCalls != sc.t.N {
				t.Errorf("refreshed %d with %d token calls, want %d and %d (one per due installation)", r.Refreshed, r.TokenCalls, sc.t.N, sc.t.N)
			}
			if fanned := r.FannedOut > 0; fanned != sc.t.FanOut {
				t.Errorf("fanned out over %d shards, want fan-out %v", r.FannedOut, sc.t.FanOut)
			}
			if r.DynamoDBRequests < 2*sc.t.N {
				t.Errorf("DynamoDB requests = %d, want at least a lease and a save per refresh (%d): is the counter wired?", r.DynamoDBRequests, 2*sc.t.N)
			}
		})
	}
	t.Run("idle days", func(t *testing.T) {
		r, err := refreshbench.RunIdle(t.Context(), refreshbench.Idle{Days: 1, Installs: 12, Active: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(r.Line())
		if !idleLine.MatchString(r.Line()) {
			t.Errorf("Line() = %q, not the compared form", r.Line())
		}
		if r.ExpiredOnUse != 0 || r.NeedsReauth != 0 || r.Jobs == 0 || r.ActiveCalls == 0 || r.IdleCalls != 0 {
			t.Errorf("idle days: %+v; want jobs and warm refreshes for the active, none for the idle, no expired token on use", r)
		}
	})
}
