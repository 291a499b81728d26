package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh/refreshtest"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// The tests in this file run the refresh logic against refreshtest.Store (memory) and a fake
// token endpoint: each decision in isolation, in microseconds. The moto- and simulator-backed
// tests beside them prove the same logic against the real store and a realistic server.

// oauthFunc is a fake token endpoint.
type oauthFunc func(ctx context.Context, refreshToken string) (*pdoauth.Token, error)

func (f oauthFunc) Refresh(ctx context.Context, refreshToken string) (*pdoauth.Token, error) {
	return f(ctx, refreshToken)
}

var _ refresh.OAuth = oauthFunc(nil)

// sendFunc is a fake alert publisher.
type sendFunc func(ctx context.Context, a oncall.Alert) error

func (f sendFunc) Alert(ctx context.Context, a oncall.Alert) error { return f(ctx, a) }

var memID = installation.ID{CompanyID: 11, UserID: 22}

// mem is one in-memory test world: a store, a clock, a token endpoint that counts its calls and
// a publisher that records alerts.
type mem struct {
	now    time.Time
	store  *refreshtest.Store
	mu     sync.Mutex
	calls  []string // refresh tokens the endpoint was called with
	alerts []oncall.Alert
	// answer is what the endpoint does; by default it issues new tokens for an hour.
	answer func(ctx context.Context, n int, refreshToken string) (*pdoauth.Token, error)
}

func newMem(t *testing.T) *mem {
	t.Helper()
	m := &mem{now: t0}
	m.store = &refreshtest.Store{Now: m.clock}
	m.answer = func(_ context.Context, n int, _ string) (*pdoauth.Token, error) {
		return &pdoauth.Token{
			AccessToken:  fmt.Sprintf("access-%d", n),
			RefreshToken: fmt.Sprintf("refresh-%d", n),
			ExpiresAt:    m.clock().Add(time.Hour),
		}, nil
	}
	return m
}

func (m *mem) clock() time.Time { return m.now }

// put stores an active installation whose access token expires in expiresIn.
func (m *mem) put(id installation.ID, expiresIn time.Duration) installation.Installation {
	in := installation.Installation{
		ID: id, AccessToken: "access-0", RefreshToken: "refresh-0", APIDomain: "https://acme.pipedrive.com",
		Scopes: []string{"base"}, ExpiresAt: m.now.Add(expiresIn), Status: installation.StatusActive, Version: 1,
		// In use, as every installation is right after its install: kept warm.
		InstalledAt: m.now, WarmUntil: installation.UseMarkUntil(m.now),
	}
	m.store.Put(in)
	got, _ := m.store.Get(id)
	return got
}

func (m *mem) get(t *testing.T, id installation.ID) installation.Installation {
	t.Helper()
	in, ok := m.store.Get(id)
	if !ok {
		t.Fatalf("installation %s is gone", id)
	}
	return in
}

// refresher is a Refresher on this world, leasing as owner.
func (m *mem) refresher(owner string) *refresh.Refresher {
	return &refresh.Refresher{
		OAuth: oauthFunc(func(ctx context.Context, rt string) (*pdoauth.Token, error) {
			m.mu.Lock()
			m.calls = append(m.calls, rt)
			n := len(m.calls)
			m.mu.Unlock()
			return m.answer(ctx, n, rt)
		}),
		Store: m.store,
		Alerts: sendFunc(func(_ context.Context, a oncall.Alert) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.alerts = append(m.alerts, a)
			return nil
		}),
		Owner: owner,
		Now:   m.clock,
	}
}

func (m *mem) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

func (m *mem) alertReasons() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, a := range m.alerts {
		out = append(out, a.Reason)
	}
	return out
}

// oauthError is what pdoauth returns for an answer of the token endpoint.
func oauthError(status int, header http.Header, body string) error {
	return &pderrors.Error{Op: "oauth token refresh_token", Decision: pderrors.ClassifyOAuth(status, header, []byte(body))}
}

