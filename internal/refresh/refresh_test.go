package refresh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// defaultID is the simulator's default user's installation.
var defaultID = tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}

// untilDue moves past the point where a fresh installation (expires_in 3599) becomes due.
const untilDue = 50 * time.Minute

func TestRefreshDueStoresNewTokens(t *testing.T) {
	for _, rotate := range []bool{true, false} {
		t.Run(fmt.Sprintf("rotate=%t", rotate), func(t *testing.T) {
			e := newEnv(t, rotate)
			old := e.install(pdsim.DefaultUserID)
			e.clock.Advance(untilDue)
			now := e.clock.Now()
			if !e.due(defaultID, now) {
				t.Fatalf("Due(now) does not list %s before the refresh", defaultID)
			}

			res := mustRefresh(t, e.refresher("test"), t.Context(), defaultID, false, refresh.OutcomeRefreshed)

			if got := e.refreshCalls(); got != 1 {
				t.Errorf("refresh_token calls = %d, want 1", got)
			}
			stored := e.get(defaultID)
			if stored.AccessToken == old.AccessToken || stored.AccessToken != res.Installation.AccessToken {
				t.Errorf("stored access token: changed=%t, equals result's=%t; want changed and equal",
					stored.AccessToken != old.AccessToken, stored.AccessToken == res.Installation.AccessToken)
			}
			if stored.Version <= old.Version || stored.Version != res.Installation.Version {
				t.Errorf("version = %d (result %d), want > %d and equal", stored.Version, res.Installation.Version, old.Version)
			}
			wantExpiry := now.Add(3599 * time.Second)
			if !stored.ExpiresAt.Equal(wantExpiry) {
				t.Errorf("ExpiresAt = %s, want %s", stored.ExpiresAt, wantExpiry)
			}
			if stored.LeaseOwner != "" || stored.FailureCount != 0 || stored.Status != tokenstore.StatusActive {
				t.Errorf("stored lease=%q failures=%d status=%s, want no lease, 0, active", stored.LeaseOwner, stored.FailureCount, stored.Status)
			}
			if e.due(defaultID, now) {
				t.Errorf("Due(now) lists %s after the refresh, want its due time moved", defaultID)
			}
			if !e.due(defaultID, wantExpiry.Add(-refresh.Lead)) {
				t.Errorf("Due(new expiry - lead) does not list %s", defaultID)
			}
			if !slices.Equal(stored.Scopes, old.Scopes) || stored.APIDomain != old.APIDomain {
				t.Errorf("scopes %v api_domain %q, want %v %q", stored.Scopes, stored.APIDomain, old.Scopes, old.APIDomain)
			}

			_, oldErr := e.oauth(testenv.ClientSecret).Refresh(t.Context(), old.RefreshToken)
			if rotate {
				if stored.RefreshToken == old.RefreshToken {
					t.Error("with rotation the stored refresh token is still the old one")
				}
				if d := pderrors.DecisionOf(oldErr); d.Action != pderrors.Reauthorize {
					t.Errorf("the old refresh token at the simulator: %v, want it rejected (Reauthorize)", d.Action)
				}
			} else {
				if stored.RefreshToken != old.RefreshToken {
					t.Error("without rotation the stored refresh token changed")
				}
				if oldErr != nil {
					t.Errorf("without rotation the old refresh token fails: %v", oldErr)
				}
			}

			// The stored refresh token keeps working: the next refresh succeeds.
			e.clock.Advance(untilDue)
			mustRefresh(t, e.refresher("test"), t.Context(), defaultID, false, refresh.OutcomeRefreshed)
			if got := e.alertReasons(); len(got) != 0 {
				t.Errorf("alerts = %v, want none", got)
			}
			checkLogEvents(t, e.logs.String(), "refresh refreshed", 2)
		})
	}
}

// checkLogEvents checks that logs hold n events with msg, each with the fields every decision
// carries.
func checkLogEvents(t *testing.T, logs, msg string, n int) {
	t.Helper()
	got := 0
	for line := range strings.Lines(logs) {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		if ev["msg"] != msg {
			continue
		}
		got++
		for _, k := range []string{"company_id", "user_id", "action", "reason", "status", "version"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("log event %q lacks %s: %s", msg, k, line)
			}
		}
	}
	if got != n {
		t.Errorf("log events %q = %d, want %d", msg, got, n)
	}
}

