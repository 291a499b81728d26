package main

import (
	"fmt"
	"strconv"

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
// defaults. fanOut reports whether fan-out is wanted (REFRESH_FANOUT_ABOVE is not 0).
func runConfig(getenv func(string) string) (cfg refresh.RunConfig, fanOut bool, err error) {
	if cfg.Concurrency, err = nonNegative(getenv, EnvConcurrency); err != nil {
		return cfg, false, err
	}
	if cfg.FanOutAbove, err = nonNegative(getenv, EnvFanOutAbove); err != nil {
		return cfg, false, err
	}
	return cfg, getenv(EnvFanOutAbove) != "0", nil
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