func TestDue(t *testing.T) {
	now := t0
	tests := []struct {
		expiresIn time.Duration
		want      bool
	}{
		{-time.Hour, true},
		{0, true},
		{refresh.Lead - time.Second, true},
		{refresh.Lead, true},
		{refresh.Lead + time.Second, false},
		{time.Hour, false},
	}
	for _, tt := range tests {
		in := installation.Installation{ExpiresAt: now.Add(tt.expiresIn)}
		if got := refresh.Due(in, now); got != tt.want {
			t.Errorf("Due(expires in %s) = %t, want %t", tt.expiresIn, got, tt.want)
		}
		// The store lists an installation exactly when the refresher finds it due.
		if listed := !installation.RefreshDueAt(in.ExpiresAt).After(now); listed != tt.want {
			t.Errorf("listed as due (expires in %s) = %t, want %t", tt.expiresIn, listed, tt.want)
		}
	}
}

func TestMemoryRefreshSavesNewTokens(t *testing.T) {
	m := newMem(t)
	old := m.put(memID, 5*time.Minute)
	m.answer = func(_ context.Context, _ int, _ string) (*pdoauth.Token, error) {
		// No refresh token, api_domain or scopes in the answer: the stored ones are kept.
		return &pdoauth.Token{AccessToken: "access-new", ExpiresAt: m.now.Add(time.Hour)}, nil
	}
	res, err := m.refresher("r").Refresh(t.Context(), memID, false)
	if err != nil || res.Outcome != refresh.OutcomeRefreshed || res.Reason != "due" {
		t.Fatalf("Refresh = %s (%s), %v; want refreshed (due)", res.Outcome, res.Reason, err)
	}
	got := m.get(t, memID)
	if got.AccessToken != "access-new" || got.RefreshToken != old.RefreshToken || got.APIDomain != old.APIDomain || !slices.Equal(got.Scopes, old.Scopes) {
		t.Errorf("stored %q/%q/%s/%v, want the new access token and the old refresh token, domain and scopes", got.AccessToken, got.RefreshToken, got.APIDomain, got.Scopes)
	}
	if want := m.now.Add(time.Hour - refresh.Lead); !got.RefreshDueAt.Equal(want) {
		t.Errorf("due again at %s, want %s (Lead before the new expiry)", got.RefreshDueAt, want)
	}
	if got.LeaseOwner != "" || got.Version != old.Version+2 || got.RefreshedAt.IsZero() {
		t.Errorf("after save: lease %q version %d refreshed %s; want released, %d, set", got.LeaseOwner, got.Version, got.RefreshedAt, old.Version+2)
	}
	if res.Installation.AccessToken != "access-new" || res.Installation.Version != got.Version {
		t.Errorf("Result.Installation = %v, want the stored one", res.Installation)
	}
	if !slices.Equal(m.calls, []string{old.RefreshToken}) {
		t.Errorf("token calls with %v, want one with the stored refresh token", m.calls)
	}
}

func TestMemoryFreshIsLeftAlone(t *testing.T) {
	m := newMem(t)
	old := m.put(memID, refresh.Lead+time.Minute)
	res, err := m.refresher("r").Refresh(t.Context(), memID, false)
	if err != nil || res.Outcome != refresh.OutcomeFresh || res.Reason != "not_due" {
		t.Errorf("Refresh of a fresh installation = %s (%s), %v; want fresh (not_due)", res.Outcome, res.Reason, err)
	}
	if got := m.get(t, memID); got.AccessToken != old.AccessToken || got.LeaseOwner != "" {
		t.Errorf("after fresh: access %q lease %q; want unchanged and released", got.AccessToken, got.LeaseOwner)
	}
	if res.Installation.AccessToken != old.AccessToken {
		t.Error("Result.Installation does not hold the current tokens")
	}
	// Forced, it refreshes all the same.
	if res, err := m.refresher("r").Refresh(t.Context(), memID, true); err != nil || res.Outcome != refresh.OutcomeRefreshed || res.Reason != "forced" {
		t.Errorf("forced Refresh = %s (%s), %v; want refreshed (forced)", res.Outcome, res.Reason, err)
	}
	if n := m.callCount(); n != 1 {
		t.Errorf("token calls = %d, want 1 (the forced one)", n)
	}
}

