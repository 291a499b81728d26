package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestCountAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const limit = 3
	count := func(name string) bool {
		t.Helper()
		ok, err := e.store.CountAttempt(t.Context(), name, limit, 10*time.Minute)
		if err != nil {
			t.Fatalf("CountAttempt(%s) = %v", name, err)
		}
		return ok
	}
	for i := range limit {
		if !count("ip#203.0.113.7") {
			t.Fatalf("attempt %d refused, want the first %d allowed", i+1, limit)
		}
	}
	if count("ip#203.0.113.7") {
		t.Errorf("attempt %d allowed, want refused", limit+1)
	}
	if !count("ip#198.51.100.1") {
		t.Errorf("another key's first attempt refused, want allowed")
	}
	e.clock.Advance(10 * time.Minute)
	if !count("ip#203.0.113.7") {
		t.Errorf("first attempt of the next window refused, want allowed")
	}
	if _, err := e.store.CountAttempt(t.Context(), "", limit, time.Minute); !errors.Is(err, tokenstore.ErrInvalid) {
		t.Errorf("CountAttempt with an empty key = %v, want ErrInvalid", err)
	}
}
