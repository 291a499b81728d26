package pdwork

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Reasons of the Limits' own decisions.
const (
	// ReasonPaced: the token's burst window has no room; the job waits (not an attempt).
	ReasonPaced = "rate_paced"
	// ReasonGateFailed: the company's gate record could not be read; the job runs anyway.
	ReasonGateFailed = "gate_failed"
)

// Defaults of Limits.
const (
	// DefaultProbeInterval is how often a company paused for its daily budget is probed by one
	// job when Pipedrive did not say when the budget returns (it resets at the server's
	// midnight, whose timezone we do not know).
	DefaultProbeInterval = 10 * time.Minute
	// DefaultAccountProbeInterval is the same for a pause a person must end (402, feature
	// capping, 415): they act in hours, and pdctl can lift the pause at once.
	DefaultAccountProbeInterval = time.Hour
	// DefaultGateCacheTTL is how long a read gate record is trusted in this process. Pacing
	// learns most from the answers themselves; the record tells instances that have not called
	// lately, and a pause reaches every instance within this time.
	DefaultGateCacheTTL = time.Second
	// DefaultMaxWait is the longest a job waits in-process for its token's burst window; a
	// longer hold defers the job instead.
	DefaultMaxWait = 10 * time.Second
)

// Gates is what Limits needs of the tokens table; *tokenstore.Store satisfies it.
type Gates interface {
	Gate(ctx context.Context, companyID int64) (tokenstore.Gate, error)
	PauseCompany(ctx context.Context, companyID int64, reason string, probeAt time.Time) (created bool, err error)
	ClaimProbe(ctx context.Context, companyID int64, next time.Time) (bool, error)
	LiftPause(ctx context.Context, companyID int64) (bool, error)
	HoldToken(ctx context.Context, companyID int64, holdKey string, until time.Time) error
}

var _ Gates = (*tokenstore.Store)(nil)

// Limits keeps the calls of every worker instance within Pipedrive's limits. Per company: a
// pause when the daily token budget is spent (402, feature capping and 415 too), recorded in
// the company's gate record, during which jobs wait without calling Pipedrive and one job at a
// time probes at ProbeInterval. Per token and window (search has its own): burst pacing from
// the x-ratelimit-* headers of every answer, holding calls in-process before the window would
// answer 429 and sharing the hold through the gate record only when the window runs low, so a
// call costs no extra DynamoDB request in the common case. Gates is required. Safe for
// concurrent use.
type Limits struct {
	Gates Gates
	// Alerts is told once per pause (a created gate pause).
	Alerts alerts.Notifier
	// ProbeInterval, AccountProbeInterval, GateCacheTTL, MaxWait: see the Default… values.
	ProbeInterval, AccountProbeInterval, GateCacheTTL, MaxWait time.Duration
	// Reserve is how many calls the window keeps unused before holding, for calls already
	// on their way; 0 means a sixteenth of the window's limit, at least 2.
	Reserve int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sleep waits d or until ctx ends; a timer on the real clock when nil. A test running on a
	// scaled clock passes a scaled sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log receives pause, lift and pacing events; nil discards.
	Log *slog.Logger

	mu        sync.Mutex
	companies map[int64]*companyState
	tokens    map[string]*tokenState
}

// companyState is the cached gate record of a company.
type companyState struct {
	gate   tokenstore.Gate
	readAt time.Time
	// version counts local changes (a pause, a lift, a probe): a read that started before
	// one must not overwrite it with the older record.
	version int
}

// tokenState is this process's view of one token window.
type tokenState struct {
	known     bool // remaining and resetAt come from an answer
	remaining int
	limit     int
	resetAt   time.Time
	holdUntil time.Time
	written   time.Time // the latest hold written to the gate record
	inflight  int
}