func TestMemoryLeases(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Minute)
	m.store.Update(memID, func(in *installation.Installation) {
		in.LeaseOwner, in.LeaseUntil = "someone-else", m.now.Add(30*time.Second)
	})
	if res, err := m.refresher("r").Refresh(t.Context(), memID, false); err != nil || res.Outcome != refresh.OutcomeLeaseHeld {
		t.Errorf("Refresh under another owner's lease = %s, %v; want lease_held", res.Outcome, err)
	}
	if n := m.callCount(); n != 0 {
		t.Errorf("token calls under another owner's lease = %d, want 0", n)
	}
	m.now = m.now.Add(31 * time.Second) // the other owner's lease has expired
	if res, err := m.refresher("r").Refresh(t.Context(), memID, false); err != nil || res.Outcome != refresh.OutcomeRefreshed {
		t.Errorf("Refresh after the lease expired = %s, %v; want refreshed", res.Outcome, err)
	}
}

// Of many callers that saw the same 401, one refreshes; the others find new tokens.
func TestMemoryConcurrentRejectedRefreshOnce(t *testing.T) {
	m := newMem(t)
	old := m.put(memID, time.Hour)
	var wg sync.WaitGroup
	results := make([]refresh.Result, 12)
	for i := range results {
		wg.Go(func() {
			var err error
			results[i], err = m.refresher(fmt.Sprint("worker-", i)).RefreshRejected(t.Context(), memID, old.AccessToken)
			if err != nil {
				t.Errorf("RefreshRejected = %v", err)
			}
		})
	}
	wg.Wait()
	count := map[refresh.Outcome]int{}
	for _, r := range results {
		count[r.Outcome]++
	}
	if n := m.callCount(); n != 1 || count[refresh.OutcomeRefreshed] != 1 || count[refresh.OutcomeRefreshed]+count[refresh.OutcomeFresh]+count[refresh.OutcomeLeaseHeld] != len(results) {
		t.Errorf("token calls %d, outcomes %v; want exactly one refresh, the rest fresh or lease_held", n, count)
	}
}

func TestMemoryNotActiveOrGone(t *testing.T) {
	for _, status := range []installation.Status{installation.StatusNeedsReauth, installation.StatusUninstalled} {
		m := newMem(t)
		m.put(memID, time.Minute)
		m.store.Update(memID, func(in *installation.Installation) { in.Status = status })
		if res, err := m.refresher("r").Refresh(t.Context(), memID, true); err != nil || res.Outcome != refresh.OutcomeNotActive {
			t.Errorf("Refresh of a %s installation = %s, %v; want not_active", status, res.Outcome, err)
		}
	}
	m := newMem(t)
	if res, err := m.refresher("r").Refresh(t.Context(), memID, true); err != nil || res.Outcome != refresh.OutcomeNotFound {
		t.Errorf("Refresh of an unknown installation = %s, %v; want not_found", res.Outcome, err)
	}
	if n := m.callCount(); n != 0 {
		t.Errorf("token calls = %d, want 0", n)
	}
}

