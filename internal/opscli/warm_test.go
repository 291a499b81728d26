package opscli_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestWarm: `pdctl warm ID on` keeps an installation warm whether used or not, `off` gives it
// back to the adaptive refresh; the operator's store needs no key for it.
func TestWarm(t *testing.T) {
	f := newFixture(t)
	id := f.install(t, 7, 8, time.Hour)
	// As pdctl wires it: the operator's store, without a key.
	f.cli.Warm = (&tokenstore.Store{DB: f.store.DB, Table: f.store.Table}).SetAlwaysWarm

	out := f.run(t, "warm", "7:8", "on")
	if !strings.Contains(out, "7:8: always warm on") {
		t.Errorf("warm on printed %q", out)
	}
	in, err := f.store.Get(context.Background(), id)
	if err != nil || !in.AlwaysWarm || !in.RefreshDueAt.Equal(installation.RefreshDueAt(in.ExpiresAt)) {
		t.Errorf("after warm on: always %t due %s, %v; want set and due before expiry", in.AlwaysWarm, in.RefreshDueAt, err)
	}
	f.run(t, "warm", "7:8", "off")
	if in, _ := f.store.Get(context.Background(), id); in.AlwaysWarm {
		t.Error("after warm off: still always warm")
	}
	for _, args := range [][]string{{"warm", "7:8"}, {"warm", "7:8", "maybe"}, {"warm", "nope", "on"}} {
		if err := runCLI(context.Background(), f.cli, args); !errors.Is(err, opscli.ErrUsage) {
			t.Errorf("pdctl %s = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}
