package motoserver_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
)

func TestStartAnswersAndCloseStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := motoserver.Start(ctx, motoserver.Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	resp, err := http.Get(s.URL + "/moto-api/data.json")
	if err != nil {
		t.Fatalf("GET data.json: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET data.json = %d, want 200", resp.StatusCode)
	}
	s.Close()
	if _, err := http.Get(s.URL + "/moto-api/data.json"); err == nil {
		t.Errorf("moto still answers after Close")
	}
}

func TestMissingMotoIsALoudError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	_, err := motoserver.Start(context.Background(), motoserver.Options{})
	if !errors.Is(err, motoserver.ErrNotInstalled) {
		t.Errorf("Start without moto = %v, want ErrNotInstalled", err)
	}
}