func TestFreshWhenAnotherProcessRefreshed(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	// Both listed it as due; a refreshes first, b leases afterwards.
	first := mustRefresh(t, e.refresher("a"), t.Context(), defaultID, false, refresh.OutcomeRefreshed)
	second := mustRefresh(t, e.refresher("b"), t.Context(), defaultID, false, refresh.OutcomeFresh)

	if got := e.refreshCalls(); got != 1 {
		t.Errorf("refresh_token calls = %d, want 1", got)
	}
	if second.Installation.AccessToken != first.Installation.AccessToken {
		t.Error("the fresh result does not carry the current access token")
	}
	stored := e.get(defaultID)
	if stored.LeaseOwner != "" || stored.AccessToken != first.Installation.AccessToken {
		t.Errorf("after a fresh skip: lease %q, access token current=%t; want released and current", stored.LeaseOwner, stored.AccessToken == first.Installation.AccessToken)
	}
	if stored.Version != second.Installation.Version {
		t.Errorf("stored version %d, fresh result's %d, want equal", stored.Version, second.Installation.Version)
	}

	// Force refreshes even a fresh installation (the on-call engineer's manual run).
	mustRefresh(t, e.refresher("b"), t.Context(), defaultID, true, refresh.OutcomeRefreshed)
	if got := e.refreshCalls(); got != 2 {
		t.Errorf("refresh_token calls after force = %d, want 2", got)
	}
}

func TestLeaseHeldByAnotherOwner(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	held, err := e.store.Lease(t.Context(), defaultID, "another-process", time.Minute)
	if err != nil {
		t.Fatalf("Lease(another-process) = %v", err)
	}

	mustRefresh(t, e.refresher("test"), t.Context(), defaultID, true, refresh.OutcomeLeaseHeld)
	if got := e.refreshCalls(); got != 0 {
		t.Errorf("refresh_token calls = %d, want 0 while another owner holds the lease", got)
	}
	if got := e.get(defaultID); got.Version != held.Version || got.LeaseOwner != "another-process" {
		t.Errorf("after lease_held: version %d owner %q, want %d another-process (untouched)", got.Version, got.LeaseOwner, held.Version)
	}

	// A lease left behind by a crashed process expires.
	e.clock.Advance(time.Minute + time.Second)
	mustRefresh(t, e.refresher("test"), t.Context(), defaultID, false, refresh.OutcomeRefreshed)
}

func TestConcurrentRefreshCallsPipedriveOnce(t *testing.T) {
	const n = 8
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared_refresher=%t", shared), func(t *testing.T) {
			e := newEnv(t, true) // rotation: a second refresh with the same token would fail
			e.install(pdsim.DefaultUserID)
			e.clock.Advance(untilDue)
			one := e.refresher("shared")

			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				results = make([]refresh.Result, n)
				errs    = make([]error, n)
			)
			for i := range n {
				r := one
				if !shared {
					r = e.refresher(fmt.Sprintf("worker-%d", i))
				}
				wg.Go(func() {
					<-start
					results[i], errs[i] = r.Refresh(context.Background(), defaultID, false)
				})
			}
			close(start)
			wg.Wait()

			count := map[refresh.Outcome]int{}
			var winner refresh.Result
			for i, res := range results {
				if errs[i] != nil {
					t.Errorf("Refresh #%d error = %v", i, errs[i])
				}
				count[res.Outcome]++
				if res.Outcome == refresh.OutcomeRefreshed {
					winner = res
				}
			}
			if count[refresh.OutcomeRefreshed] != 1 || count[refresh.OutcomeLeaseHeld]+count[refresh.OutcomeFresh] != n-1 {
				t.Errorf("outcomes = %v, want 1 refreshed and %d lease_held or fresh", count, n-1)
			}
			if got := e.refreshCalls(); got != 1 {
				t.Errorf("refresh_token calls = %d, want exactly 1", got)
			}
			stored := e.get(defaultID)
			if stored.AccessToken != winner.Installation.AccessToken || stored.LeaseOwner != "" || stored.FailureCount != 0 {
				t.Errorf("store after the race: winner's tokens=%t lease=%q failures=%d; want the winner's, none, 0",
					stored.AccessToken == winner.Installation.AccessToken, stored.LeaseOwner, stored.FailureCount)
			}
			// The stored (rotated) refresh token is the live one.
			mustRefresh(t, e.refresher("after"), t.Context(), defaultID, true, refresh.OutcomeRefreshed)
		})
	}
}

