package refresher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// TestShardInvocations: {"shard":n} refreshes what is due in that shard only; the shards
// together refresh everything once.
func TestShardInvocations(t *testing.T) {
	e := newEnv(t)
	const n = 16
	for i := range n {
		e.install(int64(601+i), time.Duration(i%5)*time.Minute)
	}
	total := 0
	for shard := range e.store.DueShards() {
		s, err := e.h.Handle(t.Context(), json.RawMessage(fmt.Sprintf(`{"shard":%d}`, shard)))
		if err != nil || s.Mode != "shard" || s.Shard != shard || s.Refreshed != s.Due {
			t.Errorf("Handle(shard %d) = %+v, %v; want a shard run refreshing its due", shard, s, err)
		}
		total += s.Refreshed
	}
	if total != n || e.refreshCalls() != n {
		t.Errorf("refreshed %d with %d token calls over every shard, want %d and %d", total, e.refreshCalls(), n, n)
	}
	for _, in := range []string{`{"shard":-1}`, `{"shard":8}`, `{"shard":"1"}`, `{"shard":1,"force":true}`, `{"shard":null}`} {
		if _, err := e.h.Handle(t.Context(), json.RawMessage(in)); !errors.Is(err, refresh.ErrBadInput) {
			t.Errorf("Handle(%s) = %v, want an *InputError", in, err)
		}
	}
}

// TestScheduledRunFansOut: with more due than FanOutAbove, the scheduled run hands each shard
// with work to another invocation and refreshes nothing itself; those invocations refresh
// each installation once. The backlog's age is published per run.
func TestScheduledRunFansOut(t *testing.T) {
	e := newEnv(t)
	const n = 12
	for i := range n {
		e.install(int64(701+i), time.Duration(i%5)*time.Minute)
	}
	var (
		mu     sync.Mutex
		shards []int
	)
	e.h.Config.FanOut = dispatchFunc(func(shard int) error {
		mu.Lock()
		defer mu.Unlock()
		shards = append(shards, shard)
		return nil
	})
	e.h.Config.FanOutAbove = 4
	e.h.Config.Shards = e.store
	var out bytes.Buffer
	e.h.Metrics = &metrics.Emitter{Out: &out, Function: "refresher", Now: e.clock.Now}

	s, err := e.h.Handle(t.Context(), fixture(t, "schedule.json"))
	if err != nil || s.Mode != "schedule" || s.FannedOut != len(shards) || s.FannedOut == 0 || s.Due != 0 || e.refreshCalls() != 0 {
		t.Fatalf("Handle(schedule) = %+v, %v with %d token calls; want every shard fanned out, nothing refreshed here", s, err, e.refreshCalls())
	}
	points, err := metrics.Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	// The oldest was due 10 minutes ago: it expires in 0 (refresh.Lead is 10 minutes).
	if got := metrics.Sum(points, metrics.DueBacklogAge); got != (10 * time.Minute).Seconds() {
		t.Errorf("DueBacklogAge = %v, want %v", got, (10 * time.Minute).Seconds())
	}
	slices.Sort(shards)
	for _, shard := range shards {
		if _, err := e.h.Handle(t.Context(), json.RawMessage(fmt.Sprintf(`{"shard":%d}`, shard))); err != nil {
			t.Errorf("Handle(shard %d) = %v", shard, err)
		}
	}
	if got := e.refreshCalls(); got != n {
		t.Errorf("token calls after the shard runs = %d, want %d", got, n)
	}
	if due := e.dueNow(); len(due) != 0 {
		t.Errorf("still due: %v", due)
	}
}

// TestRunConfig reads the template's settings.
func TestRunConfig(t *testing.T) {
	tests := []struct {
		env     map[string]string
		want    refresh.RunConfig
		calls   int
		fanOut  bool
		wantErr bool
	}{
		{map[string]string{}, refresh.RunConfig{Concurrency: 2 * refresh.DefaultConcurrency}, refresh.DefaultConcurrency, true, false},
		{map[string]string{EnvConcurrency: "16", EnvFanOutAbove: "5000"}, refresh.RunConfig{Concurrency: 32, FanOutAbove: 5000}, 16, true, false},
		{map[string]string{EnvFanOutAbove: "0"}, refresh.RunConfig{Concurrency: 2 * refresh.DefaultConcurrency}, refresh.DefaultConcurrency, false, false},
		{map[string]string{EnvConcurrency: "eight"}, refresh.RunConfig{}, 0, false, true},
		{map[string]string{EnvFanOutAbove: "-1"}, refresh.RunConfig{}, 0, false, true},
	}
	for _, tt := range tests {
		cfg, calls, fanOut, err := runConfig(func(k string) string { return tt.env[k] })
		if (err != nil) != tt.wantErr {
			t.Errorf("runConfig(%v) error = %v, want error %t", tt.env, err, tt.wantErr)
			continue
		}
		if err == nil && (cfg.Concurrency != tt.want.Concurrency || cfg.FanOutAbove != tt.want.FanOutAbove || calls != tt.calls || fanOut != tt.fanOut) {
			t.Errorf("runConfig(%v) = refreshes %d, fan-out above %d, calls %d, fan-out %t; want %d, %d, %d, %t",
				tt.env, cfg.Concurrency, cfg.FanOutAbove, calls, fanOut, tt.want.Concurrency, tt.want.FanOutAbove, tt.calls, tt.fanOut)
		}
	}
}

// dispatchFunc is a refresh.FanOut recording the shards it was handed.
type dispatchFunc func(shard int) error

func (f dispatchFunc) Dispatch(_ context.Context, shard int) error { return f(shard) }