func TestMemoryRejectedRefreshTokenNeedsReauth(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Minute)
	m.answer = func(context.Context, int, string) (*pdoauth.Token, error) {
		return nil, oauthError(400, nil, `{"success":false,"message":"Invalid grant: refresh token is invalid","error":"invalid_grant"}`)
	}
	res, err := m.refresher("r").Refresh(t.Context(), memID, false)
	if err != nil || res.Outcome != refresh.OutcomeNeedsReauth || res.Reason != string(pderrors.ReasonRefreshTokenInvalid) {
		t.Fatalf("Refresh with a rejected refresh token = %s (%s), %v; want needs_reauth (refresh_token_invalid)", res.Outcome, res.Reason, err)
	}
	got := m.get(t, memID)
	if got.Status != installation.StatusNeedsReauth || got.FailureCount != 1 || got.LeaseOwner != "" || !got.RefreshDueAt.IsZero() {
		t.Errorf("stored status %s failures %d lease %q due %s; want needs_reauthorization, 1, released, off the due list", got.Status, got.FailureCount, got.LeaseOwner, got.RefreshDueAt)
	}
	if got.Version != res.Installation.Version || res.Installation.Status != installation.StatusNeedsReauth {
		t.Errorf("Result.Installation = %v, want what was stored (%v)", res.Installation, got)
	}
	if got, want := m.alertReasons(), []string{"refresh_token_invalid"}; !slices.Equal(got, want) {
		t.Errorf("alerts = %v, want %v", got, want)
	} else if a := m.alerts[0]; a.CompanyID != memID.CompanyID || a.UserID != memID.UserID {
		t.Errorf("alert names %d:%d, want %s", a.CompanyID, a.UserID, memID)
	}
	// Without a refresh token only a new install helps, and no call is made.
	m2 := newMem(t)
	m2.put(memID, time.Minute)
	m2.store.Update(memID, func(in *installation.Installation) { in.RefreshToken = "" })
	if res, _ := m2.refresher("r").Refresh(t.Context(), memID, false); res.Outcome != refresh.OutcomeNeedsReauth || res.Reason != "refresh_token_missing" || m2.callCount() != 0 {
		t.Errorf("Refresh without a refresh token = %s (%s) after %d calls; want needs_reauth (refresh_token_missing), no call", res.Outcome, res.Reason, m2.callCount())
	}
}

func TestMemoryTransientFailuresBackOff(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Minute)
	fail := oauthError(503, nil, `<html>unavailable</html>`)
	m.answer = func(context.Context, int, string) (*pdoauth.Token, error) { return nil, fail }
	r := m.refresher("r")
	for i, wantWait := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		res, err := r.Refresh(t.Context(), memID, true)
		if err != nil || res.Outcome != refresh.OutcomeRetryLater || !res.RetryAt.Equal(m.now.Add(wantWait)) {
			t.Fatalf("failure %d: Refresh = %s at %s, %v; want retry_later at now+%s", i+1, res.Outcome, res.RetryAt, err, wantWait)
		}
		got := m.get(t, memID)
		if got.FailureCount != i+1 || !got.RefreshDueAt.Equal(res.RetryAt) || got.LeaseOwner != "" || got.LastFailure != string(pderrors.ReasonUnavailable) {
			t.Errorf("failure %d stored: failures %d due %s lease %q last %q; want %d, %s, released, unavailable", i+1, got.FailureCount, got.RefreshDueAt, got.LeaseOwner, got.LastFailure, i+1, res.RetryAt)
		}
	}
	// A Retry-After longer than the backoff wins.
	fail = oauthError(429, http.Header{"Retry-After": {"900"}}, `{"success":false,"error":"Request over limit"}`)
	if res, _ := r.Refresh(t.Context(), memID, true); res.Outcome != refresh.OutcomeRetryLater || !res.RetryAt.Equal(m.now.Add(15*time.Minute)) {
		t.Errorf("Refresh answered 429 Retry-After 900 = %s at %s; want retry_later at now+15m", res.Outcome, res.RetryAt)
	}

	// During the stored backoff neither a due refresh nor a worker's 401 calls Pipedrive; a
	// forced one does.
	calls := m.callCount()
	if res, _ := r.Refresh(t.Context(), memID, false); res.Outcome != refresh.OutcomeRetryLater || res.Reason != "backoff" {
		t.Errorf("Refresh during the backoff = %s (%s), want retry_later (backoff)", res.Outcome, res.Reason)
	}
	if res, _ := r.RefreshRejected(t.Context(), memID, "access-0"); res.Outcome != refresh.OutcomeRetryLater || res.Reason != "backoff" {
		t.Errorf("RefreshRejected during the backoff = %s (%s), want retry_later (backoff)", res.Outcome, res.Reason)
	}
	if n := m.callCount(); n != calls {
		t.Errorf("token calls during the backoff = %d, want %d", n, calls)
	}
	m.answer = newMem(t).answer
	m.now = m.now.Add(15 * time.Minute)
	if res, err := r.Refresh(t.Context(), memID, false); err != nil || res.Outcome != refresh.OutcomeRefreshed {
		t.Errorf("Refresh after the backoff = %s, %v; want refreshed", res.Outcome, err)
	}
	if got := m.get(t, memID); got.FailureCount != 0 || got.LastFailure != "" {
		t.Errorf("after success: failures %d last %q, want reset", got.FailureCount, got.LastFailure)
	}
}