func TestRefreshRejectedRefreshesOncePerRejectedToken(t *testing.T) {
	e := newEnv(t, true)
	old := e.install(pdsim.DefaultUserID) // not due: a 401 can come at any time
	const n = 4
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]refresh.Result, n)
	)
	for i := range n {
		r := e.refresher(fmt.Sprintf("api-%d", i))
		wg.Go(func() {
			<-start
			var err error
			if results[i], err = r.RefreshRejected(context.Background(), defaultID, old.AccessToken); err != nil {
				t.Errorf("RefreshRejected #%d error = %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	refreshed := 0
	for _, res := range results {
		if res.Outcome == refresh.OutcomeRefreshed {
			refreshed++
		}
	}
	if refreshed != 1 || e.refreshCalls() != 1 {
		t.Errorf("refreshed %d times with %d token calls, want 1 and 1", refreshed, e.refreshCalls())
	}

	// A late caller with the same rejected token gets the current one without a call.
	res, err := e.refresher("late").RefreshRejected(t.Context(), defaultID, old.AccessToken)
	if err != nil || res.Outcome != refresh.OutcomeFresh || res.Installation.AccessToken == old.AccessToken {
		t.Errorf("late RefreshRejected = %s (%s), %v, new token %t; want fresh with the new token", res.Outcome, res.Reason, err, res.Installation.AccessToken != old.AccessToken)
	}
	// The current token rejected too: refresh again.
	cur := e.get(defaultID)
	if res, err := e.refresher("late").RefreshRejected(t.Context(), defaultID, cur.AccessToken); err != nil || res.Outcome != refresh.OutcomeRefreshed {
		t.Errorf("RefreshRejected(current token) = %s, %v; want refreshed", res.Outcome, err)
	}
	if got := e.refreshCalls(); got != 2 {
		t.Errorf("refresh_token calls = %d, want 2", got)
	}
}

func TestRefreshTokenInvalidNeedsReauth(t *testing.T) {
	tests := []struct {
		name       string
		breakGrant func(e *env)
	}{
		{"revoked", func(e *env) { e.sim.RevokeUser(pdsim.DefaultUserID) }},
		{"unused for 60 days", func(e *env) { e.clock.Advance(61 * 24 * time.Hour) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, false)
			e.install(pdsim.DefaultUserID)
			tt.breakGrant(e)

			res := mustRefresh(t, e.refresher("test"), t.Context(), defaultID, true, refresh.OutcomeNeedsReauth)
			if res.Reason != string(pderrors.ReasonRefreshTokenInvalid) || res.Decision.Status != http.StatusBadRequest {
				t.Errorf("reason %q status %d, want %s 400", res.Reason, res.Decision.Status, pderrors.ReasonRefreshTokenInvalid)
			}
			stored := e.get(defaultID)
			if stored.Status != tokenstore.StatusNeedsReauth || stored.LeaseOwner != "" || stored.LastFailure != "refresh_token_invalid" {
				t.Errorf("stored status %s lease %q last failure %q, want %s, none, refresh_token_invalid",
					stored.Status, stored.LeaseOwner, stored.LastFailure, tokenstore.StatusNeedsReauth)
			}
			if e.due(defaultID, e.clock.Now().Add(365*24*time.Hour)) {
				t.Error("an installation that needs reauthorization is still in the refresh index")
			}
			if got := e.alertReasons(); !slices.Equal(got, []string{"refresh_token_invalid"}) {
				t.Errorf("alerts = %v, want [refresh_token_invalid]", got)
			}
			mustRefresh(t, e.refresher("test"), t.Context(), defaultID, true, refresh.OutcomeNotActive)
			if got := e.refreshCalls(); got != 1 {
				t.Errorf("refresh_token calls = %d, want 1", got)
			}
		})
	}
}

func TestTransientFailuresBackOff(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	r := e.refresher("test")

	for i, wantWait := range []time.Duration{time.Minute, 2 * time.Minute} {
		e.inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusServiceUnavailable, Times: 1})
		now := e.clock.Now()
		res := mustRefresh(t, r, t.Context(), defaultID, false, refresh.OutcomeRetryLater)
		if res.Reason != string(pderrors.ReasonUnavailable) || !res.RetryAt.Equal(now.Add(wantWait)) {
			t.Errorf("failure %d: reason %q retry at %s, want unavailable at now+%s", i+1, res.Reason, res.RetryAt, wantWait)
		}
		stored := e.get(defaultID)
		if stored.FailureCount != i+1 || stored.LastFailure != "unavailable" || stored.LeaseOwner != "" {
			t.Errorf("failure %d: stored failures %d last %q lease %q", i+1, stored.FailureCount, stored.LastFailure, stored.LeaseOwner)
		}
		if e.due(defaultID, now.Add(wantWait-time.Second)) || !e.due(defaultID, now.Add(wantWait)) {
			t.Errorf("failure %d: not due exactly at now+%s", i+1, wantWait)
		}
		e.clock.Advance(wantWait)
	}
	mustRefresh(t, r, t.Context(), defaultID, false, refresh.OutcomeRefreshed)
	if got := e.get(defaultID).FailureCount; got != 0 {
		t.Errorf("failures after success = %d, want 0", got)
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none for transient failures", got)
	}
}

func TestRateLimitedWaitsForRetryAfter(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusTooManyRequests, Times: 1, Header: http.Header{"Retry-After": {"120"}}})
	now := e.clock.Now()

	res := mustRefresh(t, e.refresher("test"), t.Context(), defaultID, false, refresh.OutcomeRetryLater)
	if res.RetryAt.Before(now.Add(120 * time.Second)) {
		t.Errorf("RetryAt = now+%s, want at least now+2m (Retry-After 120)", res.RetryAt.Sub(now))
	}
	if e.due(defaultID, now.Add(119*time.Second)) || !e.due(defaultID, now.Add(120*time.Second)) {
		t.Error("not due exactly Retry-After from now")
	}
}

