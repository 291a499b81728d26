package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// An uninstall dated before the current installation was made is refused and changes nothing;
// one dated after it (or undated) uninstalls (issue 11, finding 3).
func TestUninstallAsOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		at          func(installedAt time.Time) time.Time
		wantErr     error
		uninstalled bool
	}{
		{"dated after the install", func(i time.Time) time.Time { return i.Add(time.Minute) }, nil, true},
		{"dated the same second", func(i time.Time) time.Time { return i }, nil, true},
		{"undated", func(time.Time) time.Time { return time.Time{} }, nil, true},
		{"dated before the install", func(i time.Time) time.Time { return i.Add(-time.Second) }, tokenstore.ErrUninstallPredates, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			installedAt := e.clock.Now()
			before := e.install(t, acme, "a")
			e.clock.Advance(time.Hour)
			got, err := e.store.UninstallAsOf(t.Context(), acme, tt.at(installedAt))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("UninstallAsOf = %v, want %v", err, tt.wantErr)
			}
			after, gerr := e.store.Get(t.Context(), acme)
			if gerr != nil {
				t.Fatalf("Get = %v", gerr)
			}
			if gone := after.Status == tokenstore.StatusUninstalled; gone != tt.uninstalled {
				t.Errorf("uninstalled = %t, want %t", gone, tt.uninstalled)
			}
			if !tt.uninstalled && (after.Version != before.Version || after.RefreshToken != before.RefreshToken || got.Version != before.Version) {
				t.Errorf("refused uninstall changed the installation: version %d (returned %d), want %d with its tokens", after.Version, got.Version, before.Version)
			}
		})
	}
}

// A re-install after an uninstall moves the install time: the old uninstall, replayed, is
// refused; a second uninstall of an uninstalled installation is not an error.
func TestUninstallAsOfAfterReinstall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.install(t, acme, "a")
	e.clock.Advance(time.Minute)
	uninstallAt := e.clock.Now()
	if _, err := e.store.UninstallAsOf(t.Context(), acme, uninstallAt); err != nil {
		t.Fatalf("UninstallAsOf = %v", err)
	}
	if _, err := e.store.UninstallAsOf(t.Context(), acme, uninstallAt); err != nil {
		t.Errorf("UninstallAsOf again = %v, want nil (already uninstalled)", err)
	}
	e.clock.Advance(time.Minute)
	e.install(t, acme, "b")
	if _, err := e.store.UninstallAsOf(t.Context(), acme, uninstallAt); !errors.Is(err, tokenstore.ErrUninstallPredates) {
		t.Errorf("replayed UninstallAsOf after a re-install = %v, want ErrUninstallPredates", err)
	}
	if _, err := e.store.UninstallAsOf(t.Context(), tokenstore.InstallationID{CompanyID: 9, UserID: 9}, uninstallAt); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("UninstallAsOf of an unknown installation = %v, want ErrNotFound", err)
	}
}
