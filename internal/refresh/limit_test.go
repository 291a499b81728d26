package refresh_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// TestLimitCalls: at most n token calls at once through the limit; a caller whose context ends
// while waiting gets its error and no call.
func TestLimitCalls(t *testing.T) {
	var (
		mu        sync.Mutex
		cur, most int
		calls     int
	)
	slow := oauthFunc(func(ctx context.Context, _ string) (*pdoauth.Token, error) {
		mu.Lock()
		cur++
		calls++
		most = max(most, cur)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return &pdoauth.Token{AccessToken: "a"}, nil
	})
	o := refresh.LimitCalls(slow, 3)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := o.Refresh(t.Context(), "r"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if most != 3 || calls != 20 {
		t.Errorf("calls in flight at most %d of %d, want 3 of 20", most, calls)
	}

	block := make(chan struct{})
	held := refresh.LimitCalls(oauthFunc(func(context.Context, string) (*pdoauth.Token, error) {
		<-block
		return &pdoauth.Token{}, nil
	}), 1)
	go func() { _, _ = held.Refresh(context.Background(), "r") }()
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := held.Refresh(ctx, "r"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Refresh while the only slot is held = %v, want the context's error", err)
	}
	close(block)
}
