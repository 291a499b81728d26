package refresh

import (
	"context"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
)

// LimitCalls returns an OAuth that lets at most n token calls through o at once; the others
// wait for a slot, bounded by their context (a wait that outlasts it fails like a timed-out
// call). A scheduled run wraps its Refresher's OAuth with it and runs more refreshes than n at
// once: n token calls stay in flight, what Pipedrive's capacity is measured in, while the
// store writes of the other refreshes (lease, save) overlap them instead of holding a slot.
func LimitCalls(o OAuth, n int) OAuth {
	return &limited{OAuth: o, slots: make(chan struct{}, max(n, 1))}
}

type limited struct {
	OAuth
	slots chan struct{}
}

// Refresh waits for a slot, then calls the wrapped OAuth.
func (l *limited) Refresh(ctx context.Context, refreshToken string) (*pdoauth.Token, error) {
	select {
	case l.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.slots }()
	return l.OAuth.Refresh(ctx, refreshToken)
}
