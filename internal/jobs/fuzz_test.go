package jobs_test

import (
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
)

// FuzzParse: any SQS or direct job body is a Job or an ErrInvalidJob, never a panic; every
// accepted api_call path, percent-decoded and cleaned as a server would, stays under /api/.
func FuzzParse(f *testing.F) {
	f.Add(`{"id":"j1","kind":"api_call","company_id":1,"user_id":2,"method":"POST","path":"/api/v2/deals","body":{"title":"x"}}`)
	f.Add(`{"id":"j2","kind":"register_webhooks","company_id":1,"user_id":2}`)
	f.Add(`{"id":"j3","kind":"api_call","company_id":1,"user_id":2,"method":"GET","path":"/api/v1/%2e%2e/oauth/token"}`)
	f.Add(`{"id":"j4","kind":"webhook_event","company_id":1,"user_id":2,"body":{"id":"e"}}`)
	f.Add(`{"id":"j5","kind":"api_call","company_id":1,"user_id":2,"method":"GET","path":"/api/v2/deals?x=/../../"}`)
	f.Fuzz(func(t *testing.T, body string) {
		j, err := jobs.Parse(body)
		if err != nil {
			return
		}
		if j.Path == "" {
			return
		}
		raw, _, _ := strings.Cut(j.Path, "?")
		decoded, err := url.PathUnescape(raw)
		if err != nil {
			t.Fatalf("accepted path %q does not decode: %v", j.Path, err)
		}
		// Normalisation changes nothing (no dot or empty segment to resolve) and the result
		// is under /api/.
		clean := path.Clean(decoded)
		if clean != strings.TrimSuffix(decoded, "/") || !strings.HasPrefix(clean, "/api/") {
			t.Fatalf("accepted path %q is %q normalised, want itself under /api/", j.Path, clean)
		}
	})
}