func TestMemoryInvalidClientAlertsAndBacksOff(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Minute)
	m.answer = func(context.Context, int, string) (*pdoauth.Token, error) {
		return nil, oauthError(401, nil, `{"success":false,"message":"Invalid client: client is invalid","error":"invalid_client"}`)
	}
	invalidated := 0
	r := m.refresher("r")
	r.InvalidateCredentials = func() { invalidated++ }
	res, err := r.Refresh(t.Context(), memID, false)
	if res.Outcome != refresh.OutcomeFailed || err == nil || res.Reason != string(pderrors.ReasonClientInvalid) || !res.RetryAt.Equal(m.now.Add(time.Minute)) {
		t.Errorf("Refresh with an invalid client = %s (%s) retry %s, %v; want failed (client_invalid) with an error, retry in 1m", res.Outcome, res.Reason, res.RetryAt, err)
	}
	if invalidated != 1 {
		t.Errorf("credentials invalidated %d times, want 1", invalidated)
	}
	if got := m.alertReasons(); !slices.Equal(got, []string{"client_invalid"}) {
		t.Errorf("alerts = %v, want [client_invalid]", got)
	} else if a := m.alerts[0]; a.CompanyID != 0 || a.Severity != oncall.SeverityCritical {
		t.Errorf("alert = %+v, want app-wide (no ids) and critical", a)
	}
	if got := m.get(t, memID); got.FailureCount != 1 || got.LeaseOwner != "" {
		t.Errorf("stored failures %d lease %q, want 1 and released", got.FailureCount, got.LeaseOwner)
	}
}

func TestMemoryTokensNotSaved(t *testing.T) {
	tests := []struct {
		name string
		// during runs while the token call is in flight.
		during  func(m *mem)
		fail    error // the store's SaveRefreshed fails with this
		want    refresh.Outcome
		wantErr error
	}{
		{"version moved on", func(m *mem) {
			m.store.Update(memID, func(in *installation.Installation) { in.Version++ })
		}, nil, refresh.OutcomeFailed, installation.ErrConflict},
		{"lease taken by another owner", func(m *mem) {
			m.store.Update(memID, func(in *installation.Installation) { in.LeaseOwner = "other" })
		}, nil, refresh.OutcomeFailed, installation.ErrLeaseLost},
		{"store unreachable", nil, errors.New("connection refused"), refresh.OutcomeFailed, nil},
		{"uninstalled meanwhile", func(m *mem) {
			m.store.Update(memID, func(in *installation.Installation) { in.Status = installation.StatusUninstalled })
		}, nil, refresh.OutcomeNotActive, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMem(t)
			old := m.put(memID, time.Minute)
			answer := m.answer
			m.answer = func(ctx context.Context, n int, rt string) (*pdoauth.Token, error) {
				if tt.during != nil {
					tt.during(m)
				}
				return answer(ctx, n, rt)
			}
			m.store.Fail = func(op string, _ installation.ID) error {
				if op == "SaveRefreshed" {
					return tt.fail
				}
				return nil
			}
			res, err := m.refresher("r").Refresh(t.Context(), memID, false)
			if res.Outcome != tt.want {
				t.Fatalf("Refresh = %s (%s), %v; want %s", res.Outcome, res.Reason, err, tt.want)
			}
			if tt.want == refresh.OutcomeNotActive {
				if err != nil || len(m.alerts) != 0 {
					t.Errorf("uninstalled meanwhile: error %v alerts %v; want the tokens discarded quietly", err, m.alertReasons())
				}
				return
			}
			if !errors.Is(err, refresh.ErrTokensNotSaved) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Refresh error = %v, want ErrTokensNotSaved wrapping %v", err, tt.wantErr)
			}
			if got := m.alertReasons(); !slices.Equal(got, []string{"refresh_tokens_not_saved"}) {
				t.Errorf("alerts = %v, want [refresh_tokens_not_saved]", got)
			}
			if got := m.get(t, memID); got.AccessToken != old.AccessToken {
				t.Errorf("stored access token %q, want the old one (the save failed)", got.AccessToken)
			}
		})
	}
}

