package installpage_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installpage"
)

// TestPagesRender: every page renders to a complete document with its title, and a link is
// escaped, never inserted as markup.
func TestPagesRender(t *testing.T) {
	const restart = "/oauth/install"
	pages := map[string]installpage.Page{
		"InvalidLink": installpage.InvalidLink(restart), "CodeExpired": installpage.CodeExpired(restart),
		"Cancelled": installpage.Cancelled(restart), "Success": installpage.Success(),
		"PipedriveDown": installpage.PipedriveDown(restart), "Busy": installpage.Busy(),
		"NotInstallable": installpage.NotInstallable(), "IdentityFailed": installpage.IdentityFailed(restart),
		"TooManyAttempts": installpage.TooManyAttempts(10 * time.Minute), "NotConfigured": installpage.NotConfigured(),
		"Error": installpage.Error(), "BadRequest": installpage.BadRequest(), "NotFound": installpage.NotFound(),
		"MethodNotAllowed": installpage.MethodNotAllowed(), "URITooLong": installpage.URITooLong(),
		"Redirecting": installpage.Redirecting("https://example.com/done"),
	}
	for name, p := range pages {
		body, ok := installpage.Render(p)
		if !ok || !strings.HasPrefix(body, "<!doctype html>") || !strings.Contains(body, "<title>"+p.Title+"</title>") || p.Title == "" {
			t.Errorf("%s: Render = %t, %.120q; want a document titled %q", name, ok, body, p.Title)
		}
	}
	body, _ := installpage.Render(installpage.Page{Title: "x", Link: `javascript:alert(1)"><script>`, LinkText: "<b>go</b>"})
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>go</b>") || strings.Contains(body, "javascript:") {
		t.Errorf("Render did not escape the link: %s", body)
	}
	if h := installpage.SecurityHeaders(installpage.HTML); h["Cache-Control"] != "no-store" || !strings.HasPrefix(h["Content-Security-Policy"], "default-src 'none'") {
		t.Errorf("SecurityHeaders = %v", h)
	}
}
