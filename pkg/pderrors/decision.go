// Package pderrors classifies Pipedrive OAuth and API responses into decisions: what the caller
// should do next (succeed, retry, refresh and retry, ask the user to reauthorize, dead-letter,
// pause the whole company account), whether a person must act, and how long the server asked
// us to wait. RateLimitOf reads the rate-limit headers of any answer, for callers that pace
// their calls.
//
// The package is pure: it reads a status, headers and a body and never performs I/O.
package pderrors

import (
	"time"
)

// Action is what the caller should do with a response.
type Action int

// The actions, from best to worst outcome.
const (
	// Succeed: the call worked; use the response.
	Succeed Action = iota
	// Retry: a transient failure; try the same call again after Decision.RetryAfter (or a backoff).
	Retry
	// RefreshAndRetry: the access token is invalid; refresh it once and retry the call once.
	RefreshAndRetry
	// Reauthorize: the grant is gone; the user must install (authorize) the app again.
	Reauthorize
	// DeadLetter: retrying cannot help; park the work for a person or drop it.
	DeadLetter
	// Pause: the company account cannot take calls for now, whatever the call: its daily token
	// budget is spent (daily_budget_exceeded), or it is in a state only a person changes
	// (payment_required, feature_capped, feature_not_enabled). Stop every call of the company
	// (all its installations) until the budget resets (Decision.RetryAfter when the server said
	// when, else probe now and then) or a person acts; the work itself is not at fault, so it
	// is neither retried on its own schedule nor dead-lettered.
	Pause
)

// Reason names one documented Pipedrive case (or one of our own, such as a network timeout).
// Reasons are stable strings, safe to log and to filter on.
type Reason string

// Decision is the classification of one response or error.
type Decision struct {
	// Action is what to do next.
	Action Action
	// Alert is true when a person must act (configuration error, our bug, lost grant, limits).
	Alert bool
	// RetryAfter is the server's wait hint, 0 if none. For Retry it is the larger of
	// Retry-After and x-ratelimit-reset; for Pause only Retry-After counts (x-ratelimit-reset
	// is the 2-second burst window, not the budget's reset). Set only for Retry and Pause;
	// never negative and never above MaxRetryAfter.
	RetryAfter time.Duration
	// Reason names the documented case.
	Reason Reason
	// Status is the HTTP status code, 0 for errors without a response.
	Status int
	// Message is Pipedrive's message text, trimmed and length-limited; safe to log.
	Message string
}

// MaxRetryAfter caps a server's wait hint. Pipedrive's daily budget answers with Retry-After
// above 3,600 s; anything beyond a day is treated as a day so a queue message is never parked
// for longer than a person would wait to look at it.
const MaxRetryAfter = 24 * time.Hour
