package tokenstore_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	domain "github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

var acme = tokenstore.InstallationID{CompanyID: 3408256, UserID: 5206648}

func TestInstallThenGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := installation(acme, "a", t0.Add(3599*time.Second))
	got, err := e.store.Install(t.Context(), in)
	if err != nil {
		t.Fatalf("Install(%s) = %v", acme, err)
	}
	want := tokenstore.Installation{
		ID:           acme,
		AccessToken:  in.AccessToken,
		RefreshToken: in.RefreshToken,
		APIDomain:    "https://acme.pipedrive.com",
		Scopes:       []string{"base", "deals:full"},
		ExpiresAt:    t0.Add(3599 * time.Second),
		Status:       tokenstore.StatusActive,
		Version:      1,
		CodeHash:     in.CodeHash,
		InstalledAt:  t0,
		UpdatedAt:    t0,
	}
	assertInstallation(t, "Install", got, want)

	read, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatalf("Get(%s) = %v", acme, err)
	}
	assertInstallation(t, "Get", read, want)

	item := e.raw(t, "inst#3408256#5206648")
	if _, ok := item["expires_at"]; ok {
		t.Errorf("stored installation has expires_at (the TTL attribute): DynamoDB would delete it")
	}
	wantDue := strconv.FormatInt(t0.Add(3599*time.Second-10*time.Minute).Unix(), 10)
	if n, ok := item["refresh_due_at"].(*types.AttributeValueMemberN); !ok || n.Value != wantDue {
		t.Errorf("stored refresh_due_at = %v, want N %s (expiry minus 10 minutes)", item["refresh_due_at"], wantDue)
	}
	if _, ok := item["due_shard"].(*types.AttributeValueMemberS); !ok {
		t.Errorf("stored due_shard = %v, want a string: active installations must be in the due index", item["due_shard"])
	}

	_, err = e.store.Get(t.Context(), tokenstore.InstallationID{CompanyID: 1, UserID: 2})
	if !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Get(1:2) = %v, want ErrNotFound", err)
	}
}

// assertInstallation compares every field; times by instant.
func assertInstallation(t *testing.T, op string, got, want tokenstore.Installation) {
	t.Helper()
	type field struct {
		name      string
		got, want any
	}
	for _, f := range []field{
		{"ID", got.ID, want.ID},
		{"AccessToken", got.AccessToken == want.AccessToken, true},
		{"RefreshToken", got.RefreshToken == want.RefreshToken, true},
		{"APIDomain", got.APIDomain, want.APIDomain},
		{"Scopes", strings.Join(got.Scopes, ","), strings.Join(want.Scopes, ",")},
		{"ExpiresAt", got.ExpiresAt.UTC(), want.ExpiresAt.UTC()},
		{"Status", got.Status, want.Status},
		{"Version", got.Version, want.Version},
		{"LeaseOwner", got.LeaseOwner, want.LeaseOwner},
		{"LeaseUntil", got.LeaseUntil.UTC(), want.LeaseUntil.UTC()},
		{"FailureCount", got.FailureCount, want.FailureCount},
		{"LastFailure", got.LastFailure, want.LastFailure},
		{"CodeHash", got.CodeHash, want.CodeHash},
		{"InstalledAt", got.InstalledAt.UTC(), want.InstalledAt.UTC()},
		{"UpdatedAt", got.UpdatedAt.UTC(), want.UpdatedAt.UTC()},
		{"RefreshedAt", got.RefreshedAt.UTC(), want.RefreshedAt.UTC()},
	} {
		if f.got != f.want {
			// Token fields are compared as booleans so that a failure never prints a token.
			t.Errorf("%s(%s).%s = %v, want %v", op, want.ID, f.name, f.got, f.want)
		}
	}
}

func TestInstallRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	valid := installation(acme, "a", t0.Add(time.Hour))
	tests := []struct {
		name   string
		change func(*tokenstore.Installation)
	}{
		{"zero company id", func(in *tokenstore.Installation) { in.ID.CompanyID = 0 }},
		{"negative user id", func(in *tokenstore.Installation) { in.ID.UserID = -1 }},
		{"no access token", func(in *tokenstore.Installation) { in.AccessToken = "" }},
		{"no refresh token", func(in *tokenstore.Installation) { in.RefreshToken = "" }},
		{"no expiry", func(in *tokenstore.Installation) { in.ExpiresAt = time.Time{} }},
		{"raw code instead of its hash", func(in *tokenstore.Installation) { in.CodeHash = "8f3b1c0d2e" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := valid
			tt.change(&in)
			if _, err := e.store.Install(t.Context(), in); !errors.Is(err, tokenstore.ErrInvalid) {
				t.Errorf("Install(%s) = %v, want ErrInvalid", tt.name, err)
			}
		})
	}
	if _, err := e.store.Get(t.Context(), acme); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Get after rejected installs = %v, want ErrNotFound", err)
	}
}

func TestReinstall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before brings the installation into the state the re-install meets and returns
		// the version the re-install must go past.
		before func(t *testing.T, e *env) int64
	}{
		{"over an active installation with a lease and failures", func(t *testing.T, e *env) int64 {
			l := lease(t, e, acme, "refresher-1")
			if err := e.store.RecordFailure(t.Context(), acme, "refresher-1", "server_error", t0.Add(time.Minute)); err != nil {
				t.Fatalf("RecordFailure = %v", err)
			}
			lease(t, e, acme, "refresher-2") // left held
			return l.Version + 2
		}},
		{"over an uninstalled installation", func(t *testing.T, e *env) int64 {
			out, err := e.store.Uninstall(t.Context(), acme)
			if err != nil {
				t.Fatalf("Uninstall = %v", err)
			}
			return out.Version
		}},
		{"over one that needs reauthorization", func(t *testing.T, e *env) int64 {
			lease(t, e, acme, "refresher-1")
			if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-1", "refresh_token_invalid"); err != nil {
				t.Fatalf("MarkNeedsReauth = %v", err)
			}
			got, err := e.store.Get(t.Context(), acme)
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			return got.Version
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.install(t, acme, "a")
			prev := tt.before(t, e)
			e.clock.Advance(2 * time.Hour)
			in := installation(acme, "b", e.clock.Now().Add(time.Hour))
			got, err := e.store.Install(t.Context(), in)
			if err != nil {
				t.Fatalf("Install again = %v", err)
			}
			assertInstallation(t, "Install again", got, tokenstore.Installation{
				ID:           acme,
				AccessToken:  in.AccessToken,
				RefreshToken: in.RefreshToken,
				APIDomain:    in.APIDomain,
				Scopes:       in.Scopes,
				ExpiresAt:    in.ExpiresAt,
				Status:       tokenstore.StatusActive,
				Version:      prev + 1,
				CodeHash:     in.CodeHash,
				InstalledAt:  t0, // the first install
				UpdatedAt:    e.clock.Now(),
			})
			due, err := e.store.Due(t.Context(), in.ExpiresAt, 10)
			if err != nil || !slices.Equal(due, []tokenstore.InstallationID{acme}) {
				t.Errorf("Due after re-install = %v, %v, want [%s]", due, err, acme)
			}
		})
	}
}

// A refresh that was in flight during a re-install must not overwrite the new tokens.
func TestReinstallBeatsInflightRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	in := e.install(t, acme, "b")
	_, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tokens("stale"))
	if !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("SaveRefreshed after re-install = %v, want ErrConflict", err)
	}
	assertRefreshToken(t, e, in.RefreshToken)
}

func lease(t *testing.T, e *env, id tokenstore.InstallationID, owner string) tokenstore.Installation {
	t.Helper()
	l, err := e.store.Lease(t.Context(), id, owner, 30*time.Second)
	if err != nil {
		t.Fatalf("Lease(%s, %s) = %v", id, owner, err)
	}
	return l
}

func tokens(n string) tokenstore.Tokens {
	return tokenstore.Tokens{
		AccessToken:  "v1u:access-" + n,
		RefreshToken: "1:1:refresh-" + n,
		ExpiresAt:    t0.Add(2 * time.Hour),
	}
}

