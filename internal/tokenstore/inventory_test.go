package tokenstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestInventoryListPagesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	res := testenv.Provision(t)
	db := dynamodb.NewFromConfig(testenv.AWS(t))
	store := &tokenstore.Store{DB: db, Table: res.TableName}
	inv := &tokenstore.Inventory{DB: db, Table: res.TableName}

	want := map[tokenstore.InstallationID]tokenstore.Status{}
	for i := int64(1); i <= 7; i++ {
		id := tokenstore.InstallationID{CompanyID: 100 + i%3, UserID: i}
		if _, err := store.Install(ctx, installation(id, "inv", time.Now().Add(time.Hour))); err != nil {
			t.Fatalf("Install(%s) = %v", id, err)
		}
		want[id] = tokenstore.StatusActive
		if i%3 == 0 {
			if _, err := store.Uninstall(ctx, id); err != nil {
				t.Fatalf("Uninstall(%s) = %v", id, err)
			}
			want[id] = tokenstore.StatusUninstalled
		}
	}
	// Records of other kinds share the table and must not be listed.
	if _, err := store.Once(ctx, "not-an-installation", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ClaimCode(ctx, tokenstore.HashCode("some code"), time.Hour); err != nil {
		t.Fatal(err)
	}

	seen := map[tokenstore.InstallationID]tokenstore.Status{}
	cursor, pages := "", 0
	for {
		got, next, err := inv.List(ctx, "", 2, cursor)
		if err != nil {
			t.Fatalf("List(page %d) = %v", pages, err)
		}
		if len(got) > 2 {
			t.Fatalf("List(limit 2) returned %d items", len(got))
		}
		for _, in := range got {
			if _, dup := seen[in.ID]; dup {
				t.Errorf("List returned %s twice", in.ID)
			}
			seen[in.ID] = in.Status
			if in.Status == tokenstore.StatusActive && in.RefreshDueAt.IsZero() {
				t.Errorf("active %s has no RefreshDueAt", in.ID)
			}
			if in.Status == tokenstore.StatusUninstalled && !in.RefreshDueAt.IsZero() {
				t.Errorf("uninstalled %s still has RefreshDueAt %v", in.ID, in.RefreshDueAt)
			}
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != len(want) {
		t.Errorf("List over all pages saw %d installations, want %d", len(seen), len(want))
	}
	for id, st := range want {
		if seen[id] != st {
			t.Errorf("List: %s status %q, want %q", id, seen[id], st)
		}
	}

	got, _, err := inv.List(ctx, tokenstore.StatusUninstalled, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("List(uninstalled) = %d installations, want 2", len(got))
	}
	for _, in := range got {
		if in.Status != tokenstore.StatusUninstalled {
			t.Errorf("List(uninstalled) returned %s with status %s", in.ID, in.Status)
		}
	}

	if _, _, err := inv.List(ctx, "", 10, "%%% not a cursor"); !errors.Is(err, tokenstore.ErrBadCursor) {
		t.Errorf("List(bad cursor) = %v, want ErrBadCursor", err)
	}
}