func TestTimeoutIsRetriedLater(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	e.inject(pdsim.Fault{Path: "/oauth/token", Latency: 5 * time.Second, Times: 1})
	r := e.refresher("test")
	r.SaveTimeout = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()

	begin := time.Now()
	res := mustRefresh(t, r, ctx, defaultID, false, refresh.OutcomeRetryLater)
	if took := time.Since(begin); took > 1400*time.Millisecond {
		t.Errorf("Refresh took %s, want the token call cut SaveTimeout before the 1.5 s deadline", took)
	}
	if res.Reason != string(pderrors.ReasonTimeout) {
		t.Errorf("reason = %q, want timeout", res.Reason)
	}
	if got := e.get(defaultID); got.FailureCount != 1 || got.LeaseOwner != "" {
		t.Errorf("stored failures %d lease %q, want 1 and released", got.FailureCount, got.LeaseOwner)
	}
}

func TestSkippedWhenTooLittleTimeLeft(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second) // < DefaultSaveTimeout
	defer cancel()

	mustRefresh(t, e.refresher("test"), ctx, defaultID, false, refresh.OutcomeSkipped)
	if got := e.refreshCalls(); got != 0 {
		t.Errorf("refresh_token calls = %d, want 0", got)
	}
	stored := e.get(defaultID)
	if stored.LeaseOwner != "" || stored.FailureCount != 0 || !e.due(defaultID, e.clock.Now()) {
		t.Errorf("after skip: lease %q failures %d due %t; want released, 0, still due", stored.LeaseOwner, stored.FailureCount, e.due(defaultID, e.clock.Now()))
	}
}

