package motoserver_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
)

func TestStartAnswersAndCloseStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := motoserver.Start(ctx, motoserver.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close(); os.Remove(s.LogFile) })
	resp, err := http.Get(s.URL + "/moto-api/data.json")
	if err != nil {
		t.Fatalf("GET data.json: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET data.json = %d, want 200", resp.StatusCode)
	}
	if s.Startup <= 0 || s.Startup > time.Minute {
		t.Errorf("Startup = %v, want the time moto took to answer", s.Startup)
	}
	if _, err := sqs.NewFromConfig(s.AWSConfig()).ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("ListQueues through AWSConfig() = %v, want nil", err)
	}
	if env := s.Env(); !slices.Contains(env, "AWS_ENDPOINT_URL="+s.URL) {
		t.Errorf("Env() = %v, want AWS_ENDPOINT_URL=%s", env, s.URL)
	}

	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v, want nil", err)
	}
	if _, err := http.Get(s.URL + "/moto-api/data.json"); err == nil {
		t.Errorf("moto still answers after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := os.Stat(s.LogFile); err != nil {
		t.Errorf("log after Close: %v, want it kept", err)
	}
}

func TestStartWritesTheGivenLogFile(t *testing.T) {
	path := t.TempDir() + "/moto.log"
	s, err := motoserver.Start(context.Background(), motoserver.Options{LogFile: path})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if s.LogFile != path {
		t.Errorf("LogFile = %q, want %q", s.LogFile, path)
	}
	// moto logs each request; the readiness probes are requests.
	if tail := s.LogTail(200); !strings.Contains(tail, "/moto-api/data.json") {
		t.Errorf("LogTail(200) = %q, want moto's log of the readiness probe", tail)
	}
}

func TestMissingMotoIsALoudError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PYENV_ROOT", "")
	_, err := motoserver.Start(context.Background(), motoserver.Options{})
	if !errors.Is(err, motoserver.ErrNotInstalled) {
		t.Errorf("Start without moto = %v, want ErrNotInstalled", err)
	}
	if err != nil && !strings.Contains(err.Error(), motoserver.InstallHint) {
		t.Errorf("Start without moto = %q, want the install hint", err)
	}
}
