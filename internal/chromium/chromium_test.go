package chromium_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/chromium"
)

// start fails (never skips) without Chromium: .ci/run installs it.
func start(t *testing.T) *chromium.Browser {
	t.Helper()
	path, err := chromium.Find()
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := chromium.Start(ctx, path, t.TempDir(), 800, 600)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

const csp = "default-src 'none'; style-src 'unsafe-inline'"

func TestProblemsSeeCSPViolationsAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/clean":
			w.Write([]byte(`<!doctype html><title>Clean</title><style>h1{color:green}</style><h1>Clean page</h1><a href="/x">a link</a>`))
		case "/violates":
			// An inline script and an image, both refused by the policy.
			w.Write([]byte(`<!doctype html><title>Bad</title><h1>Bad page</h1><script>console.log("ran")</script><img src="/pixel.png">`))
		}
	}))
	t.Cleanup(srv.Close)
	b := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := b.NewPage(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := p.Navigate(ctx, srv.URL+"/clean"); err != nil {
		t.Fatal(err)
	}
	var h1 string
	if err := p.Eval(ctx, `document.querySelector("h1").innerText`, &h1); err != nil || h1 != "Clean page" {
		t.Errorf("h1 = %q, %v; want Clean page", h1, err)
	}
	if u, status, h := p.Document(); u != srv.URL+"/clean" || status != 200 || h["content-security-policy"] != csp {
		t.Errorf("Document() = %s %d %v, want /clean 200 with the CSP", u, status, h)
	}
	shot := filepath.Join(t.TempDir(), "clean.png")
	if err := p.Screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot is not a PNG (err %v)", err)
	}
	if probs := p.Problems(); len(probs) != 0 {
		t.Errorf("clean page problems = %q, want none", probs)
	}

	if err := p.Navigate(ctx, srv.URL+"/violates"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // violation reports are asynchronous
	var probs string
	for _, pr := range p.Problems() {
		probs += pr.String() + "\n"
	}
	if !strings.Contains(probs, "Content Security Policy") || !strings.Contains(probs, "script") || !strings.Contains(probs, "img-src") {
		t.Errorf("problems of a page breaking its CSP = %q, want the script and image violations", probs)
	}
}
