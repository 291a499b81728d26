package refresh_test

import (
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

func TestUsable(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   installation.Installation
		want bool
	}{
		{"an hour left", installation.Installation{AccessToken: "a", ExpiresAt: now.Add(time.Hour)}, true},
		{"within the skew", installation.Installation{AccessToken: "a", ExpiresAt: now.Add(refresh.UseSkew)}, false},
		{"expired", installation.Installation{AccessToken: "a", ExpiresAt: now.Add(-time.Minute)}, false},
		{"no access token", installation.Installation{ExpiresAt: now.Add(time.Hour)}, false},
	}
	for _, tt := range tests {
		if got := refresh.Usable(tt.in, now); got != tt.want {
			t.Errorf("Usable(%s) = %t, want %t", tt.name, got, tt.want)
		}
	}
}
