package tokenstore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// eventLease is the pending eventLease of these tests (the receiver uses its invocation's time left).
const eventLease = 10 * time.Second

func TestAcceptEvent(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 3408256, UserID: 5206648}
	const ev = "webhook#3408256:5206648#6f1e3a52"

	_, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour)
	var refusal *tokenstore.EventRefusal
	if !errors.Is(err, tokenstore.ErrEventNotInstalled) || !errors.As(err, &refusal) || refusal.Status != "" {
		t.Fatalf("AcceptEvent(unknown installation) = %v, want ErrEventNotInstalled without a status", err)
	}
	if item := e.raw(t, "once#"+ev); item != nil {
		t.Fatalf("a refused event left a record: %v", item)
	}

	e.install(t, id, "1")
	r, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour)
	if err != nil || r.Key != ev {
		t.Fatalf("AcceptEvent(active) = %v, %v; want accepted", r, err)
	}
	// Not confirmed yet: another delivery is told to come back later, not "seen".
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); !errors.Is(err, tokenstore.ErrEventPending) {
		t.Fatalf("AcceptEvent(while pending) = %v, want ErrEventPending", err)
	}
	// Handing the event on failed: the record is taken back, Pipedrive's retry is accepted.
	if err := e.store.ForgetEvent(t.Context(), r); err != nil {
		t.Fatalf("ForgetEvent = %v", err)
	}
	r2, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour)
	if err != nil {
		t.Fatalf("AcceptEvent after ForgetEvent = %v, want accepted", err)
	}
	// A stale receipt neither deletes nor confirms the newer acceptance.
	if err := e.store.ForgetEvent(t.Context(), r); err != nil {
		t.Fatalf("ForgetEvent(stale) = %v", err)
	}
	if err := e.store.ConfirmEvent(t.Context(), r, time.Hour); err != nil {
		t.Fatalf("ConfirmEvent(stale) = %v", err)
	}
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); !errors.Is(err, tokenstore.ErrEventPending) {
		t.Fatalf("a stale receipt changed %v's record: AcceptEvent = %v, want ErrEventPending", r2, err)
	}
	if err := e.store.ConfirmEvent(t.Context(), r2, time.Hour); err != nil {
		t.Fatalf("ConfirmEvent = %v", err)
	}
	if item := e.raw(t, "once#"+ev); item["state"] == nil || item["lease_until"] != nil {
		t.Errorf("confirmed record = %v, want state and no eventLease", item)
	}
	// Queued: seen, also long after the eventLease.
	e.clock.Advance(2 * eventLease)
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); !errors.Is(err, tokenstore.ErrEventSeen) {
		t.Fatalf("AcceptEvent(confirmed) = %v, want ErrEventSeen", err)
	}
	// After the TTL the record is dead even before DynamoDB's TTL sweep deletes it.
	e.clock.Advance(time.Hour + time.Second)
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); err != nil {
		t.Fatalf("AcceptEvent after the TTL = %v, want accepted", err)
	}
}

// TestAcceptEventTakesOverAnExpiredLease: a delivery accepted whose receiver never confirmed
// (it died, or the answer of its write was lost for good) does not block the event: after the
// eventLease the next delivery takes the record over, and only the taker's confirmation counts.
func TestAcceptEventTakesOverAnExpiredLease(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	e.install(t, id, "1")
	const ev = "webhook#1:2#lost"
	first, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(eventLease - time.Second)
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); !errors.Is(err, tokenstore.ErrEventPending) {
		t.Fatalf("AcceptEvent(eventLease live) = %v, want ErrEventPending", err)
	}
	e.clock.Advance(time.Second)
	taker, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour)
	if err != nil {
		t.Fatalf("AcceptEvent(eventLease ended) = %v, want taken over", err)
	}
	if err := e.store.ConfirmEvent(t.Context(), first, time.Hour); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(eventLease)
	if _, err := e.store.AcceptEvent(t.Context(), id, ev, eventLease, time.Hour); err != nil {
		t.Fatalf("the first receipt confirmed the taker's record: AcceptEvent = %v, want taken over again", err)
	}
	_ = taker
}

func TestWebhookOwner(t *testing.T) {
	e := newEnv(t)
	owner := tokenstore.InstallationID{CompanyID: 3408256, UserID: 5206648}
	if _, err := e.store.WebhookOwner(t.Context(), owner.CompanyID, "77"); !errors.Is(err, tokenstore.ErrWebhookUnknown) {
		t.Fatalf("WebhookOwner(unrecorded) = %v, want ErrWebhookUnknown", err)
	}
	if err := e.store.RecordWebhookOwner(t.Context(), "77", owner); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.WebhookOwner(t.Context(), owner.CompanyID, "77"); err != nil || got != owner {
		t.Fatalf("WebhookOwner = %v, %v; want %v", got, err, owner)
	}
	// Another company naming the same webhook id does not borrow its owner.
	if _, err := e.store.WebhookOwner(t.Context(), 999, "77"); !errors.Is(err, tokenstore.ErrWebhookUnknown) {
		t.Fatalf("WebhookOwner(other company) = %v, want ErrWebhookUnknown", err)
	}
	if err := e.store.RecordWebhookOwner(t.Context(), "", owner); !errors.Is(err, tokenstore.ErrInvalid) {
		t.Errorf("RecordWebhookOwner(no id) = %v, want ErrInvalid", err)
	}
}

func TestAcceptEventInactiveInstallation(t *testing.T) {
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 1, UserID: 2}
	e.install(t, id, "1")
	if _, err := e.store.Uninstall(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	_, err := e.store.AcceptEvent(t.Context(), id, "webhook#1:2#x", eventLease, time.Hour)
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
	accepted, pending := 0, 0
	for range 3 {
		wg.Go(func() {
			_, err := e.store.AcceptEvent(t.Context(), id, "webhook#1:2#same", eventLease, time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, tokenstore.ErrEventPending):
				pending++
			default:
				t.Errorf("AcceptEvent = %v", err)
			}
		})
	}
	wg.Wait()
	if accepted != 1 || pending != 2 {
		t.Errorf("three concurrent deliveries: %d accepted, %d pending; want 1 and 2", accepted, pending)
	}
}

func TestAcceptEventRejectsBadArguments(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		id              tokenstore.InstallationID
		key             string
		eventLease, ttl time.Duration
	}{
		{tokenstore.InstallationID{}, "k", eventLease, time.Hour},
		{tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "", eventLease, time.Hour},
		{tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "k", eventLease, 0},
		{tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "k", 0, time.Hour},
	} {
		if _, err := e.store.AcceptEvent(t.Context(), tt.id, tt.key, tt.eventLease, tt.ttl); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Errorf("AcceptEvent(%v, %q, %v, %v) = %v, want ErrInvalid", tt.id, tt.key, tt.eventLease, tt.ttl, err)
		}
	}
}
