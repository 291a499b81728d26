package tokenstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestAcceptEvent(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 3408256, UserID: 5206648}
	const ev = "webhook#3408256:5206648#6f1e3a52"

	_, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour)
	var refusal *tokenstore.EventRefusal
	if !errors.Is(err, tokenstore.ErrEventNotInstalled) || !errors.As(err, &refusal) || refusal.Status != "" {
		t.Fatalf("AcceptEvent(unknown installation) = %v, want ErrEventNotInstalled without a status", err)
	}
	if item := e.raw(t, "once#"+ev); item != nil {
		t.Fatalf("a refused event left a record: %v", item)
	}

	e.install(t, id, "1")
	r, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour)
	if err != nil || r.Key != ev {
		t.Fatalf("AcceptEvent(active) = %v, %v; want accepted", r, err)
	}
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour); !errors.Is(err, tokenstore.ErrEventSeen) {
		t.Fatalf("AcceptEvent(again) = %v, want ErrEventSeen", err)
	}
	// Handing the event on failed: the record is taken back, Pipedrive's retry is accepted.
	if err := e.store.ForgetEvent(t.Context(), r); err != nil {
		t.Fatalf("ForgetEvent = %v", err)
	}
	r2, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour)
	if err != nil {
		t.Fatalf("AcceptEvent after ForgetEvent = %v, want accepted", err)
	}
	// A stale receipt does not delete the newer acceptance.
	if err := e.store.ForgetEvent(t.Context(), r); err != nil {
		t.Fatalf("ForgetEvent(stale) = %v", err)
	}
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour); !errors.Is(err, tokenstore.ErrEventSeen) {
		t.Fatalf("a stale ForgetEvent removed %v's record: AcceptEvent = %v", r2, err)
	}
	// After the TTL the record is dead even before DynamoDB's TTL sweep deletes it.
	e.clock.Advance(time.Hour + time.Second)
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, time.Hour); err != nil {
		t.Fatalf("AcceptEvent after the TTL = %v, want accepted", err)
	}
}

func TestAcceptEventInactiveInstallation(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	e.install(t, id, "1")
	if _, err := e.store.Uninstall(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.AcceptEvent(t.Context(), id, "webhook#1:2#x", time.Hour)
	var refusal *tokenstore.EventRefusal
	if !errors.As(err, &refusal) || !errors.Is(err, tokenstore.ErrEventNotInstalled) || refusal.Status != tokenstore.StatusUninstalled {
		t.Fatalf("AcceptEvent(uninstalled) = %v, want ErrEventNotInstalled with status uninstalled", err)
	}
}

func TestAcceptEventConcurrentDeliveries(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	e.install(t, id, "1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, seen := 0, 0
	for range 3 {
		wg.Go(func() {
			_, err := e.store.AcceptEvent(t.Context(), id, "webhook#1:2#same", time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, tokenstore.ErrEventSeen):
				seen++
			default:
				t.Errorf("AcceptEvent = %v", err)
			}
		})
	}
	wg.Wait()
	if accepted != 1 || seen != 2 {
		t.Errorf("three concurrent deliveries: %d accepted, %d seen; want 1 and 2", accepted, seen)
	}
}

func TestAcceptEventRejectsBadArguments(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		id  tokenstore.InstallationID
		key string
		ttl time.Duration
	}{
		{tokenstore.InstallationID{}, "k", time.Hour},
		{tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "", time.Hour},
		{tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "k", 0},
	} {
		if _, err := e.store.AcceptEvent(t.Context(), tt.id, tt.key, tt.ttl); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("AcceptEvent(%v, %q, %v) = %v, want ErrInvalid", tt.id, tt.key, tt.ttl, err)
		}
	}
}
