package clientcreds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"golang.org/x/sync/singleflight"
)

// settings are a source's knobs (Source's and WebhookKeySource's exported fields).
type settings struct {
	client        SecretsManager
	secretID      string
	ttl           time.Duration
	grace         time.Duration
	retryInterval time.Duration
	fetchTimeout  time.Duration
	now           func() time.Time
	logger        *slog.Logger
}

func (s settings) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s settings) log() *slog.Logger {
	if s.logger != nil {
		return s.logger
	}
	return slog.Default()
}

// cache is the caching and fallback both sources share: one value of T, fetched at most once
// at a time, served for TTL, and served stale for Grace while refreshes fail.
type cache[T any] struct {
	group   singleflight.Group
	mu      sync.Mutex
	cur     T
	ok      bool      // cur holds a good value
	okAt    time.Time // when cur was fetched
	next    time.Time // when the next fetch is due
	lastTry time.Time // when the last fetch started
}

// get returns the cached value, fetching it when the cache is empty or older than TTL; a failed
// fetch falls back to a good value younger than Grace (logged with version(cur)).
func (c *cache[T]) get(ctx context.Context, s settings, read func(context.Context) (T, error), version func(T) string) (T, error) {
	now := s.clock()
	c.mu.Lock()
	cur, ok, okAt, due := c.cur, c.ok, c.okAt, !now.Before(c.next)
	c.mu.Unlock()
	if ok && !due {
		return cur, nil
	}
	fresh, err := c.fetch(ctx, s, read)
	if err == nil {
		return fresh, nil
	}
	var zero T
	if !ok || now.Sub(okAt) > orDefault(s.grace, DefaultGrace) || ctx.Err() != nil {
		return zero, err
	}
	c.mu.Lock()
	// Do not retry on every call while the outage lasts.
	if retry := now.Add(min(orDefault(s.retryInterval, DefaultRetryInterval), orDefault(s.ttl, DefaultTTL))); c.next.Before(retry) {
		c.next = retry
	}
	c.mu.Unlock()
	s.log().WarnContext(ctx, "secret refresh failed; serving the last good value",
		"action", "serve_stale", "secret_id", s.secretID, "version", version(cur),
		"age", now.Sub(okAt).Round(time.Second).String(), "grace", orDefault(s.grace, DefaultGrace).String(), "error", err.Error())
	return cur, nil
}

// invalidate makes the next get fetch again; the cached value stays as the fallback.
func (c *cache[T]) invalidate() {
	c.mu.Lock()
	c.next = time.Time{}
	c.mu.Unlock()
}

// fetchedWithin reports whether a fetch started within d before now.
func (c *cache[T]) fetchedWithin(now time.Time, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.lastTry.IsZero() && now.Sub(c.lastTry) < d
}

// fetch reads and validates the secret, sharing one call among concurrent callers, and caches
// a good result. The shared call runs detached from any one caller's cancellation, bounded by
// FetchTimeout; each caller still stops waiting when its own ctx ends.
func (c *cache[T]) fetch(ctx context.Context, s settings, read func(context.Context) (T, error)) (T, error) {
	ch := c.group.DoChan("fetch", func() (any, error) {
		c.mu.Lock()
		c.lastTry = s.clock()
		c.mu.Unlock()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(s.fetchTimeout, DefaultFetchTimeout))
		defer cancel()
		v, err := read(fctx)
		if err != nil {
			return v, err
		}
		now := s.clock()
		c.mu.Lock()
		c.cur, c.ok, c.okAt, c.next = v, true, now, now.Add(orDefault(s.ttl, DefaultTTL))
		c.mu.Unlock()
		return v, nil
	})
	select {
	case r := <-ch:
		return r.Val.(T), r.Err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("clientcreds: get secret %s: %w", s.secretID, ctx.Err())
	}
}

// getSecretString performs one GetSecretValue: the string value and its version.
func getSecretString(ctx context.Context, client SecretsManager, secretID string) (value, version string, err error) {
	if client == nil || secretID == "" {
		return "", "", errors.New("clientcreds: a source needs a Client and a SecretID")
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", "", fmt.Errorf("clientcreds: get secret %s: %w: %w", secretID, ErrSecretNotFound, err)
		}
		return "", "", fmt.Errorf("clientcreds: get secret %s: %w", secretID, err)
	}
	if out.SecretString == nil {
		return "", "", invalid(secretID, "has no SecretString (binary secrets are not supported)")
	}
	return *out.SecretString, aws.ToString(out.VersionId), nil
}

func invalid(secretID, problem string) error {
	return fmt.Errorf("clientcreds: secret %s %s: %w", secretID, problem, ErrInvalidSecret)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
