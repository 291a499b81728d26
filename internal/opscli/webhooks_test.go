package opscli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
)

// webhooksFixture is the opscli fixture with the jobs queue and the audit log wired as pdctl
// wires them for `webhooks register`.
func webhooksFixture(t *testing.T) (*fixture, *bytes.Buffer) {
	t.Helper()
	f := newFixture(t)
	f.cli.Jobs = &jobs.Enqueuer{SQS: f.sqs, QueueURL: f.jobs}
	var audit bytes.Buffer
	f.cli.Audit = &opscli.Auditor{Log: runLogger(&audit), Who: func(context.Context) string { return "oncall@test" }}
	return f, &audit
}

// registerJSON runs `pdctl webhooks register ARGS -json` and decodes its result.
func (f *fixture) registerJSON(t *testing.T, args ...string) opscli.WebhooksResult {
	t.Helper()
	var res opscli.WebhooksResult
	out := f.run(t, append(append([]string{"webhooks", "register"}, args...), "-json")...)
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("webhooks register -json output %q: %v", out, err)
	}
	return res
}

func TestWebhooksRegisterOneInstallation(t *testing.T) {
	f, audit := webhooksFixture(t)
	id := f.install(t, 31, 1, time.Hour)
	f.install(t, 31, 2, time.Hour) // another installation of the company: not queued

	out := f.run(t, "webhooks", "register", id.String())
	if !strings.Contains(out, "enqueued 1 register_webhooks job(s)") || strings.Contains(out, "skipped") {
		t.Errorf("webhooks register %s printed %q, want one job enqueued and nothing skipped", id, out)
	}
	js := f.queuedJobs(t)
	if len(js) != 1 || js[0].Kind != jobs.KindRegisterWebhooks || js[0].CompanyID != id.CompanyID || js[0].UserID != id.UserID {
		t.Fatalf("queued jobs = %+v, want one register_webhooks for %s", js, id)
	}
	if want := "register_webhooks:" + id.String() + ":op-" + f.now.Format("20060102T150405Z") + "-"; !strings.HasPrefix(js[0].ID, want) {
		t.Errorf("job id = %q, want it to start with %q", js[0].ID, want)
	}
	if a := audit.String(); !strings.Contains(a, `"action":"register_webhooks"`) || !strings.Contains(a, `"operator":"oncall@test"`) || !strings.Contains(a, `"installations":"31:1"`) {
		t.Errorf("audit log %q lacks the action, the operator or the installation", a)
	}
}

