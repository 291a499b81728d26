package deadline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
)

func TestDetachedOutlivesParentButIsBounded(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	cancel()
	ctx, stop := deadline.Detached(parent, time.Minute)
	defer stop()
	if err := ctx.Err(); err != nil {
		t.Fatalf("Detached(cancelled parent).Err() = %v, want nil", err)
	}
	if got := ctx.Value(ctxKey{}); got != "v" {
		t.Errorf("Detached value = %v, want v", got)
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > time.Minute {
		t.Errorf("Detached deadline = %v (ok %t), want within a minute", dl, ok)
	}
}

func TestReserveEndsBeforeParentDeadline(t *testing.T) {
	parentDL := time.Now().Add(10 * time.Second)
	parent, cancel := context.WithDeadline(context.Background(), parentDL)
	defer cancel()
	ctx, stop := deadline.Reserve(parent, 3*time.Second)
	defer stop()
	dl, ok := ctx.Deadline()
	if !ok || !dl.Equal(parentDL.Add(-3*time.Second)) {
		t.Errorf("Reserve deadline = %v (ok %t), want %v", dl, ok, parentDL.Add(-3*time.Second))
	}
	noDL, stop2 := deadline.Reserve(context.Background(), time.Second)
	stop2()
	if _, ok := noDL.Deadline(); ok {
		t.Errorf("Reserve without a parent deadline has a deadline")
	}
	if noDL.Err() == nil {
		t.Errorf("Reserve's cancel did not cancel")
	}
}

func TestShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if !deadline.Short(ctx, 5*time.Second) {
		t.Errorf("Short(2s left, need 5s) = false, want true")
	}
	if deadline.Short(ctx, time.Second) {
		t.Errorf("Short(2s left, need 1s) = true, want false")
	}
	if deadline.Short(context.Background(), time.Hour) {
		t.Errorf("Short(no deadline) = true, want false")
	}
}

type ctxKey struct{}

func TestSleep(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"waits d", context.Background(), time.Millisecond, nil},
		{"zero with a live context", context.Background(), 0, nil},
		{"negative with a live context", context.Background(), -time.Second, nil},
		{"zero with an ended context", cancelled, 0, context.Canceled},
		{"an ended context cuts a long wait", cancelled, time.Hour, context.Canceled},
	}
	for _, tt := range tests {
		if err := deadline.Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
			t.Errorf("%s: Sleep = %v, want %v", tt.name, err, tt.want)
		}
	}
}
