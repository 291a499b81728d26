package pdwork

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// ReasonBudgetReserve: the company's remaining daily budget is within the reserve left to its
// other integrations, and the job may not use it (jobs.Job.UseReserve); the job waits (not an
// attempt).
const ReasonBudgetReserve = "budget_reserve"

// budgetState is this instance's view of one company's daily token budget (shared by every
// integration of the customer). Pipedrive reports it on some answers
// (x-daily-ratelimit-token-limit, -remaining); between them the instance counts its own calls
// by their cost (pderrors.CallCost). Calls of other instances and other integrations show only
// in the next header.
type budgetState struct {
	// limit is the day's budget from the latest header that carried it; 0 while unknown (then
	// there is no reserve to keep).
	limit int64
	// remaining is the latest header's remaining budget less the cost of this instance's calls
	// since (on their way, or answered without the header).
	remaining int64
	// seenAt is when the latest header came.
	seenAt time.Time
	// inflight is the cost of this instance's calls on their way.
	inflight int64
	// probing: one call is out to learn whether the budget has reset.
	probing bool
	// waiting: jobs are being held for the reserve (logged once per crossing).
	waiting bool
}

// reserveProbeRetry is how long a job waits while another job's call is learning whether the
// company's budget has reset.
const reserveProbeRetry = time.Minute

// spendBudget decides whether a call of cost tokens by j may spend the company's budget, and
// if so counts it as on its way; callers hold l.mu. A job without UseReserve may not bring the
// remaining budget below BudgetReserve of the limit. Pipedrive resets the budget at its
// server's midnight, in a timezone we do not know: a header older than the last whole hour
// may predate a reset, so then one call (a probe) may go to learn the budget anew.
func (l *Limits) spendBudget(ctx context.Context, j jobs.Job, cost int64, now time.Time) (probe bool, v *worker.Verdict) {
	b := &l.company(j.CompanyID).budget
	if l.BudgetReserve > 0 && !j.UseReserve && b.limit > 0 {
		reserve := int64(math.Ceil(float64(b.limit) * l.BudgetReserve))
		if b.remaining-cost < reserve {
			stale := !now.Before(b.seenAt.Truncate(time.Hour).Add(time.Hour))
			switch {
			case stale && !b.probing:
				b.probing, probe = true, true
			case b.probing:
				return false, reserveVerdict(reserveProbeRetry)
			default:
				if !b.waiting {
					b.waiting = true
					l.logger().LogAttrs(ctx, slog.LevelInfo, "company budget reserve reached", slog.Int64("company_id", j.CompanyID),
						slog.String("reason", ReasonBudgetReserve), slog.Int64("remaining", b.remaining), slog.Int64("reserve", reserve))
				}
				// Until the next whole hour, when the budget may have reset (SQS delays at most
				// 15 minutes: the job comes back and waits again).
				return false, reserveVerdict(now.Truncate(time.Hour).Add(time.Hour).Sub(now))
			}
		}
	}
	b.remaining -= cost
	b.inflight += cost
	return probe, nil
}

// reserveVerdict defers a job that may not use the budget reserve.
func reserveVerdict(wait time.Duration) *worker.Verdict {
	return &worker.Verdict{Outcome: worker.OutcomeDeferred, Reason: ReasonBudgetReserve, RetryAfter: min(max(wait, time.Second), jobs.MaxDelay),
		Message: "the company's remaining Pipedrive budget is the reserve left to its other integrations"}
}

// unspendBudget gives back the cost of a call spendBudget counted that was not sent; callers
// hold l.mu.
func (l *Limits) unspendBudget(companyID, cost int64, probe bool) {
	b := &l.company(companyID).budget
	b.inflight = max(b.inflight-cost, 0)
	b.remaining += cost
	if probe {
		b.probing = false
	}
}

// observeBudget records a call's answer in the company's budget view; callers hold l.mu. The
// header, when sent, replaces the count (less our calls still on their way); a call that was
// refused or got no answer cost nothing.
func (l *Limits) observeBudget(companyID, cost int64, probe bool, h http.Header, d pderrors.Decision, now time.Time) {
	b := &l.company(companyID).budget
	b.inflight = max(b.inflight-cost, 0)
	if probe {
		b.probing = false
	}
	if rl := pderrors.RateLimitOf(h); rl.Daily {
		if rl.DailyLimit > 0 {
			b.limit = rl.DailyLimit
		}
		b.remaining, b.seenAt = rl.DailyRemaining-b.inflight, now
		if b.limit > 0 && float64(b.remaining) >= float64(b.limit)*l.BudgetReserve {
			b.waiting = false
		}
		return
	}
	if d.Status == http.StatusTooManyRequests {
		b.remaining += cost // refused: not charged (a call without an answer may have been)
	}
}
