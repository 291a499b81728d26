package pdwork

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"slices"
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
	// longer hold defers the job instead. It equals Pipedrive's burst penalty (a 429's
	// Retry-After: 10) on purpose: a job that asks for a slot right as the penalty starts
	// waits it out in-process (a wait of exactly MaxWait waits), one that finds the slot
	// further away than that is deferred (no attempt spent).
	DefaultMaxWait = 10 * time.Second
	// DefaultBurstWindow is the length of Pipedrive's rolling burst window (2 s for every
	// plan; the headers give the limit and what remains, not the length).
	DefaultBurstWindow = 2 * time.Second
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
// the x-ratelimit-* headers of every answer. Each instance spaces its calls evenly (a token
// bucket whose rate comes from the answers): the window's use (limit − remaining) against
// this instance's own calls in the window is the instance's share, and the instance takes
// that share of the window's limit less Reserve, so all instances together keep the window
// just below its limit without talking to each other. Only a refused call (429) writes a hold
// to the gate record, so a call costs no extra DynamoDB request in the common case. Gates is
// required. Safe for concurrent use.
type Limits struct {
	Gates Gates
	// Alerts is told once per pause (a created gate pause).
	Alerts alerts.Notifier
	// ProbeInterval, AccountProbeInterval, GateCacheTTL, MaxWait, BurstWindow: see the
	// Default… values.
	ProbeInterval, AccountProbeInterval, GateCacheTTL, MaxWait, BurstWindow time.Duration
	// Reserve is how many calls of the window the instances together leave unused, for calls
	// on their way and the unevenness of instances that do not talk to each other; 0 means a
	// sixteenth of the window's limit, at least 2.
	Reserve int
	// BudgetReserve is the share (0 to 1) of a company's daily token budget left to the
	// customer's other integrations: a job without jobs.Job.UseReserve is deferred (not an
	// attempt) rather than make a call that would bring the company's remaining budget below
	// it. The budget comes from the answers' x-daily-ratelimit-token-* headers and, between
	// them, this instance's own count of its calls' costs (pderrors.CallCost); while no answer
	// has told the limit there is no reserve to keep. 0: no reserve.
	BudgetReserve float64
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
	// reading is true while one caller reads the record: the others use the cached one
	// rather than read it too.
	reading bool
	// version counts local changes (a pause, a lift, a probe): a read that started before
	// one must not overwrite it with the older record.
	version int
	// budget is this instance's view of the company's daily token budget.
	budget budgetState
}

// tokenState is this process's view of one token window.
type tokenState struct {
	// known: limit, remaining and seenAt come from an answer seen within the window.
	known bool
	limit int
	// remaining is what the latest answer said remains, less this instance's calls not
	// counted in it (on their way, or sent since), plus its calls that left the window since.
	remaining int
	seenAt    time.Time
	// share is this instance's part of the window's use (limit − remaining) in the latest
	// answer.
	share float64
	// next is the earliest time of this instance's next call (the token bucket's spacing).
	next time.Time
	// spacing is the latest spacing of this instance's calls on the window.
	spacing time.Duration
	// deferUntil is when the latest job deferred for lack of a slot comes back: each deferral
	// comes back a spacing after the one before, so jobs deferred through a long hold return
	// at the window's pace rather than all at its end.
	deferUntil time.Time
	// sent are the times of this instance's calls (sent or scheduled) within the window,
	// ascending.
	sent []time.Time
	// holdUntil: no call before (a 429 here, or a hold another instance recorded).
	holdUntil time.Time
	refused   int       // 429s in a row
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

// Acquire waits until the token's window (j's user, search or not by path) has room for
// this instance's next call, and counts the call as on its way (against the window, and its
// cost against the company's budget). done must be called with the answer's headers (nil
// without an answer) and its decision. A wait longer than MaxWait or the time left before
// ctx's deadline defers the job instead (v not nil, done nil), and so does a call of a job
// without UseReserve that would spend the company's budget reserve (BudgetReserve). method
// and path may be empty when unknown (then the call costs as a change).
func (l *Limits) Acquire(ctx context.Context, j jobs.Job, method, path string) (done func(h http.Header, d pderrors.Decision), v *worker.Verdict) {
	key := tokenstore.HoldKey(j.UserID, isSearchPath(path))
	id := strconv.FormatInt(j.CompanyID, 10) + ":" + key
	cost := int64(pderrors.CallCost(method, path))
	now := l.now()
	l.mu.Lock()
	probe, v := l.spendBudget(ctx, j, cost, now)
	if v != nil {
		l.mu.Unlock()
		return nil, v
	}
	st := l.token(id)
	at := l.schedule(st, now)
	wait := at.Sub(now)
	if wait > 0 && (wait > l.maxWait() || deadline.Short(ctx, wait+DefaultMaxWait/2)) {
		l.unschedule(st, at)
		retry := l.deferral(st, at, now)
		l.unspendBudget(j.CompanyID, cost, probe)
		l.mu.Unlock()
		return nil, &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: ReasonPaced, RetryAfter: retry,
			Message: "the token's burst window is full"}
	}
	st.inflight++
	l.mu.Unlock()
	if wait > 0 {
		// One wait, then the call: the slot was reserved for this call (and a clock that does
		// not move while we sleep cannot keep us here).
		if err := l.sleep(ctx, wait); err != nil {
			l.mu.Lock()
			st.inflight = max(st.inflight-1, 0)
			l.unschedule(st, at)
			l.unspendBudget(j.CompanyID, cost, probe)
			l.mu.Unlock()
			return nil, &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: ReasonPaced, RetryAfter: wait, Err: err}
		}
	}
	return func(h http.Header, d pderrors.Decision) {
		l.mu.Lock()
		l.observeBudget(j.CompanyID, cost, probe, h, d, l.now())
		l.mu.Unlock()
		l.observe(ctx, j.CompanyID, key, id, h, d)
	}, nil
}

