package refresher

import (
	"fmt"
	"strconv"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// The variables template.yaml gives the refresher beside the shared ones.
const (
	// EnvConcurrency is how many refreshes one invocation runs at once.
	EnvConcurrency = "REFRESH_CONCURRENCY"
	// EnvFanOutAbove is the due count above which a scheduled run hands each shard of the
	// due list to its own invocation; 0 never fans out.
	EnvFanOutAbove = "REFRESH_FANOUT_ABOVE"
)

// runConfig reads the run's settings from the environment; unset variables keep refresh's
// defaults. calls is how many token calls may be in flight (REFRESH_CONCURRENCY, else
// refresh.DefaultConcurrency): the run keeps twice as many refreshes going, so the store
// writes of some overlap the token calls of others (refresh.LimitCalls holds the calls to
// calls). fanOut reports whether fan-out is wanted (REFRESH_FANOUT_ABOVE is not 0).
func runConfig(getenv func(string) string) (cfg refresh.RunConfig, calls int, fanOut bool, err error) {
	if calls, err = nonNegative(getenv, EnvConcurrency); err != nil {
		return cfg, 0, false, err
	}
	if calls == 0 {
		calls = refresh.DefaultConcurrency
	}
	if calls > pdoauth.MaxInFlight {
		// Why: above it, token calls would open new TLS connections instead of reusing them.
		return cfg, 0, false, fmt.Errorf("refresher: %s must be at most %d (pdoauth.MaxInFlight), got %d", EnvConcurrency, pdoauth.MaxInFlight, calls)
	}
	cfg.Concurrency = 2 * calls
	if cfg.FanOutAbove, err = nonNegative(getenv, EnvFanOutAbove); err != nil {
		return cfg, 0, false, err
	}
	return cfg, calls, getenv(EnvFanOutAbove) != "0", nil
}

func nonNegative(getenv func(string) string, key string) (int, error) {
	v := getenv(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("refresher: %s must be a non-negative integer, got %q", key, v)
	}
	return n, nil
}
