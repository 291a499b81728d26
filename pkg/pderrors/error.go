package pderrors

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
)

// Error is an error that carries a Decision, for callers that return an error up the stack and
// decide later: errors.As(err, &e) or DecisionOf(err) find it through any wrapping.
type Error struct {
	// Op names the call, such as "oauth token refresh_token" or "GET /api/v1/users/me".
	// It must not contain a token, a code or a query string.
	Op string
	// Decision is the classification of the response or failure.
	Decision Decision
	// Err is the underlying cause, may be nil. Error does not print it (see Error).
	Err error
}

// Error returns "op: http 401: refresh_and_retry (access_token_invalid): message", leaving out
// the parts that are empty; an Error without a Decision shows the one DecisionOf gives it. It is safe to log: it holds Op, the status, the action, the reason
// and Decision.Message, never a body. It leaves out Err's text on purpose: transport errors
// (*url.Error) print the request URL, which can hold a code or token in its query, and
// x/oauth2's RetrieveError prints the whole response body. Log Err deliberately if needed.
func (e *Error) Error() string {
	if e == nil {
		return "<nil>"
	}
	d := e.decision()
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if d.Status != 0 {
		b.WriteString("http ")
		b.WriteString(strconv.Itoa(d.Status))
		b.WriteString(": ")
	}
	b.WriteString(d.Action.String())
	if d.Reason != "" {
		b.WriteString(" (")
		b.WriteString(string(d.Reason))
		b.WriteString(")")
	}
	if d.Message != "" {
		b.WriteString(": ")
		b.WriteString(d.Message)
	}
	return b.String()
}

// decision is e.Decision, or for an Error built without one (the zero Decision) the Decision of
// its cause, so that such an Error never reads as Succeed: Retry (unknown_error) if it has none.
func (e *Error) decision() Decision {
	if e.Decision != (Decision{}) {
		return e.Decision
	}
	if e.Err == nil {
		return Decision{Action: Retry, Reason: ReasonUnknownError}
	}
	return DecisionOf(e.Err)
}

// Unwrap returns the underlying cause, so errors.Is and errors.As see through an Error.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// DecisionOf returns the Decision for any error, so a caller can branch without knowing where
// the error came from:
//
//   - nil: Succeed (ok).
//   - an *Error anywhere in the chain: its Decision; if that is the zero Decision (an Error
//     built without one), the Decision of its Err, or Retry (unknown_error) without Err, so
//     it never reads as Succeed by accident.
//   - context.DeadlineExceeded, or any error in the chain with Timeout() true (net.Error,
//     an http.Client timeout, os.ErrDeadlineExceeded): Retry (timeout).
//   - context.Canceled: Retry (canceled). The caller gave up, not the server; the work is
//     still to do.
//   - a network failure (*net.OpError, *net.DNSError, *net.AddrError, io.EOF,
//     io.ErrUnexpectedEOF, net.ErrClosed, ECONNRESET, ECONNREFUSED, ECONNABORTED, EPIPE,
//     EHOSTUNREACH, ENETUNREACH): Retry (network).
//   - anything else: Retry (unknown_error). An error we cannot place is retried rather than
//     dropped; a queue's maxReceiveCount bounds the retries and then dead-letters the message.
//
// Status is 0 except for an *Error's own Decision.
func DecisionOf(err error) Decision {
	if err == nil {
		return Decision{Action: Succeed, Reason: ReasonOK}
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.decision()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || inChain(err, isTimeout):
		return Decision{Action: Retry, Reason: ReasonTimeout}
	case errors.Is(err, context.Canceled):
		return Decision{Action: Retry, Reason: ReasonCanceled}
	case inChain(err, isNetwork):
		return Decision{Action: Retry, Reason: ReasonNetwork}
	}
	return Decision{Action: Retry, Reason: ReasonUnknownError}
}

// inChain reports whether f holds for err or any error it wraps, following both
// Unwrap() error and Unwrap() []error (errors.Join, fmt.Errorf with several %w).
func inChain(err error, f func(error) bool) bool {
	for err != nil {
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if inChain(e, f) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// isTimeout reports whether err itself says it is a timeout. errors.As cannot ask this: the
// first net.Error in a chain (a *url.Error) may say false while a cause deeper down says true.
func isTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// isNetwork reports whether err itself is a connection-level failure.
func isNetwork(err error) bool {
	switch err.(type) {
	case *net.OpError, *net.DNSError, *net.AddrError:
		return true
	}
	switch err {
	case io.EOF, io.ErrUnexpectedEOF, net.ErrClosed,
		syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.EHOSTUNREACH, syscall.ENETUNREACH:
		return true
	}
	return false
}
