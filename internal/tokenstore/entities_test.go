package tokenstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestAdvanceEntity(t *testing.T) {
	e := newEnv(t)
	const deal = "entity#3408256:5206648#deal#12"
	at := time.Date(2026, 3, 2, 8, 59, 0, 123_000_000, time.UTC)
	steps := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"first change", at, true},
		{"the same change again (a retry after a failure)", at, true},
		{"a newer change", at.Add(time.Millisecond), true},
		{"the first change, delivered late", at, false},
		{"a microsecond older", at.Add(time.Millisecond - time.Microsecond), false},
		{"newer again", at.Add(time.Second), true},
	}
	for _, s := range steps {
		got, err := e.store.AdvanceEntity(t.Context(), deal, s.at, time.Hour)
		if err != nil || got != s.want {
			t.Errorf("%s: AdvanceEntity(%s) = %t, %v; want %t", s.name, s.at.Format(time.RFC3339Nano), got, err, s.want)
		}
	}
	if got, err := e.store.EntityTime(t.Context(), deal); err != nil || !got.Equal(at.Add(time.Second)) {
		t.Errorf("EntityTime = %s, %v; want %s", got, err, at.Add(time.Second))
	}
	if got, err := e.store.EntityTime(t.Context(), "entity#3408256:5206648#deal#99"); err != nil || !got.IsZero() {
		t.Errorf("EntityTime(never recorded) = %s, %v; want zero", got, err)
	}
	if item := e.raw(t, "once#"+deal); item == nil || item["expires_at"] == nil {
		t.Errorf("record = %v, want one with expires_at (TTL'd)", item)
	}
	// Another entity and another installation have their own records.
	for _, other := range []string{"entity#3408256:5206648#deal#13", "entity#1:2#deal#12"} {
		if got, err := e.store.AdvanceEntity(t.Context(), other, at, time.Hour); err != nil || !got {
			t.Errorf("AdvanceEntity(%s) = %t, %v; want true", other, got, err)
		}
	}
	// After the TTL the record is dead even before DynamoDB's sweep: any change is fresh.
	e.clock.Advance(time.Hour + time.Second)
	if got, err := e.store.AdvanceEntity(t.Context(), deal, at, time.Hour); err != nil || !got {
		t.Errorf("AdvanceEntity after the TTL = %t, %v; want true", got, err)
	}
	for _, bad := range []struct {
		key string
		at  time.Time
		ttl time.Duration
	}{{"", at, time.Hour}, {deal, time.Time{}, time.Hour}, {deal, at, 0}} {
		if _, err := e.store.AdvanceEntity(t.Context(), bad.key, bad.at, bad.ttl); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("AdvanceEntity(%q, %v, %v) = %v, want ErrInvalid", bad.key, bad.at, bad.ttl, err)
		}
	}
}

// TestAdvanceEntityConcurrent: of two changes racing, the older can never overwrite the newer.
func TestAdvanceEntityConcurrent(t *testing.T) {
	e := newEnv(t)
	const deal = "entity#1:2#deal#7"
	base := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := e.store.AdvanceEntity(t.Context(), deal, base.Add(time.Duration(i)*time.Second), time.Hour); err != nil {
				t.Errorf("AdvanceEntity #%d = %v", i, err)
			}
		})
	}
	wg.Wait()
	// Whatever the order, the newest is recorded: anything older is stale.
	if got, err := e.store.AdvanceEntity(t.Context(), deal, base.Add(6*time.Second), time.Hour); err != nil || got {
		t.Errorf("AdvanceEntity(older than the newest) = %t, %v; want false", got, err)
	}
	if got, err := e.store.AdvanceEntity(t.Context(), deal, base.Add(7*time.Second), time.Hour); err != nil || !got {
		t.Errorf("AdvanceEntity(the newest) = %t, %v; want true", got, err)
	}
}
