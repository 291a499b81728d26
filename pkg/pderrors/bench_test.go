package pderrors_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// BenchmarkRatioRoundTripToClassify shows what classification costs next to the cheapest
// HTTP exchange it follows: a keep-alive loopback round trip that returns the same 403 scope
// error. The benchmark's own ns/op is the round trip; after the timed loop it times a fixed
// number of classifications and reports both and their ratio.
func BenchmarkRatioRoundTripToClassify(b *testing.B) {
	body := []byte(apiErr(msgScopeMismatch))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	client := srv.Client()
	for b.Loop() {
		resp, err := client.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	roundTrip := float64(b.Elapsed().Nanoseconds()) / float64(b.N)

	const n = 100_000
	h := http.Header{"Content-Type": {"application/json"}}
	start := time.Now()
	for range n {
		sink = pderrors.ClassifyAPI(http.StatusForbidden, h, body)
	}
	classify := float64(time.Since(start).Nanoseconds()) / n
	b.ReportMetric(classify, "classify-ns")
	b.ReportMetric(roundTrip/classify, "roundtrip/classify")
}