func TestMemoryStoreFailures(t *testing.T) {
	for _, op := range []string{"Lease", "RecordFailure", "MarkNeedsReauth"} {
		t.Run(op, func(t *testing.T) {
			m := newMem(t)
			m.put(memID, time.Minute)
			m.answer = func(context.Context, int, string) (*pdoauth.Token, error) {
				if op == "MarkNeedsReauth" {
					return nil, oauthError(400, nil, `{"success":false,"message":"Invalid grant: refresh token is invalid","error":"invalid_grant"}`)
				}
				return nil, oauthError(500, nil, `{}`)
			}
			m.store.Fail = func(got string, _ installation.ID) error {
				if got == op {
					return errors.New("throttled")
				}
				return nil
			}
			res, err := m.refresher("r").Refresh(t.Context(), memID, false)
			if res.Outcome != refresh.OutcomeFailed || res.Reason != "store_failed" || err == nil {
				t.Errorf("Refresh when %s fails = %s (%s), %v; want failed (store_failed) with an error", op, res.Outcome, res.Reason, err)
			}
		})
	}
}

func TestMemorySkipsNearTheDeadline(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Minute)
	r := m.refresher("r")
	r.SaveTimeout = time.Second
	ctx, cancel := context.WithTimeout(t.Context(), time.Second+100*time.Millisecond)
	defer cancel()
	res, err := r.Refresh(ctx, memID, false)
	if err != nil || res.Outcome != refresh.OutcomeSkipped {
		t.Errorf("Refresh with too little time = %s, %v; want skipped", res.Outcome, err)
	}
	if got := m.get(t, memID); got.LeaseOwner != "" || got.FailureCount != 0 || m.callCount() != 0 {
		t.Errorf("after skip: lease %q failures %d calls %d; want released, 0, 0", got.LeaseOwner, got.FailureCount, m.callCount())
	}
	// The token call ends SaveTimeout before the caller's deadline, so the save still fits.
	ctx, cancel = context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var left time.Duration
	m.answer = func(ctx context.Context, n int, rt string) (*pdoauth.Token, error) {
		dl, _ := ctx.Deadline()
		left = time.Until(dl)
		return newMem(t).answer(ctx, n, rt)
	}
	if res, err := r.Refresh(ctx, memID, false); err != nil || res.Outcome != refresh.OutcomeRefreshed {
		t.Fatalf("Refresh = %s, %v; want refreshed", res.Outcome, err)
	}
	if left > 2*time.Second {
		t.Errorf("token call had %s left, want at most 3s - SaveTimeout", left)
	}
}