// deferral is how long a job that found no slot within the wait allowed (its slot would have
// been at) waits before it comes back: behind the jobs deferred before it, a spacing apart, so
// a hold's deferrals do not all return at its end; callers hold l.mu.
func (l *Limits) deferral(st *tokenState, at, now time.Time) time.Duration {
	st.deferUntil = maxTime(st.deferUntil, at)
	wait := st.deferUntil.Sub(now)
	st.deferUntil = st.deferUntil.Add(max(st.spacing, l.burstWindow()/time.Duration(minBurstLimit)))
	return wait
}

// schedule reserves the time of this instance's next call on st's window; callers hold l.mu.
//
// The latest answer said how much of the window every instance together used; this
// instance's calls the answer counted are its share of that. The instance keeps its own calls
// in any window to that share of the window's target (limit − Reserve), spaced evenly over
// the window: all instances doing so fill the window to the target whatever their number,
// and one that calls less leaves its share to the others at their next answers. The window's
// own departures are not in the headers (the reset is whole seconds, the oldest call's only),
// so when the latest answer's remaining calls are spent the next call waits for one of this
// instance's calls to leave the window. Before any answer calls are spaced by the lowest
// plan's limit until one tells; after one older than the window (a quiet spell, a penalty's
// hold) by the share the latest answer gave, so instances that all resume at the end of a
// hold do not together go over the window and earn another penalty.
func (l *Limits) schedule(st *tokenState, now time.Time) time.Time {
	w := l.burstWindow()
	// Our calls that left the window since the latest answer made room in it.
	for len(st.sent) > 0 && !st.sent[0].After(now.Add(-w)) {
		if st.known && st.sent[0].After(st.seenAt.Add(-w)) {
			st.remaining++
		}
		st.sent = st.sent[1:]
	}
	if st.known && now.Sub(st.seenAt) > w {
		st.known = false // the answer is older than the window: it says nothing any more
	}
	if !st.known {
		at := maxTime(maxTime(now, st.holdUntil), st.next)
		st.sent = insertTime(st.sent, at)
		st.spacing = w / time.Duration(max(st.limit, minBurstLimit))
		if st.share > 0 {
			st.spacing = time.Duration(float64(w) / l.rate(st))
		}
		st.next = at.Add(st.spacing)
		return at
	}
	rate := l.rate(st)
	spacing := time.Duration(float64(w) / rate)
	st.spacing = spacing
	// A slot left unused (no job ready) may be caught up on, a few at most: the bucket's depth.
	base := maxTime(st.next, now.Add(-bucketDepth*spacing))
	at := maxTime(maxTime(now, st.holdUntil), base)
	if m, n := int(math.Ceil(rate)), len(st.sent); n >= m {
		at = maxTime(at, st.sent[n-m].Add(w))
	}
	if st.remaining <= 0 && len(st.sent) > 0 {
		at = maxTime(at, st.sent[min(-st.remaining, len(st.sent)-1)].Add(w))
	}
	st.sent = insertTime(st.sent, at)
	if at.After(maxTime(now, base)) {
		st.next = at.Add(spacing) // held: no catching up right after the hold
	} else {
		st.next = base.Add(spacing)
	}
	st.remaining--
	return at
}