func TestWebhooksRegisterAllQueuesOnlyActive(t *testing.T) {
	f, audit := webhooksFixture(t)
	active := []installation.ID{f.install(t, 41, 1, time.Hour), f.install(t, 41, 2, time.Hour), f.install(t, 42, 1, time.Hour)}
	gone := f.install(t, 43, 1, time.Hour)
	if _, err := f.store.Uninstall(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	reauth := f.install(t, 44, 1, time.Hour)
	if _, err := f.store.Lease(context.Background(), reauth, "test", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := f.store.MarkNeedsReauth(context.Background(), reauth, "test", "invalid_grant"); err != nil {
		t.Fatal(err)
	}

	res := f.registerJSON(t, "-all")
	if res.Enqueued != len(active) {
		t.Errorf("enqueued = %d, want %d", res.Enqueued, len(active))
	}
	skipped := map[installation.ID]string{}
	for _, s := range res.Skipped {
		skipped[installation.ID{CompanyID: s.CompanyID, UserID: s.UserID}] = s.Status
	}
	if len(skipped) != 2 || skipped[gone] != string(installation.StatusUninstalled) || skipped[reauth] != string(installation.StatusNeedsReauth) {
		t.Errorf("skipped = %+v, want %s uninstalled and %s needs_reauthorization", res.Skipped, gone, reauth)
	}
	var got []installation.ID
	for _, j := range f.queuedJobs(t) {
		if j.Kind != jobs.KindRegisterWebhooks || !strings.HasSuffix(j.ID, ":"+res.Run) {
			t.Errorf("queued %+v, want a register_webhooks job of run %s", j, res.Run)
		}
		got = append(got, installation.ID{CompanyID: j.CompanyID, UserID: j.UserID})
	}
	less := func(a, b installation.ID) int {
		if a.CompanyID != b.CompanyID {
			return int(a.CompanyID - b.CompanyID)
		}
		return int(a.UserID - b.UserID)
	}
	slices.SortFunc(got, less)
	if !slices.Equal(got, active) {
		t.Errorf("jobs queued for %v, want exactly the active %v", got, active)
	}
	if a := audit.String(); !strings.Contains(a, `"installations":"all"`) {
		t.Errorf("audit log %q does not say all installations", a)
	}

	// The text output names the skipped installations.
	out := f.run(t, "webhooks", "register", "-all")
	for _, want := range []string{"enqueued 3 register_webhooks job(s)", "skipped 43:1 (uninstalled, not active)", "skipped 44:1 (needs_reauthorization, not active)"} {
		if !strings.Contains(out, want) {
			t.Errorf("webhooks register -all printed %q, want %q", out, want)
		}
	}
}

// The worker dedupes by installation and job id: each run must queue a job it will run.
func TestWebhooksRegisterTwiceGivesNewJobIDs(t *testing.T) {
	f, _ := webhooksFixture(t)
	id := f.install(t, 51, 1, time.Hour)
	f.run(t, "webhooks", "register", id.String())
	f.run(t, "webhooks", "register", id.String()) // the fixture's clock stands still
	var ids []string
	for range 3 { // SQS may answer a receive with part of the queue
		for _, j := range f.queuedJobs(t) {
			ids = append(ids, j.ID)
		}
		if len(ids) >= 2 {
			break
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("job ids of two runs = %q, want two distinct", ids)
	}
}

func TestWebhooksRegisterRefusesBadArguments(t *testing.T) {
	f, _ := webhooksFixture(t)
	id := f.install(t, 61, 1, time.Hour)
	for _, args := range [][]string{
		{"webhooks"},
		{"webhooks", "list"},
		{"webhooks", "register"},
		{"webhooks", "register", id.String(), "-all"},
		{"webhooks", "register", id.String(), "61:2"},
		{"webhooks", "register", "61"},
		{"webhooks", "register", "a:b"},
		{"webhooks", "register", "-all", "-nope"},
	} {
		if err := f.exec(context.Background(), args...); !errors.Is(err, opscli.ErrUsage) {
			t.Errorf("pdctl %q = %v, want a usage error", args, err)
		}
	}
	err := f.exec(context.Background(), "webhooks", "register", "61:9")
	if err == nil || errors.Is(err, opscli.ErrUsage) || !strings.Contains(err.Error(), "no installation 61:9") {
		t.Errorf("webhooks register of an unknown installation = %v, want no installation 61:9", err)
	}
	if js := f.queuedJobs(t); len(js) != 0 {
		t.Errorf("after refused commands queued %+v, want no job", js)
	}

	// A not-active installation is skipped, not an error.
	if _, err := f.store.Uninstall(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if out := f.run(t, "webhooks", "register", id.String()); !strings.Contains(out, "enqueued 0") || !strings.Contains(out, "skipped 61:1 (uninstalled") {
		t.Errorf("webhooks register of an uninstalled installation printed %q, want 0 enqueued and it skipped", out)
	}
	if js := f.queuedJobs(t); len(js) != 0 {
		t.Errorf("after an uninstalled installation queued %+v, want no job", js)
	}

	// Missing configuration is a clear error naming the variable.
	f.cli.Jobs = nil
	if err := f.exec(context.Background(), "webhooks", "register", "-all"); err == nil || !strings.Contains(err.Error(), "JOBS_QUEUE_URL") {
		t.Errorf("webhooks register without a jobs queue = %v, want JOBS_QUEUE_URL named", err)
	}
}

// An enqueue failure stops the run and says how many jobs were enqueued before it.
func TestWebhooksRegisterStopsAtAnEnqueueFailure(t *testing.T) {
	f, _ := webhooksFixture(t)
	f.install(t, 71, 1, time.Hour)
	f.install(t, 71, 2, time.Hour)
	f.install(t, 71, 3, time.Hour)
	real := f.cli.Jobs
	calls := 0
	f.cli.Jobs = enqueueFunc(func(ctx context.Context, j jobs.Job) error {
		if calls++; calls == 3 {
			return errors.New("queue unavailable")
		}
		return real.Enqueue(ctx, j)
	})
	err := f.exec(context.Background(), "webhooks", "register", "-all")
	if err == nil || !strings.Contains(err.Error(), "queue unavailable") || !strings.Contains(err.Error(), "2 job(s) enqueued before it") {
		t.Errorf("webhooks register -all with a failing queue = %v, want the failure and 2 enqueued before it", err)
	}
}

// enqueueFunc is an opscli.Enqueuer from a function, to fail one enqueue of a real queue.
type enqueueFunc func(ctx context.Context, j jobs.Job) error

func (f enqueueFunc) Enqueue(ctx context.Context, j jobs.Job) error { return f(ctx, j) }

var _ opscli.Enqueuer = enqueueFunc(nil)

// TestWebhooksCatchUpAndCheck: `webhooks catch-up` queues a catch_up job whose window ends now
// and starts at --since (an RFC 3339 time or a duration before now; by default the last
// processed event, left to the worker), and `webhooks check` a check_webhooks job, each with
// the run's id; malformed --since values are usage errors.
func TestWebhooksCatchUpAndCheck(t *testing.T) {
	f, audit := webhooksFixture(t)
	id := f.install(t, 71, 1, time.Hour)
	tests := []struct {
		name      string
		args      []string
		wantSince time.Time
	}{
		{"since the last processed event", nil, time.Time{}},
		{"since a duration ago", []string{"--since", "72h"}, f.now.Add(-72 * time.Hour).UTC()},
		{"since a time", []string{"--since", "2026-11-01T08:00:00Z"}, time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := f.run(t, append([]string{"webhooks", "catch-up", id.String()}, tt.args...)...)
			if !strings.Contains(out, "enqueued 1 catch_up job(s)") {
				t.Errorf("webhooks catch-up printed %q, want one catch_up job", out)
			}
			js := f.queuedJobs(t)
			if len(js) != 1 || js[0].Kind != jobs.KindCatchUp || js[0].CompanyID != id.CompanyID || !strings.HasPrefix(js[0].ID, "catch_up:"+id.String()+":op-") {
				t.Fatalf("queued jobs = %+v, want one catch_up for %s", js, id)
			}
			var c jobs.CatchUp
			if err := json.Unmarshal(js[0].Body, &c); err != nil || !c.Since.Equal(tt.wantSince) || !c.Until.Equal(f.now.UTC()) || c.Reason != "operator" {
				t.Errorf("catch_up body = %s (%v), want since %s, until %s, reason operator", js[0].Body, err, tt.wantSince, f.now.UTC())
			}
		})
	}
	if a := audit.String(); !strings.Contains(a, `"action":"catch_up"`) {
		t.Errorf("audit log %q lacks the catch-up", a)
	}
	out := f.run(t, "webhooks", "check", id.String())
	if js := f.queuedJobs(t); !strings.Contains(out, "enqueued 1 check_webhooks job(s)") || len(js) != 1 || js[0].Kind != jobs.KindCheckWebhooks {
		t.Errorf("webhooks check printed %q and queued %+v, want one check_webhooks job", out, js)
	}
	for _, bad := range []string{"yesterday", "-5h", "2099-01-01T00:00:00Z"} {
		if err := f.exec(context.Background(), "webhooks", "catch-up", id.String(), "--since", bad); !errors.Is(err, opscli.ErrUsage) {
			t.Errorf("webhooks catch-up --since %q = %v, want a usage error", bad, err)
		}
	}
}
