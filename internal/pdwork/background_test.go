package pdwork_test

import (
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestBackgroundSessionLeavesIdleInstallationIdle: the daily health check (check_webhooks) and
// a catch-up open a session for an idle installation whose access token has expired. The
// session refreshes the token (the job must make its call) but records no use, so the
// scheduled refresher leaves the installation alone until installation.KeepAlive after this
// refresh, instead of keeping it warm. The same holds when the stored token looks usable but
// Pipedrive rejects it (401: the refresh after it records no use either). A job of the app
// (api_call) is a use: the control rows.
func TestBackgroundSessionLeavesIdleInstallationIdle(t *testing.T) {
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	for _, tc := range []struct {
		kind string
		// rejected: the stored access token has 30 minutes left but Pipedrive rejects it, so
		// the session refreshes after the call's 401; otherwise it has expired and the
		// session refreshes when it opens.
		rejected bool
		wantWarm bool
	}{
		{kind: jobs.KindCheckWebhooks, wantWarm: false},
		{kind: jobs.KindCatchUp, wantWarm: false},
		{kind: jobs.KindAPICall, wantWarm: true},
		{kind: jobs.KindCheckWebhooks, rejected: true, wantWarm: false},
		{kind: jobs.KindAPICall, rejected: true, wantWarm: true},
	} {
		name := tc.kind
		if tc.rejected {
			name += "/401"
		}
		t.Run(name, func(t *testing.T) {
			s, sim := sessions(t)
			store := s.Installations.(*tokenstore.Store)
			// Make the installation idle: installed (its one use) two days ago, access token
			// expired since, nothing used it.
			sim.ExpireAccessTokens(pdsim.DefaultUserID)
			in, err := store.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			past := time.Now().Add(-48 * time.Hour)
			store.Now = func() time.Time { return past }
			in.ExpiresAt, in.Version = past.Add(time.Hour), 0
			if tc.rejected {
				in.ExpiresAt = time.Now().Add(30 * time.Minute)
			}
			if _, err := store.Install(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			store.Now = nil
			if in, err = store.Get(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if !in.WarmUntil.Before(time.Now()) || refresh.Usable(in, time.Now()) != tc.rejected {
				t.Fatalf("setup: installation not idle: warm until %v, expires %v", in.WarmUntil, in.ExpiresAt)
			}

			j := jobs.Job{ID: "bg-" + tc.kind, Kind: tc.kind, CompanyID: id.CompanyID, UserID: id.UserID}
			ss, err := s.Open(t.Context(), j)
			if err != nil {
				t.Fatalf("Open(%s) = %v", tc.kind, err)
			}
			if !refresh.Usable(ss.Installation(), time.Now()) {
				t.Fatalf("Open(%s) left the access token unusable (expires %v)", tc.kind, ss.Installation().ExpiresAt)
			}
			if resp, err := ss.Do(t.Context(), "GET", "/api/v2/deals", nil); err != nil || resp.Status != 200 {
				t.Fatalf("Do = %d, %v; want 200", resp.Status, err)
			}
			if got := sim.Counters().TokenByGrant["refresh_token"]; got != 1 {
				t.Errorf("token calls = %d, want 1 (the expired token refreshed once)", got)
			}
			after, err := store.Get(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			keepAlive := after.RefreshedAt.Add(installation.KeepAlive)
			warmDue := installation.RefreshDueAt(after.ExpiresAt)
			if got := installation.Warm(after); got != tc.wantWarm {
				t.Errorf("after %s: Warm = %v (warm until %v, refreshed %v), want %v", tc.kind, got, after.WarmUntil, after.RefreshedAt, tc.wantWarm)
			}
			want := keepAlive
			if tc.wantWarm {
				want = warmDue
			}
			if d := after.RefreshDueAt.Sub(want).Abs(); d > 2*time.Second {
				t.Errorf("after %s: refresh due %v, want %v (warm: %v)", tc.kind, after.RefreshDueAt, want, tc.wantWarm)
			}
		})
	}
}
