// Package fakeclock is a clock for tests that stands still until the test moves it. Code
// under test takes a `Now func() time.Time` field; tests pass a (*Clock).Now.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a fake clock: it stands still until Advance or Set moves it. A Clock is safe for
// concurrent use; its zero value reads the zero time, so build one with New.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock reading t.
func New(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