// rate is this instance's calls per window on st: its share of the window's target
// (limit − Reserve), at least one; callers hold l.mu.
func (l *Limits) rate(st *tokenState) float64 {
	return max(float64(max(st.limit-l.reserve(st.limit), 1))*st.share, 1)
}

// bucketDepth is how many unused slots of its spacing an instance may catch up on.
const bucketDepth = 3

// minBurstLimit is the lowest burst limit of an OAuth app (80 per 2 s): the spacing of a
// window no answer told about yet.
const minBurstLimit = 80

// unschedule gives back a slot reserved by schedule that will not be used.
func (l *Limits) unschedule(st *tokenState, at time.Time) {
	if i := slices.IndexFunc(st.sent, at.Equal); i >= 0 {
		st.sent = slices.Delete(st.sent, i, i+1)
		st.remaining++
	}
}

// pruneBefore drops the times at or before cut from ascending ts.
func pruneBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	return ts[i:]
}

// insertTime inserts t into ascending ts.
func insertTime(ts []time.Time, t time.Time) []time.Time {
	i, _ := slices.BinarySearchFunc(ts, t, time.Time.Compare)
	return slices.Insert(ts, i, t)
}

// observe records an answer: the window's use and remaining calls, and after a 429 a hold.
// A 429 whose hint is longer than the window is Pipedrive's burst penalty (Retry-After: 10):
// the window refuses every call until it ends, so the token is held for all of it at once and
// the hold shared through the gate record. A shorter hint is the window's reset (its oldest
// call's, in whole seconds) while calls keep leaving it: the hold is short at first and
// doubles while the window keeps refusing, shared once it reaches the hint.
func (l *Limits) observe(ctx context.Context, companyID int64, key, id string, h http.Header, d pderrors.Decision) {
	now := l.now()
	rl := pderrors.RateLimitOf(h)
	var write time.Time
	l.mu.Lock()
	st := l.token(id)
	st.inflight = max(st.inflight-1, 0)
	if rl.Burst {
		if rl.Limit > 0 {
			st.limit = rl.Limit
		} else {
			st.limit = max(st.limit, rl.Remaining+1) // no limit header: at least this
		}
		// Calls of ours still on their way (or waiting for their slot) are not in the answer.
		st.sent = pruneBefore(st.sent, now.Add(-l.burstWindow()))
		counted, used := max(len(st.sent)-st.inflight, 1), st.limit-rl.Remaining
		st.share = 1.0
		if used > counted {
			st.share = float64(counted) / float64(used)
		}
		st.known, st.seenAt, st.remaining = true, now, rl.Remaining-st.inflight
	}
	if d.Action == pderrors.Retry && d.Reason == pderrors.ReasonRateLimited {
		st.refused++
		hint := max(d.RetryAfter, time.Second)
		// The window frees a call every window/limit or so while it is used evenly; the reset
		// (whole seconds) only bounds when its oldest call leaves.
		hold := min(hint, l.burstWindow()*time.Duration(l.reserve(st.limit))/time.Duration(max(st.limit, 1))<<min(st.refused-1, 10))
		if hint > l.burstWindow() {
			hold = hint // a penalty: no call gets through before it ends
		}
		st.holdUntil = maxTime(st.holdUntil, now.Add(hold))
		if hold == hint && st.holdUntil.After(st.written) {
			st.written, write = st.holdUntil, st.holdUntil
		}
	} else if d.Status != 0 || rl.Burst {
		st.refused = 0
	}
	l.mu.Unlock()
	if !write.IsZero() {
		// One write per long hold, not per call: instances that have not called lately learn
		// of it.
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
	if !cs.readAt.IsZero() && (now.Sub(cs.readAt) < l.gateCacheTTL() || cs.reading) {
		// Fresh, or another caller is reading it: one read per company and TTL, not one per
		// job that arrives meanwhile.
		g := cs.gate
		l.mu.Unlock()
		return g, nil
	}
	version := cs.version
	cs.reading = true
	l.mu.Unlock()
	g, err := l.Gates.Gate(ctx, companyID)
	l.mu.Lock()
	defer l.mu.Unlock()
	cs.reading = false
	if err != nil {
		return tokenstore.Gate{}, err
	}
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
func (l *Limits) burstWindow() time.Duration  { return orDefault(l.BurstWindow, DefaultBurstWindow) }

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
	return deadline.Sleep(ctx, d)
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
