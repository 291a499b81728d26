package pderrors_test

import (
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// sink keeps results alive so the compiler cannot drop the calls.
var sink pderrors.Decision

func BenchmarkClassifyAPI(b *testing.B) {
	b.Run("status-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = pderrors.ClassifyAPI(500, nil, nil)
		}
	})
	b.Run("json-error-body", func(b *testing.B) {
		body := []byte(apiErr(msgScopeMismatch))
		b.ReportAllocs()
		for b.Loop() {
			sink = pderrors.ClassifyAPI(403, nil, body)
		}
	})
	b.Run("429-headers", func(b *testing.B) {
		h := hdr("Date", respDate, "Retry-After", "7", "X-RateLimit-Limit", "80", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2")
		b.ReportAllocs()
		for b.Loop() {
			sink = pderrors.ClassifyAPI(429, h, nil)
		}
	})
}

func BenchmarkClassifyOAuth(b *testing.B) {
	body := []byte(oauthErr(msgRefreshInvalid, "invalid_grant"))
	b.ReportAllocs()
	for b.Loop() {
		sink = pderrors.ClassifyOAuth(400, nil, body)
	}
}
