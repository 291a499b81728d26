package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestClockMovesOnlyWhenTold(t *testing.T) {
	c := fakeclock.New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("New(t0).Now() = %v, want %v", got, t0)
	}
	time.Sleep(2 * time.Millisecond)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("Now() after real time passed = %v, want %v", got, t0)
	}
	steps := []struct {
		name string
		move func()
		want time.Time
	}{
		{"Advance(90s)", func() { c.Advance(90 * time.Second) }, t0.Add(90 * time.Second)},
		{"Advance(-30s)", func() { c.Advance(-30 * time.Second) }, t0.Add(60 * time.Second)},
		{"Set(t0+1h)", func() { c.Set(t0.Add(time.Hour)) }, t0.Add(time.Hour)},
		{"Set(t0)", func() { c.Set(t0) }, t0},
	}
	for _, s := range steps {
		s.move()
		if got := c.Now(); !got.Equal(s.want) {
			t.Errorf("after %s, Now() = %v, want %v", s.name, got, s.want)
		}
	}
}

// TestClockConcurrentUse advances from many goroutines while reading: under -race a missing
// lock fails, and no advance may be lost.
func TestClockConcurrentUse(t *testing.T) {
	c := fakeclock.New(t0)
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c.Advance(time.Second)
			_ = c.Now()
		})
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(n*time.Second); !got.Equal(want) {
		t.Errorf("Now() after %d concurrent Advance(1s) = %v, want %v", n, got, want)
	}
}