// assertRefreshToken fails if the stored refresh token is not want, without printing either.
func assertRefreshToken(t *testing.T, e *env, want string) {
	t.Helper()
	got, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.RefreshToken != want {
		t.Errorf("stored refresh token is not the expected one (len %d, want len %d)", len(got.RefreshToken), len(want))
	}
}

func TestSaveRefreshedTwiceAtOneVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	first, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tokens("first"))
	if err != nil {
		t.Fatalf("SaveRefreshed(first) = %v", err)
	}
	if first.Version != l.Version+1 {
		t.Errorf("SaveRefreshed(first).Version = %d, want %d", first.Version, l.Version+1)
	}
	_, err = e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tokens("second"))
	if !errors.Is(err, tokenstore.ErrConflict) || errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("SaveRefreshed(second) at version %d = %v, want ErrConflict (not ErrLeaseLost)", l.Version, err)
	}
	assertRefreshToken(t, e, tokens("first").RefreshToken)
}

// A save from before the owner renewed its lease is stale: the version, not only the lease
// owner, must match.
func TestSaveRefreshedRejectsStaleVersionOfSameOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.install(t, acme, "a")
	stale := lease(t, e, acme, "refresher-1")
	lease(t, e, acme, "refresher-1") // renewal
	_, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-1", stale.Version, tokens("stale"))
	if !errors.Is(err, tokenstore.ErrConflict) || errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("SaveRefreshed at the pre-renewal version %d = %v, want ErrConflict (not ErrLeaseLost)", stale.Version, err)
	}
	assertRefreshToken(t, e, in.RefreshToken)
}

func TestSaveRefreshedConcurrentlyAtOneVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	const writers = 6
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tokens(strconv.Itoa(i)))
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("SaveRefreshed by writers %d and %d both succeeded at version %d", winner, i, l.Version)
		case err == nil:
			winner = i
		case !errors.Is(err, tokenstore.ErrConflict):
			t.Errorf("SaveRefreshed(writer %d) = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no SaveRefreshed succeeded: %v", errs)
	}
	assertRefreshToken(t, e, tokens(strconv.Itoa(winner)).RefreshToken)
}

func TestLeaseHeldByAnotherOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	a := lease(t, e, acme, "refresher-a")
	if a.LeaseOwner != "refresher-a" || !a.LeaseUntil.Equal(t0.Add(30*time.Second)) || a.Version != 2 {
		t.Errorf("Lease(a) = owner %q until %s version %d, want refresher-a until %s version 2",
			a.LeaseOwner, a.LeaseUntil, a.Version, t0.Add(30*time.Second))
	}
	e.clock.Advance(29 * time.Second)
	if _, err := e.store.Lease(t.Context(), acme, "refresher-b", 30*time.Second); !errors.Is(err, tokenstore.ErrLeaseHeld) {
		t.Errorf("Lease(b) while a holds it = %v, want ErrLeaseHeld", err)
	}
	if err := e.store.Release(t.Context(), acme, "refresher-b"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("Release(b) of a's lease = %v, want ErrLeaseLost", err)
	}
	renewed := lease(t, e, acme, "refresher-a")
	if !renewed.LeaseUntil.Equal(t0.Add(59*time.Second)) || renewed.Version != 3 {
		t.Errorf("Lease(a) again = until %s version %d, want until %s version 3", renewed.LeaseUntil, renewed.Version, t0.Add(59*time.Second))
	}
	if err := e.store.Release(t.Context(), acme, "refresher-a"); err != nil {
		t.Fatalf("Release(a) = %v", err)
	}
	b := lease(t, e, acme, "refresher-b")
	if b.LeaseOwner != "refresher-b" {
		t.Errorf("Lease(b) after release: owner = %q, want refresher-b", b.LeaseOwner)
	}
}

func TestLeaseExpiryHandsOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	in := e.install(t, acme, "a")
	a := lease(t, e, acme, "refresher-a")
	e.clock.Advance(31 * time.Second)
	b := lease(t, e, acme, "refresher-b")

	_, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-a", a.Version, tokens("from-a"))
	if !errors.Is(err, tokenstore.ErrLeaseLost) || !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("SaveRefreshed by the old owner = %v, want ErrLeaseLost (and ErrConflict)", err)
	}
	if err != nil && !strings.Contains(err.Error(), "lease lost") {
		t.Errorf("SaveRefreshed by the old owner: error %q does not say the lease was lost", err)
	}
	assertRefreshToken(t, e, in.RefreshToken)
	if err := e.store.RecordFailure(t.Context(), acme, "refresher-a", "timeout", t0.Add(time.Hour)); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("RecordFailure by the old owner = %v, want ErrLeaseLost", err)
	}
	if err := e.store.Release(t.Context(), acme, "refresher-a"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("Release by the old owner = %v, want ErrLeaseLost", err)
	}
	if _, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-b", b.Version, tokens("from-b")); err != nil {
		t.Fatalf("SaveRefreshed by the new owner = %v", err)
	}
	assertRefreshToken(t, e, tokens("from-b").RefreshToken)
}

// An expired lease nobody took over still lets its owner save: the version proves that
// nothing was written in between.
func TestExpiredLeaseSavesWhenNobodyElseWrote(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	a := lease(t, e, acme, "refresher-a")
	e.clock.Advance(5 * time.Minute)
	if _, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-a", a.Version, tokens("late")); err != nil {
		t.Errorf("SaveRefreshed after the lease expired, nobody else writing = %v, want nil", err)
	}
}

func TestLeaseRefusesInactiveAndMissing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		want  error
	}{
		{"never installed", func(*testing.T, *env) {}, tokenstore.ErrNotFound},
		{"needs reauthorization", func(t *testing.T, e *env) {
			e.install(t, acme, "a")
			lease(t, e, acme, "refresher-1")
			if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-1", "refresh_token_invalid"); err != nil {
				t.Fatalf("MarkNeedsReauth = %v", err)
			}
		}, tokenstore.ErrNotActive},
		{"uninstalled", func(t *testing.T, e *env) {
			e.install(t, acme, "a")
			if _, err := e.store.Uninstall(t.Context(), acme); err != nil {
				t.Fatalf("Uninstall = %v", err)
			}
		}, tokenstore.ErrNotActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tt.setup(t, e)
			if _, err := e.store.Lease(t.Context(), acme, "refresher-2", 30*time.Second); !errors.Is(err, tt.want) {
				t.Errorf("Lease(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if _, err := e.store.Get(t.Context(), acme); tt.want == tokenstore.ErrNotFound && !errors.Is(err, tokenstore.ErrNotFound) {
				t.Errorf("Get after a refused Lease = %v, want ErrNotFound (Lease must not create items)", err)
			}
		})
	}
}

