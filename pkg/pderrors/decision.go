// Package pderrors classifies Pipedrive OAuth and API responses into decisions: what the caller
// should do next (succeed, retry, refresh and retry, ask the user to reauthorize, dead-letter),
// whether a person must act, and how long the server asked us to wait.
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
	// RetryAfter is the server's wait hint (Retry-After or x-ratelimit-reset), 0 if none.
	// Never negative and never above MaxRetryAfter.
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
