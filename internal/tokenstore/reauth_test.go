package tokenstore_test

import (
	"fmt"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// An installation whose refresh token Pipedrive rejected keeps no tokens: they are dead, and
// a dead credential kept in the table is still one to leak (issue 11, finding 3).
func TestMarkNeedsReauthDropsTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := e.install(t, acme, "a")
	lease(t, e, acme, "refresher-1")
	if err := e.store.MarkNeedsReauth(t.Context(), acme, "refresher-1", "refresh_token_invalid"); err != nil {
		t.Fatalf("MarkNeedsReauth = %v", err)
	}
	item := e.raw(t, fmt.Sprintf("inst#%d#%d", acme.CompanyID, acme.UserID))
	if item == nil {
		t.Fatalf("item inst#%s is gone, want it kept with its history", acme)
	}
	for _, attr := range []string{"access_token", "refresh_token", "lease_owner", "due_shard"} {
		if _, ok := item[attr]; ok {
			t.Errorf("after MarkNeedsReauth the item has %s, want it removed", attr)
		}
	}
	got, err := e.store.Get(t.Context(), acme)
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got.Status != tokenstore.StatusNeedsReauth || got.AccessToken != "" || got.RefreshToken != "" {
		t.Errorf("Get = status %s, tokens %t/%t; want %s without tokens", got.Status, got.AccessToken != "", got.RefreshToken != "", tokenstore.StatusNeedsReauth)
	}
	if got.FailureCount != before.FailureCount+1 || got.LastFailure != "refresh_token_invalid" || got.APIDomain != before.APIDomain {
		t.Errorf("Get = failures %d (%q), api_domain %q; want %d (refresh_token_invalid), %q", got.FailureCount, got.LastFailure, got.APIDomain, before.FailureCount+1, before.APIDomain)
	}
}