func TestSaveRefreshedKeepsWhatPipedriveOmits(t *testing.T) {
	t.Parallel()
	exp := t0.Add(time.Hour + 3599*time.Second)
	tests := []struct {
		name       string
		tok        tokenstore.Tokens
		wantRT     string // "" means: the installed one
		wantDomain string
		wantScopes string
	}{
		{"no refresh token, domain or scopes returned",
			tokenstore.Tokens{AccessToken: "v1u:new", ExpiresAt: exp},
			"", "https://acme.pipedrive.com", "base,deals:full"},
		{"everything returned",
			tokenstore.Tokens{AccessToken: "v1u:new", RefreshToken: "1:1:new", APIDomain: "https://acme-eu.pipedrive.com", Scopes: []string{"base"}, ExpiresAt: exp},
			"1:1:new", "https://acme-eu.pipedrive.com", "base"},
		{"empty scope list returned",
			tokenstore.Tokens{AccessToken: "v1u:new", Scopes: []string{}, ExpiresAt: exp},
			"", "https://acme.pipedrive.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			in := e.install(t, acme, "a")
			if err := e.store.RecordFailure(t.Context(), acme, "nobody", "x", t0); !errors.Is(err, tokenstore.ErrLeaseLost) {
				t.Fatalf("RecordFailure without lease = %v, want ErrLeaseLost", err)
			}
			l := lease(t, e, acme, "refresher-1")
			if err := e.store.RecordFailure(t.Context(), acme, "refresher-1", "server_error", t0.Add(time.Minute)); err != nil {
				t.Fatalf("RecordFailure = %v", err)
			}
			e.clock.Advance(time.Hour)
			l = lease(t, e, acme, "refresher-1")
			got, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tt.tok)
			if err != nil {
				t.Fatalf("SaveRefreshed = %v", err)
			}
			want := tt.wantRT
			if want == "" {
				want = in.RefreshToken
			}
			assertInstallation(t, "SaveRefreshed", got, tokenstore.Installation{
				ID:           acme,
				AccessToken:  "v1u:new",
				RefreshToken: want,
				APIDomain:    tt.wantDomain,
				Scopes:       strings.Split(tt.wantScopes, ","),
				ExpiresAt:    exp,
				Status:       tokenstore.StatusActive,
				Version:      l.Version + 1,
				CodeHash:     in.CodeHash,
				InstalledAt:  t0,
				UpdatedAt:    e.clock.Now(),
				RefreshedAt:  e.clock.Now(),
			})
			assertRefreshToken(t, e, want)
			// Due again domain.RefreshLead before the new expiry.
			for _, c := range []struct {
				before time.Time
				want   int
			}{{exp.Add(-domain.RefreshLead - time.Second), 0}, {exp.Add(-domain.RefreshLead), 1}} {
				due, err := e.store.Due(t.Context(), c.before, 10)
				if err != nil || len(due) != c.want {
					t.Errorf("Due(%s) after refresh = %v, %v, want %d installation(s)", c.before, due, err, c.want)
				}
			}
		})
	}
}

// Rounds of concurrent refreshers: in each, every worker tries to lease, then every worker
// tries to save (the one holding the lease with its leased version, the others with the
// version read before the round). Exactly one save per round may win, and the stored refresh
// token must always be the last one saved (or kept, when Pipedrive returned none).
func TestConcurrentRefreshNeverLosesTheRefreshToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := e.install(t, acme, "a").RefreshToken
	const rounds, workers = 6, 6
	for r := range rounds {
		e.clock.Advance(time.Hour)
		before, err := e.store.Get(t.Context(), acme)
		if err != nil {
			t.Fatalf("round %d: Get = %v", r, err)
		}
		type result struct {
			leased bool
			rt     string
			err    error
		}
		results := make([]result, workers)
		var leased, wg sync.WaitGroup
		leased.Add(workers)
		for w := range workers {
			wg.Go(func() {
				owner := fmt.Sprintf("worker-%d", w)
				res := &results[w]
				version := before.Version
				l, err := e.store.Lease(t.Context(), acme, owner, 30*time.Second)
				switch {
				case err == nil:
					res.leased, version = true, l.Version
				case !errors.Is(err, tokenstore.ErrLeaseHeld):
					t.Errorf("round %d: Lease(%s) = %v, want nil or ErrLeaseHeld", r, owner, err)
				}
				leased.Done()
				leased.Wait() // every lease attempt before any save
				tok := tokenstore.Tokens{AccessToken: fmt.Sprintf("v1u:%d-%d", r, w), ExpiresAt: e.clock.Now().Add(time.Hour)}
				if r%2 == 1 { // Pipedrive returns a new refresh token on odd rounds only
					tok.RefreshToken = fmt.Sprintf("1:1:%d-%d", r, w)
				}
				_, res.err = e.store.SaveRefreshed(t.Context(), acme, owner, version, tok)
				res.rt = tok.RefreshToken
			})
		}
		wg.Wait()
		wins := 0
		for w, res := range results {
			switch {
			case res.err == nil:
				wins++
				if !res.leased {
					t.Errorf("round %d: worker %d saved without holding the lease", r, w)
				}
				if res.rt != "" {
					want = res.rt
				}
			case !errors.Is(res.err, tokenstore.ErrConflict):
				t.Errorf("round %d: SaveRefreshed(worker %d) = %v, want nil or ErrConflict", r, w, res.err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d saves succeeded, want exactly 1", r, wins)
		}
		assertRefreshToken(t, e, want)
	}
}

func TestRecordFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	retry := t0.Add(5 * time.Minute)
	long := strings.Repeat("é", 150) // 300 bytes
	if err := e.store.RecordFailure(t.Context(), acme, "refresher-1", long, retry); err != nil {
		t.Fatalf("RecordFailure = %v", err)
	}
	got, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.FailureCount != 1 || got.LeaseOwner != "" || got.Status != tokenstore.StatusActive || got.Version != l.Version+1 {
		t.Errorf("after RecordFailure: failures %d, lease %q, status %s, version %d; want 1, none, active, %d",
			got.FailureCount, got.LeaseOwner, got.Status, got.Version, l.Version+1)
	}
	if got.LastFailure != strings.Repeat("é", 100) {
		t.Errorf("after RecordFailure: LastFailure has %d bytes, want the first 200 bytes of the reason", len(got.LastFailure))
	}
	for _, c := range []struct {
		before time.Time
		want   int
	}{{retry.Add(-time.Second), 0}, {retry, 1}} {
		due, err := e.store.Due(t.Context(), c.before, 10)
		if err != nil || len(due) != c.want {
			t.Errorf("Due(%s) after RecordFailure(retry %s) = %v, %v, want %d", c.before, retry, due, err, c.want)
		}
	}
	// The lease was released: another owner takes it at once.
	lease(t, e, acme, "refresher-2")
	if err := e.store.RecordFailure(t.Context(), acme, "refresher-2", "server_error", retry); err != nil {
		t.Fatalf("RecordFailure again = %v", err)
	}
	if got, _ := e.store.Get(t.Context(), acme); got.FailureCount != 2 || got.LastFailure != "server_error" {
		t.Errorf("after two failures: count %d, last %q; want 2, server_error", got.FailureCount, got.LastFailure)
	}
	l = lease(t, e, acme, "refresher-3")
	saved, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-3", l.Version, tokens("ok"))
	if err != nil {
		t.Fatalf("SaveRefreshed = %v", err)
	}
	if saved.FailureCount != 0 || saved.LastFailure != "" {
		t.Errorf("after a successful refresh: count %d, last %q; want 0, empty", saved.FailureCount, saved.LastFailure)
	}
}

