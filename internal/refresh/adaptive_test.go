package refresh_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// The adaptive refresh, against the in-memory store: an installation in use is kept warm, an
// idle one is let expire and kept alive, a job's refresh marks it in use again.

func TestNextRefresh(t *testing.T) {
	exp := t0.Add(time.Hour)
	tests := []struct {
		name string
		in   installation.Installation
		want time.Time
	}{
		{"used since its last refresh: warm", installation.Installation{ExpiresAt: exp, RefreshedAt: t0, WarmUntil: t0.Add(time.Minute)}, exp.Add(-refresh.Lead)},
		{"always warm", installation.Installation{ExpiresAt: exp, RefreshedAt: t0, AlwaysWarm: true}, exp.Add(-refresh.Lead)},
		{"idle: keep-alive after the last refresh", installation.Installation{ExpiresAt: exp, RefreshedAt: t0, WarmUntil: t0}, t0.Add(installation.KeepAlive)},
		{"idle, never refreshed: after the install", installation.Installation{ExpiresAt: exp, InstalledAt: t0.Add(-time.Hour)}, t0.Add(-time.Hour + installation.KeepAlive)},
		{"nothing known: never before the warm due time", installation.Installation{ExpiresAt: exp}, exp.Add(-refresh.Lead)},
		{"well inside Pipedrive's 60 days", installation.Installation{ExpiresAt: exp, RefreshedAt: t0}, t0.Add(30 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		if got := installation.NextRefresh(tt.in); !got.Equal(tt.want) {
			t.Errorf("%s: NextRefresh = %s, want %s", tt.name, got, tt.want)
		}
	}
	if installation.KeepAlive >= 60*24*time.Hour/2+time.Hour {
		t.Errorf("KeepAlive = %s, want at most half of Pipedrive's 60-day refresh-token window", installation.KeepAlive)
	}
}

// TestIdleKeptAliveNotWarm runs the schedule every 5 minutes over 70 days for one installation
// used only at its install: after its first hour it is never refreshed for its access token,
// but its refresh token is used again before 60 days pass, every time.
func TestIdleKeptAliveNotWarm(t *testing.T) {
	m := newMem(t)
	m.put(memID, time.Hour) // installed now, in use for the first hour (as Install records it)
	var calls []time.Time
	answer := m.answer
	m.answer = func(ctx context.Context, n int, rt string) (*pdoauth.Token, error) {
		calls = append(calls, m.now)
		return answer(ctx, n, rt)
	}
	r := m.refresher("sched")
	end := t0.Add(70 * 24 * time.Hour)
	for ; m.now.Before(end); m.now = m.now.Add(5 * time.Minute) {
		if _, err := refresh.RunDue(t.Context(), m.store, r, refresh.RunConfig{Now: m.clock}); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) < 2 {
		t.Fatalf("token calls at %v, want the warm ones and keep-alives", calls)
	}
	var warm []time.Time
	last := t0
	for _, c := range calls {
		if c.Sub(t0) < 3*time.Hour {
			warm = append(warm, c)
		} else if gap := c.Sub(last); gap < 29*24*time.Hour {
			t.Errorf("idle refresh at %s, %s after the previous: want only keep-alives", c.Sub(t0), gap)
		}
		if gap := c.Sub(last); gap > 60*24*time.Hour {
			t.Errorf("refresh token unused for %s before %s: Pipedrive expires it after 60 days", gap, c.Sub(t0))
		}
		last = c
	}
	if len(warm) > 2 {
		t.Errorf("refreshes in the first hours = %d, want at most 2 (in use for an hour after the install)", len(warm))
	}
	if keep := len(calls) - len(warm); keep < 2 {
		t.Errorf("keep-alive refreshes in 70 days = %d, want at least 2", keep)
	}
	if end.Sub(last) > installation.KeepAlive+time.Hour {
		t.Errorf("last refresh %s before the end, want at most KeepAlive", end.Sub(last))
	}
}

// TestIdleFirstJobRefreshesOnce: a job for an idle installation (expired access token) pays one
// refresh, which marks the installation in use: warm from then on, so the next jobs of the
// hour find a usable token and the schedule keeps it so.
func TestIdleFirstJobRefreshesOnce(t *testing.T) {
	m := newMem(t)
	m.put(memID, -time.Hour)
	m.store.Update(memID, func(in *installation.Installation) {
		in.InstalledAt, in.RefreshedAt, in.WarmUntil = t0.Add(-5*24*time.Hour), t0.Add(-5*24*time.Hour), t0.Add(-5*24*time.Hour)
		in.RefreshDueAt = installation.NextRefresh(*in)
	})
	in := m.get(t, memID)
	if refresh.Due(in, m.now) {
		t.Fatalf("an idle installation 5 days after its last refresh is due, want not (keep-alive after %s)", installation.KeepAlive)
	}
	res, err := m.refresher("job").Use(t.Context(), in)
	if err != nil || res.Outcome != refresh.OutcomeRefreshed || res.Reason != "in_use" {
		t.Fatalf("Use(expired) = %s (%s), %v; want refreshed (in_use)", res.Outcome, res.Reason, err)
	}
	got := m.get(t, memID)
	if !installation.Warm(got) || !got.WarmUntil.After(m.now.Add(installation.InUseFor)) {
		t.Errorf("after the job's refresh: warm %t until %s, want warm for at least %s", installation.Warm(got), got.WarmUntil, installation.InUseFor)
	}
	if want := got.ExpiresAt.Add(-refresh.Lead); !got.RefreshDueAt.Equal(want) {
		t.Errorf("due at %s, want %s (kept warm)", got.RefreshDueAt, want)
	}
	// The next jobs of the hour: no token call, no write.
	writes := m.store.Calls("MarkUse")
	for range 5 {
		m.now = m.now.Add(time.Minute)
		res, err := m.refresher("job").Use(t.Context(), m.get(t, memID))
		if err != nil || res.Outcome != refresh.OutcomeFresh {
			t.Errorf("Use(usable) = %s, %v; want fresh", res.Outcome, err)
		}
	}
	if n := m.callCount(); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
	if n := m.store.Calls("MarkUse") - writes; n != 0 {
		t.Errorf("use marks in the 5 minutes after the refresh = %d, want 0", n)
	}
	// Used again after UseMarkEvery: one mark keeps it warm.
	m.now = m.now.Add(installation.UseMarkEvery)
	if _, err := m.refresher("job").Use(t.Context(), m.get(t, memID)); err != nil {
		t.Fatal(err)
	}
	if n := m.store.Calls("MarkUse") - writes; n != 1 {
		t.Errorf("use marks after %s = %d, want 1", installation.UseMarkEvery, n)
	}
}

// TestUseMarkRewarmsAnIdleInstallation: an idle installation whose token is still valid is
// marked in use by a job and becomes due before its token expires.
func TestUseMarkRewarmsAnIdleInstallation(t *testing.T) {
	m := newMem(t)
	m.put(memID, 40*time.Minute)
	m.store.Update(memID, func(in *installation.Installation) {
		in.RefreshedAt, in.WarmUntil = t0.Add(-20*time.Minute), t0.Add(-30*time.Minute)
		in.RefreshDueAt = installation.NextRefresh(*in)
	})
	if got := m.get(t, memID); installation.Warm(got) {
		t.Fatal("fixture is warm")
	}
	res, err := m.refresher("job").Use(t.Context(), m.get(t, memID))
	if err != nil || res.Outcome != refresh.OutcomeFresh || m.callCount() != 0 {
		t.Fatalf("Use = %s, %v with %d token calls; want fresh without a call", res.Outcome, err, m.callCount())
	}
	got := m.get(t, memID)
	if want := got.ExpiresAt.Add(-refresh.Lead); !got.RefreshDueAt.Equal(want) || !installation.Warm(got) {
		t.Errorf("after the mark: due %s warm %t, want due %s and warm", got.RefreshDueAt, installation.Warm(got), want)
	}
	if res.Installation.AccessToken != got.AccessToken || res.Installation.Version != got.Version {
		t.Error("Use's installation is not the stored one")
	}
}

// TestStaleDueEntryIsRescheduled: an idle installation listed at its old warm due time (written
// before the adaptive rule) is moved to its keep-alive without a token call.
func TestStaleDueEntryIsRescheduled(t *testing.T) {
	m := newMem(t)
	m.put(memID, 5*time.Minute)
	m.store.Update(memID, func(in *installation.Installation) {
		in.InstalledAt, in.RefreshedAt, in.WarmUntil = t0.Add(-2*time.Hour), t0.Add(-55*time.Minute), time.Time{}
		in.RefreshDueAt = installation.RefreshDueAt(in.ExpiresAt) // the old rule
	})
	s, err := refresh.RunDue(t.Context(), m.store, m.refresher("sched"), refresh.RunConfig{Now: m.clock})
	if want := (refresh.Summary{Due: 1, Fresh: 1}); err != nil || s != want {
		t.Errorf("RunDue = %+v, %v; want %+v", s, err, want)
	}
	got := m.get(t, memID)
	if want := t0.Add(-55*time.Minute + installation.KeepAlive); !got.RefreshDueAt.Equal(want) || got.LeaseOwner != "" {
		t.Errorf("rescheduled to %s (lease %q), want %s and released", got.RefreshDueAt, got.LeaseOwner, want)
	}
	if m.callCount() != 0 {
		t.Errorf("token calls = %d, want 0", m.callCount())
	}
}

// TestFanOutRefreshesEachOnce: a run with more due than FanOutAbove hands every shard to a
// parallel run; each shard is also dispatched twice and a second scheduled run races the
// first: every installation is refreshed exactly once.
func TestFanOutRefreshesEachOnce(t *testing.T) {
	m := newMem(t)
	m.store.Shards = 8
	const n = 200
	for i := range n {
		m.put(installation.ID{CompanyID: 1, UserID: int64(1000 + i)}, time.Duration(i%9)*time.Minute)
	}
	byToken := map[string]int{}
	var mu sync.Mutex
	answer := m.answer
	m.answer = func(ctx context.Context, k int, rt string) (*pdoauth.Token, error) {
		mu.Lock()
		byToken[rt]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		return answer(ctx, k, rt)
	}
	// Distinct refresh tokens, so calls can be told apart per installation.
	for i := range n {
		m.store.Update(installation.ID{CompanyID: 1, UserID: int64(1000 + i)}, func(in *installation.Installation) {
			in.RefreshToken = "refresh-of-" + in.ID.String()
		})
	}
	var (
		wg      sync.WaitGroup
		fmu     sync.Mutex
		reports []refresh.Report
	)
	cfg := refresh.RunConfig{Now: m.clock, Shards: m.store, FanOutAbove: 50, Concurrency: 4}
	fan := fanOut(nil)
	fan = func(shard int) {
		for range 2 { // a duplicate invocation
			wg.Go(func() {
				rep, err := refresh.Run(context.Background(), m.store, shard, m.refresher("shard"), cfg)
				if err != nil {
					t.Error(err)
				}
				fmu.Lock()
				reports = append(reports, rep)
				fmu.Unlock()
			})
		}
	}
	c := cfg
	c.FanOut = fan
	var first refresh.Report
	wg.Go(func() {
		var err error
		if first, err = refresh.Run(t.Context(), m.store, refresh.AllShards, m.refresher("sched-1"), c); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		if _, err := refresh.Run(t.Context(), m.store, refresh.AllShards, m.refresher("sched-2"), c); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if len(byToken) != n {
		t.Errorf("installations refreshed = %d, want %d", len(byToken), n)
	}
	for rt, k := range byToken {
		if k != 1 {
			t.Errorf("token calls with %s = %d, want 1", rt, k)
		}
	}
	if first.FannedOut == 0 && len(reports) == 0 {
		t.Error("nothing was fanned out")
	}
	if ids, _ := m.store.Due(t.Context(), m.now, 10); len(ids) != 0 {
		t.Errorf("still due: %v", ids)
	}
}

// fanOut dispatches a shard by calling f.
type fanOut func(shard int)

func (f fanOut) Dispatch(_ context.Context, shard int) error {
	f(shard)
	return nil
}