// Admit decides whether a job of j's company may call Pipedrive now. nil: go ahead (probe
// true when the job is the one probe of a paused company: its success lifts the pause).
// Otherwise a deferral verdict: the company is paused and it is not this job's turn. A gate
// that cannot be read lets the job run: the answer tells.
func (l *Limits) Admit(ctx context.Context, j jobs.Job) (probe bool, v *worker.Verdict) {
	g, err := l.gate(ctx, j.CompanyID)
	if err != nil {
		l.logger().LogAttrs(ctx, slog.LevelWarn, "gate read failed", slog.Int64("company_id", j.CompanyID),
			slog.String("reason", ReasonGateFailed), slog.String("error", err.Error()))
		return false, nil
	}
	now := l.now()
	l.mergeHolds(j.CompanyID, g)
	if !g.Paused {
		return false, nil
	}
	if !now.Before(g.ProbeAt) {
		next := now.Add(l.probeInterval(g.Reason))
		won, err := l.Gates.ClaimProbe(ctx, j.CompanyID, next)
		if err == nil && won {
			l.setProbe(j.CompanyID, next)
			l.logger().LogAttrs(ctx, slog.LevelInfo, "company pause probe", slog.Int64("company_id", j.CompanyID),
				slog.Int64("user_id", j.UserID), slog.String("reason", g.Reason), slog.String("job_id", j.ID))
			return true, nil
		}
		g.ProbeAt = next // another job probes; look again after its interval
	}
	return false, pausedVerdict(g.Reason, g.ProbeAt.Sub(now))
}

// pausedVerdict defers a job of a paused company until its next probe.
func pausedVerdict(reason string, wait time.Duration) *worker.Verdict {
	return &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: reason, RetryAfter: max(wait, time.Second),
		Message: "the company's Pipedrive calls are paused (" + reason + ")"}
}

// Pause pauses j's company after Pipedrive answered d (a pderrors.Pause decision, or a success
// whose budget headers say the budget is spent) and returns the deferral verdict for the job.
// The first pause alerts; later ones (a failed probe, another instance) do not.
func (l *Limits) Pause(ctx context.Context, j jobs.Job, d pderrors.Decision) worker.Verdict {
	wait := d.RetryAfter
	if wait <= 0 {
		wait = l.probeInterval(string(d.Reason))
	}
	now := l.now()
	probeAt := now.Add(wait)
	created, err := l.Gates.PauseCompany(ctx, j.CompanyID, string(d.Reason), probeAt)
	if err != nil {
		// Not recorded: this job still waits; the next job's answer pauses again.
		l.logger().LogAttrs(ctx, slog.LevelWarn, "company pause not recorded", slog.Int64("company_id", j.CompanyID),
			slog.String("reason", string(d.Reason)), slog.String("error", err.Error()))
	}
	l.mu.Lock()
	cs := l.company(j.CompanyID)
	if !cs.gate.Paused {
		cs.gate.Paused, cs.gate.Reason, cs.gate.Since = true, string(d.Reason), now
	}
	cs.gate.ProbeAt = maxTime(cs.gate.ProbeAt, probeAt)
	cs.readAt = now
	cs.version++
	l.mu.Unlock()
	if created {
		l.logger().LogAttrs(ctx, slog.LevelWarn, "company paused", slog.Int64("company_id", j.CompanyID),
			slog.String("reason", string(d.Reason)), slog.Int("status", d.Status), slog.Int64("probe_in_s", worker.CeilSeconds(wait)))
		l.Alerts.Notify(ctx, alerts.Alert{Reason: string(d.Reason), Severity: alerts.SeverityWarning, CompanyID: j.CompanyID,
			Summary: pauseSummaries[d.Reason], Detail: jobDetail(j, d) + "; next probe in " + strconv.FormatInt(worker.CeilSeconds(wait), 10) + " s"})
	}
	return *pausedVerdict(string(d.Reason), wait)
}