func TestInvalidClientAlertsAndBacksOff(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	r := e.refresher("test")
	r.OAuth = e.oauth("not-the-secret")
	invalidated := 0
	r.InvalidateCredentials = func() { invalidated++ }
	now := e.clock.Now()

	res := mustRefresh(t, r, t.Context(), defaultID, false, refresh.OutcomeFailed)
	if res.Reason != string(pderrors.ReasonClientInvalid) || res.Decision.Status != http.StatusUnauthorized {
		t.Errorf("reason %q status %d, want client_invalid 401", res.Reason, res.Decision.Status)
	}
	if invalidated != 1 {
		t.Errorf("InvalidateCredentials calls = %d, want 1", invalidated)
	}
	as := e.inbox.Drain(t)
	if len(as) != 1 || as[0].Attributes["reason"] != "client_invalid" || as[0].Attributes["company_id"] != "" {
		t.Errorf("alerts = %+v, want one app-wide client_invalid alert", as)
	}
	stored := e.get(defaultID)
	if stored.FailureCount != 1 || stored.Status != tokenstore.StatusActive || !res.RetryAt.Equal(now.Add(time.Minute)) {
		t.Errorf("stored failures %d status %s, retry at now+%s; want 1, active, now+1m", stored.FailureCount, stored.Status, res.RetryAt.Sub(now))
	}
}

func TestAPIDomainChangeIsStored(t *testing.T) {
	e := newEnv(t, false)
	old := e.install(pdsim.DefaultUserID)
	const moved = "http://127.0.0.1:8788"
	e.sim.SetAPIDomain(pdsim.DefaultCompanyID, moved)

	res := mustRefresh(t, e.refresher("test"), t.Context(), defaultID, true, refresh.OutcomeRefreshed)
	if got := e.get(defaultID).APIDomain; got != moved || res.Installation.APIDomain != moved {
		t.Errorf("api_domain stored %q, result %q; want %q (was %q)", got, res.Installation.APIDomain, moved, old.APIDomain)
	}
}

// hookStore is the real store with a hook that runs just before SaveRefreshed, to put another
// process's write in the window between the token call and the save.
type hookStore struct {
	*tokenstore.Store
	beforeSave func()
}

func (h *hookStore) SaveRefreshed(ctx context.Context, id tokenstore.InstallationID, owner string, version int64, tok tokenstore.Tokens) (tokenstore.Installation, error) {
	h.beforeSave()
	return h.Store.SaveRefreshed(ctx, id, owner, version, tok)
}

func TestSaveSurvivesTheCallersCancellation(t *testing.T) {
	e := newEnv(t, true)
	old := e.install(pdsim.DefaultUserID)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := e.refresher("test")
	r.Store = &hookStore{Store: e.store, beforeSave: cancel} // the Lambda's context ends here

	mustRefresh(t, r, ctx, defaultID, true, refresh.OutcomeRefreshed)
	if got := e.get(defaultID); got.RefreshToken == old.RefreshToken {
		t.Error("the rotated refresh token was not stored after the caller's context ended")
	}
}

func TestTokensNotSavedWhenTheLeaseWasLost(t *testing.T) {
	e := newEnv(t, true)
	old := e.install(pdsim.DefaultUserID)
	r := e.refresher("test")
	r.Store = &hookStore{Store: e.store, beforeSave: func() {
		// This process stalled past its lease and another took it.
		e.clock.Advance(refresh.DefaultLeaseTTL + time.Second)
		if _, err := e.store.Lease(context.Background(), defaultID, "thief", time.Minute); err != nil {
			t.Errorf("Lease(thief) = %v", err)
		}
	}}

	res, err := r.Refresh(t.Context(), defaultID, true)
	if res.Outcome != refresh.OutcomeFailed || !errors.Is(err, refresh.ErrTokensNotSaved) || !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Fatalf("Refresh = %s, %v; want failed with ErrTokensNotSaved and ErrLeaseLost", res.Outcome, err)
	}
	stored := e.get(defaultID)
	if stored.AccessToken != old.AccessToken || stored.LeaseOwner != "thief" {
		t.Errorf("store: access token changed=%t, lease %q; want unchanged and thief's", stored.AccessToken != old.AccessToken, stored.LeaseOwner)
	}
	if got := e.alertReasons(); !slices.Equal(got, []string{"refresh_tokens_not_saved"}) {
		t.Errorf("alerts = %v, want [refresh_tokens_not_saved]", got)
	}
}

