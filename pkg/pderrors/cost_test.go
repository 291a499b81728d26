package pderrors_test

import (
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// TestCallCost: one row per kind of call in the rate-limiting docs, v1 and v2.
func TestCallCost(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/deals/42", 2},
		{"GET", "/api/v1/users/me", 2},
		{"GET", "/api/v1/deals", 20},
		{"GET", "/api/v1/deals?limit=500&start=0", 20},
		{"GET", "/api/v2/deals", 10},
		{"GET", "/api/v2/deals/42", 1},
		{"POST", "/api/v1/notes", 10},
		{"PATCH", "/api/v2/deals/42", 5},
		{"DELETE", "/api/v1/webhooks/7", 10},
		{"GET", "/api/v2/deals/search?term=acme", 20},
		{"GET", "/api/v1/itemSearch?term=acme", 40},
	} {
		if got := pderrors.CallCost(tt.method, tt.path); got != tt.want {
			t.Errorf("CallCost(%s %s) = %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}
}