func TestMarkNeedsReauth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-2", "refresh_token_invalid"); !errors.Is(err, tokenstore.ErrLeaseLost) {
		t.Errorf("MarkNeedsReauth by a non-holder = %v, want ErrLeaseLost", err)
	}
	if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-1", "refresh_token_invalid"); err != nil {
		t.Fatalf("MarkNeedsReauth = %v", err)
	}
	got, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.Status != tokenstore.StatusNeedsReauth || got.LastFailure != "refresh_token_invalid" || got.LeaseOwner != "" ||
		got.FailureCount != 1 || got.Version != l.Version+1 {
		t.Errorf("after MarkNeedsReauth: status %s, last %q, lease %q, failures %d, version %d; want %s, refresh_token_invalid, none, 1, %d",
			got.Status, got.LastFailure, got.LeaseOwner, got.FailureCount, got.Version, tokenstore.StatusNeedsReauth, l.Version+1)
	}
	item := e.raw(t, "inst#3408256#5206648")
	for _, a := range []string{"due_shard", "refresh_due_at", "lease_owner", "lease_until"} {
		if _, ok := item[a]; ok {
			t.Errorf("after MarkNeedsReauth the item still has %s", a)
		}
	}
	if due, err := e.store.Due(t.Context(), t0.Add(1000*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("Due after MarkNeedsReauth = %v, %v, want none", due, err)
	}
	if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-1", "again"); !errors.Is(err, tokenstore.ErrNotActive) {
		t.Errorf("MarkNeedsReauth twice = %v, want ErrNotActive", err)
	}
}

