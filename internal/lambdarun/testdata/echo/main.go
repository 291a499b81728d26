// Command echo is a test function for lambdarun: it echoes its event, fails, sleeps or panics
// on request, and logs one line per invocation.
package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Say   string `json:"say"`
	Fail  string `json:"fail"`
	Sleep int    `json:"sleep_ms"`
	Panic bool   `json:"panic"`
}

type result struct {
	Said string `json:"said"`
	Env  string `json:"env"`
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	lambda.Start(func(ctx context.Context, e event) (result, error) {
		log.Info("invoked", "say", e.Say)
		if e.Sleep > 0 {
			time.Sleep(time.Duration(e.Sleep) * time.Millisecond)
		}
		if e.Panic {
			panic("asked to panic")
		}
		if e.Fail != "" {
			return result{}, errors.New(e.Fail)
		}
		return result{Said: e.Say, Env: os.Getenv("ECHO_ENV")}, nil
	})
}
