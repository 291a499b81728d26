package localstack_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// findChromium returns a Chromium binary: $CHROMIUM, else chromium, chromium-browser or
// google-chrome on PATH (Debian's /usr/bin/chromium; .ci/run installs it).
func findChromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium binary found (apt-get install -y chromium)")
}

// startBrowser runs headless Chromium through chromedp (the flags of
// /work/.library/env/machines/go.md: headless, no sandbox as root, no GPU, no background
// connections a closed network would refuse noisily) with a fresh profile and the window size
// width x height. It fails t without Chromium; the browser stops when t ends.
func startBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		t.Fatalf("%v: .ci/run installs it; by hand: apt-get install -y chromium", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("mute-audio", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if _, err := chromedp.Run(bctx, chromedp.Func(func(context.Context, *chromedp.Target) error { return nil })); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}

// problem is one error the browser reported: Source is "console", "exception", or the Log
// domain's source ("network", "security", "violation", …); URL is the resource concerned.
type problem struct {
	Source, Text, URL string
}

func (p problem) String() string {
	if p.URL == "" {
		return p.Source + ": " + p.Text
	}
	return p.Source + ": " + p.Text + " (" + p.URL + ")"
}

// page is one browser tab that records the errors the browser reports (console errors,
// exceptions, Log entries such as CSP violations and failed loads) and the last document's
// URL, status and headers.
type page struct {
	ctx context.Context

	mu       sync.Mutex
	problems []problem
	docURL   string
	status   int
	headers  map[string]string
}

// newPage opens a tab in the browser of bctx; it is closed when t ends.
func newPage(t *testing.T, bctx context.Context) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	p := &page{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, fmt.Sprint(a.Value)+a.Description)
				}
				p.problems = append(p.problems, problem{Source: "console", Text: string(e.Type) + ": " + strings.Join(parts, " ")})
			}
		case *runtime.EventExceptionThrown:
			text := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				text += " " + e.ExceptionDetails.Exception.Description
			}
			p.problems = append(p.problems, problem{Source: "exception", Text: text})
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				p.problems = append(p.problems, problem{Source: string(e.Entry.Source), Text: e.Entry.Text, URL: e.Entry.URL})
			}
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				p.docURL, p.status, p.headers = e.Response.URL, int(e.Response.Status), map[string]string{}
				for k, v := range e.Response.Headers {
					p.headers[strings.ToLower(k)] = fmt.Sprint(v)
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("new page: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Log.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("Network.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("Runtime.enable: %v", err)
	}
	return p
}

// navigate loads url and waits for its load event.
func (p *page) navigate(ctx context.Context, url string) error {
	_, err := runWithin(ctx, p.ctx, chromedp.Navigate(url))
	return err
}

// eval evaluates the JavaScript expression expr and decodes its JSON value into out.
func eval[T any](ctx context.Context, p *page, expr string, out *T) error {
	v, err := runWithin(ctx, p.ctx, chromedp.Evaluate[T](expr))
	if err == nil {
		*out = v
	}
	return err
}

// screenshot writes a PNG of the viewport to path.
func (p *page) screenshot(ctx context.Context, path string) error {
	png, err := runWithin(ctx, p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// document returns the last document's URL, status and headers (lower-case names).
func (p *page) document() (string, int, map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.docURL, p.status, p.headers
}

// takeProblems returns the errors reported so far and forgets them.
func (p *page) takeProblems() []problem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// runWithin runs action in the tab of tab, giving up when ctx ends.
func runWithin[T any](ctx, tab context.Context, action chromedp.Action[T]) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() { v, err := chromedp.Run(tab, action); done <- result{v, err} }()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

const testCSP = "default-src 'none'; style-src 'unsafe-inline'"

// TestPageSeesCSPViolationsAndErrors: the browser harness of the pages test reports what it
// must (a page breaking its Content-Security-Policy) and nothing on a clean page, so the pages
// test cannot pass by seeing nothing.
func TestPageSeesCSPViolationsAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", testCSP)
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := newPage(t, startBrowser(t, 800, 600))

	if err := p.navigate(ctx, srv.URL+"/clean"); err != nil {
		t.Fatal(err)
	}
	var h1 string
	if err := eval(ctx, p, `document.querySelector("h1").innerText`, &h1); err != nil || h1 != "Clean page" {
		t.Errorf("h1 = %q, %v; want Clean page", h1, err)
	}
	if u, status, h := p.document(); u != srv.URL+"/clean" || status != 200 || h["content-security-policy"] != testCSP {
		t.Errorf("document() = %s %d %v, want /clean 200 with the CSP", u, status, h)
	}
	shot := filepath.Join(t.TempDir(), "clean.png")
	if err := p.screenshot(ctx, shot); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("screenshot is not a PNG (err %v)", err)
	}
	if probs := p.takeProblems(); len(probs) != 0 {
		t.Errorf("clean page problems = %q, want none", probs)
	}

	if err := p.navigate(ctx, srv.URL+"/violates"); err != nil {
		t.Fatal(err)
	}
	// Violation reports are asynchronous, and on a loaded machine slow: wait for both.
	var probs string
	reported := func() bool {
		return strings.Contains(probs, "Content Security Policy") && strings.Contains(probs, "script") && strings.Contains(probs, "img-src")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, pr := range p.takeProblems() {
			probs += pr.String() + "\n"
		}
		if reported() || time.Now().After(deadline) {
			break
		}
	}
	if !reported() {
		t.Errorf("problems of a page breaking its CSP = %q, want the script and image violations", probs)
	}
}
