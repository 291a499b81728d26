package opscli_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestPauseShowAndLift: pdctl shows a company's pause (reason, next probe, holds) and lifts it.
func TestPauseShowAndLift(t *testing.T) {
	f := newFixture(t)
	f.cli.Pauses = f.store
	ctx := t.Context()
	if _, err := f.store.PauseCompany(ctx, 42, "payment_required", f.now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.store.HoldToken(ctx, 42, tokenstore.HoldKey(7, false), f.now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.exec(ctx, "pause", "show", "42"); err != nil {
		t.Fatalf("pause show = %v", err)
	}
	if out := f.out.String(); !strings.Contains(out, "payment_required") || !strings.Contains(out, "next probe") || !strings.Contains(out, "hold 7") {
		t.Errorf("pause show =\n%s\nwant the reason, the next probe and the hold", out)
	}
	f.out.Reset()
	if err := f.exec(ctx, "pause", "lift", "42"); err != nil || !strings.Contains(f.out.String(), "lifted") {
		t.Fatalf("pause lift = %v, %q; want lifted", err, f.out.String())
	}
	f.out.Reset()
	if err := f.exec(ctx, "pause", "show", "-json", "42"); err != nil || !strings.Contains(f.out.String(), `"paused": false`) {
		t.Errorf("pause show -json after the lift = %v, %s; want paused false", err, f.out.String())
	}
	f.out.Reset()
	if err := f.exec(ctx, "pause", "lift", "42"); err != nil || !strings.Contains(f.out.String(), "was not paused") {
		t.Errorf("second lift = %v, %q; want not paused", err, f.out.String())
	}
	for _, bad := range [][]string{{"pause"}, {"pause", "drop", "42"}, {"pause", "show"}, {"pause", "show", "acme"}} {
		if err := runCLI(ctx, f.cli, bad); !errors.Is(err, opscli.ErrUsage) {
			t.Errorf("Run(%q) = %v, want ErrUsage", bad, err)
		}
	}
}