func TestUninstall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	l := lease(t, e, acme, "refresher-1")
	e.clock.Advance(time.Minute)
	got, err := e.store.Uninstall(t.Context(), acme)
	if err != nil {
		t.Fatalf("Uninstall = %v", err)
	}
	if got.Status != tokenstore.StatusUninstalled || got.AccessToken != "" || got.RefreshToken != "" ||
		got.LeaseOwner != "" || got.Version != l.Version+1 || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("Uninstall = %v (tokens empty: %t, lease %q, updated %s), want uninstalled, no tokens, no lease, version %d",
			got, got.AccessToken == "" && got.RefreshToken == "", got.LeaseOwner, got.UpdatedAt, l.Version+1)
	}
	item := e.raw(t, "inst#3408256#5206648")
	for _, a := range []string{"access_token", "refresh_token", "due_shard", "refresh_due_at", "lease_owner", "lease_until"} {
		if _, ok := item[a]; ok {
			t.Errorf("after Uninstall the stored item still has %s", a)
		}
	}
	if _, ok := item["company_id"]; !ok {
		t.Errorf("after Uninstall the stored item lost company_id; want the record kept")
	}
	if due, err := e.store.Due(t.Context(), t0.Add(1000*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("Due after Uninstall = %v, %v, want none", due, err)
	}
	// The refresh that held the lease must not bring the tokens back.
	if _, err := e.store.SaveRefreshed(t.Context(), acme, "refresher-1", l.Version, tokens("late")); !errors.Is(err, tokenstore.ErrNotActive) {
		t.Errorf("SaveRefreshed after Uninstall = %v, want ErrNotActive", err)
	}
	again, err := e.store.Uninstall(t.Context(), acme)
	if err != nil || again.Version != got.Version || again.Status != tokenstore.StatusUninstalled {
		t.Errorf("Uninstall again = %v, %v, want the same uninstalled installation at version %d", again, err, got.Version)
	}
	if _, err := e.store.Uninstall(t.Context(), tokenstore.InstallationID{CompanyID: 1, UserID: 2}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Uninstall(never installed) = %v, want ErrNotFound", err)
	}
	if _, err := e.store.Get(t.Context(), tokenstore.InstallationID{CompanyID: 1, UserID: 2}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Get after Uninstall(never installed) = %v, want ErrNotFound (no item created)", err)
	}
}

func BenchmarkLeaseRelease(b *testing.B) {
	e := newEnv(b)
	if _, err := e.store.Install(b.Context(), installation(acme, "a", t0.Add(time.Hour))); err != nil {
		b.Fatalf("Install = %v", err)
	}
	for b.Loop() {
		if _, err := e.store.Lease(b.Context(), acme, "bench", 30*time.Second); err != nil {
			b.Fatalf("Lease = %v", err)
		}
		if err := e.store.Release(b.Context(), acme, "bench"); err != nil {
			b.Fatalf("Release = %v", err)
		}
	}
}

// A save whose answer was lost is retried by the SDK; the retry must not report a conflict
// (and make the refresher alert "tokens not saved") when the first attempt landed.
func TestSaveRefreshedRepeatedIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := tokenstore.InstallationID{CompanyID: 41, UserID: 1}
	e.install(t, id, "a")
	leased, err := e.store.Lease(t.Context(), id, "owner-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenstore.Tokens{AccessToken: "v1u:new-access-idem", RefreshToken: "1:1:new-refresh-idem", ExpiresAt: e.clock.Now().Add(time.Hour)}
	first, err := e.store.SaveRefreshed(t.Context(), id, "owner-1", leased.Version, tok)
	if err != nil {
		t.Fatalf("SaveRefreshed = %v", err)
	}
	again, err := e.store.SaveRefreshed(t.Context(), id, "owner-1", leased.Version, tok)
	if err != nil || again.Version != first.Version || again.AccessToken != tok.AccessToken {
		t.Errorf("repeated SaveRefreshed = %v, %v; want the landed save (version %d)", again, err, first.Version)
	}
	// A different token at the same version is a real conflict.
	other := tok
	other.AccessToken = "v1u:someone-else"
	if _, err := e.store.SaveRefreshed(t.Context(), id, "owner-1", leased.Version, other); !errors.Is(err, tokenstore.ErrConflict) {
		t.Errorf("SaveRefreshed with other tokens at a spent version = %v, want ErrConflict", err)
	}
}
