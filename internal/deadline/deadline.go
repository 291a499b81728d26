// Package deadline holds the two context rules every function follows near Lambda's deadline:
// work stops a reserve before the invocation ends (so the bookkeeping and the answer still fit),
// and the bookkeeping after the work runs detached from the caller's cancellation but bounded
// (so a closed browser tab or an expired batch does not lose a claim release or an alert, and a
// hung call cannot outlive the function).
package deadline

import (
	"context"
	"time"
)

// Detached returns a context that is not cancelled with ctx (it keeps ctx's values) and ends
// after timeout. Use it for clean-up writes that must happen once the work is decided.
func Detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}

// Reserve returns a context that ends reserve before ctx's deadline, so what follows the work
// (settling a claim, an alert, the answer) still fits before the invocation ends. Without a
// deadline on ctx it returns a cancellable child of ctx.
func Reserve(ctx context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-reserve))
	}
	return context.WithCancel(ctx)
}

// Short reports whether ctx has a deadline less than need away: too little time to start a
// piece of work that takes about need.
func Short(ctx context.Context, need time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < need
}

// Sleep waits d or until ctx ends, whichever is first: nil after d, ctx's error if it ended.
// A d of zero or less returns at once with ctx's error (nil while ctx lives).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
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
