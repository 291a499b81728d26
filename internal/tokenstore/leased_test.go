package tokenstore_test

import (
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// After a Lease by the same Store, SaveRefreshed puts the whole item; without one (another
// process leased) it updates it. Both must leave the same item and return the same
// installation, whatever Pipedrive returned.
func TestSaveRefreshedAfterLeaseEqualsSaveElsewhere(t *testing.T) {
	t.Parallel()
	exp := t0.Add(time.Hour + 3599*time.Second)
	tests := []struct {
		name string
		tok  tokenstore.Tokens
	}{
		{"access token only", tokenstore.Tokens{AccessToken: "v1u:new", ExpiresAt: exp}},
		{"everything returned", tokenstore.Tokens{AccessToken: "v1u:new", RefreshToken: "1:1:new",
			APIDomain: "https://acme-eu.pipedrive.com", Scopes: []string{"base"}, ExpiresAt: exp}},
		{"empty scope list", tokenstore.Tokens{AccessToken: "v1u:new", Scopes: []string{}, ExpiresAt: exp}},
		{"a use recorded", tokenstore.Tokens{AccessToken: "v1u:new", RefreshToken: "1:1:new", ExpiresAt: exp,
			WarmUntil: t0.Add(3 * time.Hour), NextRefresh: exp.Add(-10 * time.Minute)}},
	}
	other := tokenstore.InstallationID{CompanyID: acme.CompanyID, UserID: acme.UserID + 1}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// A store in another process: same table, clock and key, none of e.store's leases.
			elsewhere := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now, Cipher: e.cipher}
			saved := map[tokenstore.InstallationID]tokenstore.Installation{}
			for _, c := range []struct {
				id    tokenstore.InstallationID
				saver *tokenstore.Store
			}{{acme, e.store}, {other, elsewhere}} {
				e.install(t, c.id, "a")
				// A failure first, so the save has a failure count and a reason to clear.
				lease(t, e, c.id, "refresher-1")
				if err := e.store.RecordFailure(t.Context(), c.id, "refresher-1", "server_error", t0.Add(time.Minute)); err != nil {
					t.Fatalf("RecordFailure(%s) = %v", c.id, err)
				}
				l := lease(t, e, c.id, "refresher-1")
				got, err := c.saver.SaveRefreshed(t.Context(), c.id, "refresher-1", l.Version, tt.tok)
				if err != nil {
					t.Fatalf("SaveRefreshed(%s) = %v", c.id, err)
				}
				saved[c.id] = got
			}
			put, updated := saved[acme], saved[other]
			put.ID, put.CodeHash, put.RefreshToken = other, updated.CodeHash, updated.RefreshToken
			if !reflect.DeepEqual(put, updated) {
				t.Errorf("SaveRefreshed after a Lease = %+v,\nwant what a save elsewhere returns, %+v", put, updated)
			}
			if tt.tok.RefreshToken == "" && saved[acme].RefreshToken == "" {
				t.Errorf("SaveRefreshed after a Lease returned no refresh token, want the stored one")
			}
			for _, id := range []tokenstore.InstallationID{acme, other} {
				got, err := e.store.Get(t.Context(), id)
				if err != nil || got.AccessToken != saved[id].AccessToken || got.RefreshToken != saved[id].RefreshToken {
					t.Errorf("Get(%s) after the save: tokens differ from SaveRefreshed's (err %v)", id, err)
				}
			}
			a, b := e.raw(t, "inst#3408256#5206648"), e.raw(t, "inst#3408256#5206649")
			if ka, kb := slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)); !slices.Equal(ka, kb) {
				t.Fatalf("stored attributes after a put %v, after an update %v; want the same", ka, kb)
			}
			for attr := range a {
				switch attr {
				case "pk", "user_id", "code_hash", "due_shard", "access_token", "refresh_token":
					continue // differ by installation, or sealed
				}
				if !reflect.DeepEqual(a[attr], b[attr]) {
					t.Errorf("stored %s after a put = %v, after an update %v", attr, show(a[attr]), show(b[attr]))
				}
			}
		})
	}
}

func show(av types.AttributeValue) any {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return av
}