func TestRunDue(t *testing.T) {
	m := newMem(t)
	for i, in := range []time.Duration{-time.Hour, time.Minute, 2 * time.Minute, refresh.Lead, refresh.Lead + time.Second, time.Hour} {
		m.put(installation.ID{CompanyID: 1, UserID: int64(100 + i)}, in)
	}
	m.put(installation.ID{CompanyID: 1, UserID: 200}, time.Minute)
	m.store.Update(installation.ID{CompanyID: 1, UserID: 200}, func(in *installation.Installation) { in.Status = installation.StatusNeedsReauth })

	s, err := refresh.RunDue(t.Context(), m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock})
	if want := (refresh.Summary{Due: 4, Refreshed: 4}); err != nil || s != want {
		t.Errorf("RunDue = %+v, %v; want %+v", s, err, want)
	}
	if ids, _ := m.store.Due(t.Context(), m.now, 100); len(ids) != 0 {
		t.Errorf("still due after the run: %v", ids)
	}

	// BatchLimit: the oldest first, the rest stay due.
	m.now = m.now.Add(55 * time.Minute)
	s, err = refresh.RunDue(t.Context(), m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock, BatchLimit: 2})
	if want := (refresh.Summary{Due: 2, Refreshed: 2}); err != nil || s != want {
		t.Errorf("RunDue(BatchLimit 2) = %+v, %v; want %+v", s, err, want)
	}
	if ids, _ := m.store.Due(t.Context(), m.now, 100); len(ids) == 0 {
		t.Error("nothing left due after a limited run, want the rest")
	}
}

func TestRunDueCountsEachOutcome(t *testing.T) {
	m := newMem(t)
	for i := range 3 {
		m.put(installation.ID{CompanyID: 1, UserID: int64(100 + i)}, time.Duration(i)*time.Second)
	}
	m.store.Update(installation.ID{CompanyID: 1, UserID: 101}, func(in *installation.Installation) {
		in.LeaseOwner, in.LeaseUntil = "other", m.now.Add(time.Minute)
	})
	m.answer = func(_ context.Context, _ int, rt string) (*pdoauth.Token, error) {
		return nil, oauthError(503, nil, ``)
	}
	s, err := refresh.RunDue(t.Context(), m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock, Concurrency: 1})
	if want := (refresh.Summary{Due: 3, LeaseHeld: 1, RetryLater: 2}); err != nil || s != want {
		t.Errorf("RunDue = %+v, %v; want %+v (one failure does not stop the others)", s, err, want)
	}
}

func TestRunDueBoundsConcurrency(t *testing.T) {
	m := newMem(t)
	const n = 30
	for i := range n {
		m.put(installation.ID{CompanyID: 1, UserID: int64(100 + i)}, time.Minute)
	}
	var mu sync.Mutex
	cur, most := 0, 0
	answer := m.answer
	m.answer = func(ctx context.Context, k int, rt string) (*pdoauth.Token, error) {
		mu.Lock()
		cur++
		most = max(most, cur)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return answer(ctx, k, rt)
	}
	s, err := refresh.RunDue(t.Context(), m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock, Concurrency: 4})
	if want := (refresh.Summary{Due: n, Refreshed: n}); err != nil || s != want {
		t.Errorf("RunDue = %+v, %v; want %+v", s, err, want)
	}
	if most < 2 || most > 4 {
		t.Errorf("refreshes in flight at most %d, want between 2 and 4 (Concurrency 4)", most)
	}
}

func TestRunDueNearTheDeadline(t *testing.T) {
	m := newMem(t)
	for i := range 5 {
		m.put(installation.ID{CompanyID: 1, UserID: int64(100 + i)}, time.Minute)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	s, err := refresh.RunDue(ctx, m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock, DeadlineReserve: 2 * time.Second})
	if want := (refresh.Summary{Due: 5, Skipped: 5}); err != nil || s != want {
		t.Errorf("RunDue with less than the reserve left = %+v, %v; want %+v", s, err, want)
	}
	if m.store.Calls("Lease") != 0 {
		t.Errorf("leases taken = %d, want none", m.store.Calls("Lease"))
	}
}

func TestRunDueListFailure(t *testing.T) {
	m := newMem(t)
	m.store.Fail = func(op string, _ installation.ID) error {
		if op == "Due" {
			return errors.New("index unavailable")
		}
		return nil
	}
	if _, err := refresh.RunDue(t.Context(), m.store, m.refresher("run"), refresh.RunConfig{Now: m.clock}); err == nil {
		t.Error("RunDue with an unreadable due list = nil error, want one")
	}
}
