package tokenstore_test

import (
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestGatePauseProbeLift: the first pause is created (one alert), a second only moves the
// probe later; one caller claims a due probe; a lift ends the pause.
func TestGatePauseProbeLift(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	g, err := e.store.Gate(ctx, 42)
	if err != nil || g.Paused || g.CompanyID != 42 || len(g.Holds) != 0 {
		t.Fatalf("Gate(no record) = %+v, %v; want not paused", g, err)
	}
	probe := t0.Add(10 * time.Minute)
	if created, err := e.store.PauseCompany(ctx, 42, "daily_budget_exceeded", probe); err != nil || !created {
		t.Fatalf("PauseCompany = %v, %v; want created", created, err)
	}
	if created, err := e.store.PauseCompany(ctx, 42, "payment_required", probe.Add(5*time.Minute)); err != nil || created {
		t.Fatalf("PauseCompany again = %v, %v; want not created", created, err)
	}
	if created, _ := e.store.PauseCompany(ctx, 42, "x", t0); created {
		t.Errorf("PauseCompany with an earlier probe = created, want not")
	}
	g, err = e.store.Gate(ctx, 42)
	if err != nil || !g.Paused || g.Reason != "daily_budget_exceeded" || !g.Since.Equal(t0) || !g.ProbeAt.Equal(probe.Add(5*time.Minute)) {
		t.Fatalf("Gate = %+v, %v; want paused for the budget since t0, probe 15 min on", g, err)
	}
	if ok, err := e.store.ClaimProbe(ctx, 42, t0.Add(time.Hour)); err != nil || ok {
		t.Errorf("ClaimProbe before the probe time = %v, %v; want false", ok, err)
	}
	e.clock.Advance(15 * time.Minute)
	if ok, err := e.store.ClaimProbe(ctx, 42, e.clock.Now().Add(10*time.Minute)); err != nil || !ok {
		t.Errorf("ClaimProbe when due = %v, %v; want true", ok, err)
	}
	if ok, _ := e.store.ClaimProbe(ctx, 42, e.clock.Now().Add(10*time.Minute)); ok {
		t.Errorf("second ClaimProbe = true, want false (claimed)")
	}
	if lifted, err := e.store.LiftPause(ctx, 42); err != nil || !lifted {
		t.Errorf("LiftPause = %v, %v; want lifted", lifted, err)
	}
	if lifted, _ := e.store.LiftPause(ctx, 42); lifted {
		t.Errorf("LiftPause again = true, want false")
	}
	if ok, _ := e.store.ClaimProbe(ctx, 42, e.clock.Now()); ok {
		t.Errorf("ClaimProbe without a pause = true, want false")
	}
	if _, err := e.store.PauseCompany(ctx, 0, "x", t0); err == nil {
		t.Errorf("PauseCompany(0) = nil, want an error")
	}
}

// TestGateHolds: token holds only move later and come back in the Gate.
func TestGateHolds(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	until := t0.Add(2 * time.Second)
	for _, h := range []struct {
		key string
		at  time.Time
	}{{tokenstore.HoldKey(7, false), until}, {tokenstore.HoldKey(7, false), t0}, {tokenstore.HoldKey(7, true), until.Add(time.Second)}} {
		if err := e.store.HoldToken(ctx, 42, h.key, h.at); err != nil {
			t.Fatalf("HoldToken(%s) = %v", h.key, err)
		}
	}
	g, err := e.store.Gate(ctx, 42)
	if err != nil || g.Paused || !g.Holds["7"].Equal(until) || !g.Holds["7_search"].Equal(until.Add(time.Second)) {
		t.Errorf("Gate = %+v, %v; want holds 7 at +2 s and 7_search at +3 s, not paused", g, err)
	}
	if err := e.store.HoldToken(ctx, 42, "a b", until); err == nil {
		t.Errorf("HoldToken with a bad key = nil, want an error")
	}
}