func TestUninstallDuringRefreshDiscardsTokens(t *testing.T) {
	e := newEnv(t, true)
	e.install(pdsim.DefaultUserID)
	r := e.refresher("test")
	r.Store = &hookStore{Store: e.store, beforeSave: func() {
		if _, err := e.store.Uninstall(context.Background(), defaultID); err != nil {
			t.Errorf("Uninstall = %v", err)
		}
	}}

	mustRefresh(t, r, t.Context(), defaultID, true, refresh.OutcomeNotActive)
	if got := e.get(defaultID); got.Status != tokenstore.StatusUninstalled || got.AccessToken != "" || got.RefreshToken != "" {
		t.Errorf("stored status %s, tokens present=%t; want uninstalled without tokens", got.Status, got.AccessToken+got.RefreshToken != "")
	}
	if got := e.alertReasons(); len(got) != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, true)
	mustRefresh(t, e.refresher("test"), t.Context(), tokenstore.InstallationID{CompanyID: 1, UserID: 2}, true, refresh.OutcomeNotFound)
}

func TestMisconfiguredRefresher(t *testing.T) {
	res, err := (&refresh.Refresher{}).Refresh(t.Context(), defaultID, false)
	if res.Outcome != refresh.OutcomeFailed || !errors.Is(err, refresh.ErrMisconfigured) {
		t.Errorf("Refresh on a zero Refresher = %s, %v; want failed, ErrMisconfigured", res.Outcome, err)
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{-1, time.Minute},
		{0, time.Minute},
		{1, time.Minute},
		{2, 2 * time.Minute},
		{3, 4 * time.Minute},
		{6, 32 * time.Minute},
		{7, time.Hour},
		{8, time.Hour},
		{1000, time.Hour},
	}
	for _, tt := range tests {
		if got := refresh.DefaultBackoff(tt.failures); got != tt.want {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", tt.failures, got, tt.want)
		}
	}
}

// After a failed refresh, a worker's 401 must not call the token endpoint again before the
// stored retry time (Pipedrive's Retry-After here); a forced refresh still may.
func TestRejectedRefreshHonoursTheStoredBackoff(t *testing.T) {
	e := newEnv(t, true)
	old := e.install(pdsim.DefaultUserID)
	e.clock.Advance(untilDue)
	e.inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusTooManyRequests, Times: 1, Header: http.Header{"Retry-After": {"120"}}})
	first := mustRefresh(t, e.refresher("refresher"), t.Context(), defaultID, false, refresh.OutcomeRetryLater)
	calls := e.refreshCalls()

	res, err := e.refresher("worker").RefreshRejected(t.Context(), defaultID, old.AccessToken)
	if err != nil || res.Outcome != refresh.OutcomeRetryLater || res.Reason != "backoff" || !res.RetryAt.Equal(first.RetryAt) {
		t.Errorf("RefreshRejected during the backoff = %s (%s) at %s, %v; want retry_later (backoff) at %s", res.Outcome, res.Reason, res.RetryAt, err, first.RetryAt)
	}
	if got := e.refreshCalls(); got != calls {
		t.Errorf("token calls during the backoff = %d, want %d (none new)", got, calls)
	}
	if in := e.get(defaultID); in.LeaseOwner != "" {
		t.Errorf("lease left held by %q after the backoff answer", in.LeaseOwner)
	}

	e.clock.Advance(121 * time.Second)
	if res, err := e.refresher("worker").RefreshRejected(t.Context(), defaultID, old.AccessToken); err != nil || res.Outcome != refresh.OutcomeRefreshed {
		t.Errorf("RefreshRejected after the backoff = %s (%s), %v; want refreshed", res.Outcome, res.Reason, err)
	}
}