// pauseSummaries explain the pauses in their one alert.
var pauseSummaries = map[pderrors.Reason]string{
	pderrors.ReasonDailyBudget:       "The company's daily Pipedrive token budget is spent: its jobs wait, probing now and then, until it returns",
	pderrors.ReasonPaymentRequired:   "The company's Pipedrive account is not open (402): its jobs wait until it is (pdctl pause lift when fixed)",
	pderrors.ReasonFeatureCapped:     "The company hit a Pipedrive plan limit (feature capping): its jobs wait until a person acts",
	pderrors.ReasonFeatureNotEnabled: "A Pipedrive feature the jobs need is not enabled for the company (415): its jobs wait until a person acts",
}

// Lift ends j's company's pause after its probe succeeded.
func (l *Limits) Lift(ctx context.Context, j jobs.Job) {
	lifted, err := l.Gates.LiftPause(ctx, j.CompanyID)
	l.mu.Lock()
	cs := l.company(j.CompanyID)
	cs.gate.Paused, cs.gate.Reason = false, ""
	cs.version++
	l.mu.Unlock()
	if err != nil {
		l.logger().LogAttrs(ctx, slog.LevelWarn, "company pause not lifted", slog.Int64("company_id", j.CompanyID), slog.String("error", err.Error()))
		return
	}
	if lifted {
		l.logger().LogAttrs(ctx, slog.LevelInfo, "company pause lifted", slog.Int64("company_id", j.CompanyID), slog.String("job_id", j.ID))
	}
}

// Acquire waits until the token's window (j's user, search or not by path) has room, and
// counts the call as on its way. done must be called with the answer's headers (nil without
// an answer) and its decision. A hold longer than MaxWait or the time left before ctx's
// deadline defers the job instead (v not nil, done nil).
func (l *Limits) Acquire(ctx context.Context, j jobs.Job, path string) (done func(h http.Header, d pderrors.Decision), v *worker.Verdict) {
	key := tokenstore.HoldKey(j.UserID, isSearchPath(path))
	id := strconv.FormatInt(j.CompanyID, 10) + ":" + key
	now := l.now()
	l.mu.Lock()
	st := l.token(id)
	hold := st.holdUntil
	if st.known && now.Before(st.resetAt) && st.remaining-st.inflight <= l.reserve(st.limit) {
		hold = maxTime(hold, st.resetAt)
	}
	if now.Before(hold) {
		l.mu.Unlock()
		wait := hold.Sub(now)
		if wait > l.maxWait() || deadline.Short(ctx, wait+DefaultMaxWait/2) {
			return nil, &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: ReasonPaced, RetryAfter: wait,
				Message: "the token's burst window is full"}
		}
		// One wait, then the call: the hold came from the window's own reset, so it has room
		// by then (and a clock that does not move while we sleep cannot keep us here).
		if err := l.sleep(ctx, wait); err != nil {
			return nil, &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: ReasonPaced, RetryAfter: wait, Err: err}
		}
		l.mu.Lock()
		st = l.token(id)
		if !l.now().Before(st.resetAt) {
			st.known = false // the window has rolled: the next answer tells
		}
	}
	st.inflight++
	l.mu.Unlock()
	return func(h http.Header, d pderrors.Decision) { l.observe(ctx, j.CompanyID, key, id, h, d) }, nil
}

