package pderrors_test

import (
	"net/http"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// fuzzHeader builds the fuzzed headers; a fixed Date header lets HTTP-date values in
// Retry-After reach the relative-date path.
func fuzzHeader(retryAfter, reset string) http.Header {
	h := http.Header{"Date": {respDate}}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	if reset != "" {
		h.Set("X-Ratelimit-Reset", reset)
	}
	return h
}

// addSeeds seeds a fuzz target with every table row and a few hostile values.
func addSeeds(f *testing.F, cases []classifyCase) {
	f.Helper()
	for _, c := range cases {
		f.Add(c.status, c.header.Get("Retry-After"), c.header.Get("X-Ratelimit-Reset"), []byte(c.body))
	}
	f.Add(429, "-9223372036854775808", "9223372036854775807", []byte(`{"error":`))
	f.Add(429, "1e9", "0x10", []byte(`{"message":"\ud800"}`))
	f.Add(403, "Mon, 01 Jan 0001 00:00:00 GMT", "1.000000000001", []byte("<"))
}

// FuzzClassifyAPI: no input panics, and every Decision is valid, bounded and echoes the status.
func FuzzClassifyAPI(f *testing.F) {
	addSeeds(f, apiCases())
	f.Fuzz(func(t *testing.T, status int, retryAfter, reset string, body []byte) {
		checkInvariants(t, "ClassifyAPI", status, pderrors.ClassifyAPI(status, fuzzHeader(retryAfter, reset), body))
	})
}

// FuzzClassifyOAuth: no input panics, and every Decision is valid, bounded and echoes the status.
func FuzzClassifyOAuth(f *testing.F) {
	addSeeds(f, oauthCases())
	f.Fuzz(func(t *testing.T, status int, retryAfter, reset string, body []byte) {
		checkInvariants(t, "ClassifyOAuth", status, pderrors.ClassifyOAuth(status, fuzzHeader(retryAfter, reset), body))
	})
}