// observe records an answer: the window's remaining calls and reset, and a hold (shared
// through the gate record) when the window runs low or answered 429.
func (l *Limits) observe(ctx context.Context, companyID int64, key, id string, h http.Header, d pderrors.Decision) {
	now := l.now()
	rl := pderrors.RateLimitOf(h)
	var write time.Time
	l.mu.Lock()
	st := l.token(id)
	st.inflight = max(st.inflight-1, 0)
	if rl.Burst {
		st.known, st.remaining, st.resetAt = true, rl.Remaining-st.inflight, now.Add(rl.Reset)
		if rl.Limit > 0 {
			st.limit = rl.Limit
		}
		if st.remaining <= l.reserve(st.limit) {
			st.holdUntil = maxTime(st.holdUntil, st.resetAt)
		}
	}
	if d.Action == pderrors.Retry && d.Reason == pderrors.ReasonRateLimited {
		st.holdUntil = maxTime(st.holdUntil, now.Add(max(d.RetryAfter, time.Second)))
	}
	if st.holdUntil.After(now) && st.holdUntil.After(st.written) {
		st.written, write = st.holdUntil, st.holdUntil
	}
	l.mu.Unlock()
	if !write.IsZero() {
		// One write per hold, not per call: instances that have not called lately learn of it.
		if err := l.Gates.HoldToken(ctx, companyID, key, write); err != nil {
			l.logger().LogAttrs(ctx, slog.LevelWarn, "token hold not recorded", slog.Int64("company_id", companyID), slog.String("error", err.Error()))
		}
	}
}

// gate returns the company's gate record, read at most once per GateCacheTTL.
func (l *Limits) gate(ctx context.Context, companyID int64) (tokenstore.Gate, error) {
	now := l.now()
	l.mu.Lock()
	cs := l.company(companyID)
	if !cs.readAt.IsZero() && now.Sub(cs.readAt) < l.gateCacheTTL() {
		g := cs.gate
		l.mu.Unlock()
		return g, nil
	}
	version := cs.version
	l.mu.Unlock()
	g, err := l.Gates.Gate(ctx, companyID)
	if err != nil {
		return tokenstore.Gate{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cs.version != version {
		return cs.gate, nil // changed here while we read: ours is newer
	}
	cs.gate, cs.readAt = g, now
	return g, nil
}

// mergeHolds applies the gate record's token holds to this process's view.
func (l *Limits) mergeHolds(companyID int64, g tokenstore.Gate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, until := range g.Holds {
		st := l.token(strconv.FormatInt(companyID, 10) + ":" + key)
		st.holdUntil = maxTime(st.holdUntil, until)
		st.written = maxTime(st.written, until)
	}
}

// setProbe records the next probe time in the cached gate.
func (l *Limits) setProbe(companyID int64, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.company(companyID)
	cs.gate.ProbeAt = next
	cs.version++
}

// company and token return the state for a key, creating it; callers hold l.mu.
func (l *Limits) company(id int64) *companyState {
	if l.companies == nil {
		l.companies = map[int64]*companyState{}
	}
	cs := l.companies[id]
	if cs == nil {
		cs = &companyState{gate: tokenstore.Gate{CompanyID: id}}
		l.companies[id] = cs
	}
	return cs
}

func (l *Limits) token(id string) *tokenState {
	if l.tokens == nil {
		l.tokens = map[string]*tokenState{}
	}
	st := l.tokens[id]
	if st == nil {
		st = &tokenState{}
		l.tokens[id] = st
	}
	return st
}

// probeInterval is the probe interval for a pause's reason.
func (l *Limits) probeInterval(reason string) time.Duration {
	if reason == string(pderrors.ReasonDailyBudget) {
		return orDefault(l.ProbeInterval, DefaultProbeInterval)
	}
	return orDefault(l.AccountProbeInterval, DefaultAccountProbeInterval)
}

func (l *Limits) reserve(limit int) int {
	if l.Reserve > 0 {
		return l.Reserve
	}
	return max(limit/16, 2)
}

func (l *Limits) gateCacheTTL() time.Duration { return orDefault(l.GateCacheTTL, DefaultGateCacheTTL) }
func (l *Limits) maxWait() time.Duration      { return orDefault(l.MaxWait, DefaultMaxWait) }

func (l *Limits) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Limits) sleep(ctx context.Context, d time.Duration) error {
	if l.Sleep != nil {
		return l.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Limits) logger() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}

// isSearchPath reports whether a call goes to a search endpoint, which has its own window.
func isSearchPath(path string) bool {
	p := route(path)
	return strings.HasSuffix(p, "/search") || strings.Contains(p, "/itemSearch")
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
