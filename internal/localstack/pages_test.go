package localstack_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// artifactDir is where screenshots go: $TEST_ARTIFACTS/install-pages, or .local/screenshots
// under the module root (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testenv.ModuleRoot(t), ".local", "screenshots")
	if base := os.Getenv("TEST_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "install-pages")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInstallPagesInChromium loads every page an installing user can land on in a real headless
// Chromium, against the whole local stack (the callback bootstrap under the emulator behind the
// gateway, the simulator as Pipedrive): each page must load under its Content-Security-Policy
// without a console error, an exception or a CSP violation, show its message and its link, and
// leave a screenshot. The browser is driven with chromedp (browser_test.go). Chromium must be installed (.ci/run installs it): without it the test
// fails.
func TestInstallPagesInChromium(t *testing.T) {
	if _, err := findChromium(); err != nil {
		t.Fatalf("%v: .ci/run installs it; by hand: apt-get install -y chromium", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &testenv.Buffer{}
	st, err := localstack.Start(ctx, stackConfig(t, logs))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(st.Close)
	started(st)
	browser := startBrowser(t, 900, 640)
	dir := artifactDir(t)
	install := st.GatewayURL + "/oauth/install"

	// callbackURL walks install -> approve without a browser and returns the callback URL
	// with a fresh code, for the pages that need the code to be spoiled first.
	callbackURL := func(t *testing.T) string {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
		u := install
		for range 2 {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			u = resp.Header.Get("Location")
		}
		if !strings.HasPrefix(u, st.GatewayURL+"/oauth/callback?") {
			t.Fatalf("install and approve led to %q, want the callback", u)
		}
		return u
	}

	tests := []struct {
		name string
		// open prepares Pipedrive and returns the URL the user opens, and an undo.
		open       func(t *testing.T) (string, func())
		wantStatus int
		wantTitle  string
		wantText   string
		wantLink   string // link text; "" means the page has no link
	}{
		{
			name:       "success",
			open:       func(*testing.T) (string, func()) { return install, func() {} },
			wantStatus: 200, wantTitle: "The app is installed", wantText: "You can close this window",
		},
		{
			name: "denied",
			open: func(t *testing.T) (string, func()) {
				if err := st.Simulator.SetAuthorizeMode(pdsim.AuthorizeDeny); err != nil {
					t.Fatal(err)
				}
				return install, func() { _ = st.Simulator.SetAuthorizeMode(pdsim.AuthorizeApprove) }
			},
			wantStatus: 200, wantTitle: "Installation cancelled", wantText: "nothing was installed", wantLink: "Install the app",
		},
		{
			name: "expired",
			open: func(t *testing.T) (string, func()) {
				u := callbackURL(t)
				st.Simulator.AdvanceClock(pdsim.DefaultCodeTTL + time.Minute) // the user dawdled
				return u, func() {}
			},
			wantStatus: 400, wantTitle: "This install link has expired", wantText: "Start the installation again to continue", wantLink: "Start the installation again",
		},
		{
			name: "restart",
			open: func(*testing.T) (string, func()) {
				return st.GatewayURL + "/oauth/callback?code=not-a-code-pipedrive-issued", func() {}
			},
			wantStatus: 400, wantTitle: "This install link is invalid or expired", wantText: "cannot be used any more", wantLink: "Start the installation again",
		},
		{
			name: "outage",
			open: func(*testing.T) (string, func()) {
				id := st.Simulator.Inject(pdsim.Fault{Path: "/oauth/token", Status: http.StatusServiceUnavailable})
				return install, func() { st.Simulator.RemoveFault(id) }
			},
			wantStatus: 503, wantTitle: "Pipedrive is not answering, try again", wantText: "try again in a minute", wantLink: "Try again",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			p := newPage(t, browser)
			u, undo := tt.open(t)
			defer undo()
			if err := p.navigate(pctx, u); err != nil {
				t.Fatalf("Navigate: %v\nfunction logs:\n%s", err, logs)
			}
			shot := filepath.Join(dir, tt.name+".png")
			if err := p.screenshot(pctx, shot); err != nil {
				t.Fatalf("Screenshot: %v", err)
			}
			t.Logf("screenshot: %s", shot)

			doc, status, h := p.document()
			if status != tt.wantStatus || !strings.Contains(h["content-security-policy"], "default-src 'none'") {
				t.Errorf("document = %d with CSP %q, want %d under the callback's CSP", status, h["content-security-policy"], tt.wantStatus)
			}
			var page struct {
				Title, H1, Text string
				Links           []struct{ Text, Href string }
				Visible         bool
				Styled          bool
			}
			err := eval(pctx, p, `({
				Title: document.title,
				H1: document.querySelector("h1")?.innerText ?? "",
				Text: document.body.innerText,
				Links: [...document.querySelectorAll("a")].map(a => ({Text: a.innerText, Href: a.href})),
				Visible: [...document.querySelectorAll("h1, p, a")].every(e => e.getBoundingClientRect().height > 0),
				// The inline style applied: the CSP allows it, and the page depends on it.
				Styled: getComputedStyle(document.querySelector("main")).backgroundColor === "rgb(255, 255, 255)",
			})`, &page)
			if err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if page.Title != tt.wantTitle || page.H1 != tt.wantTitle || !strings.Contains(page.Text, tt.wantText) || !page.Visible || !page.Styled {
				t.Errorf("page = %+v, want title and heading %q, text with %q, every element visible and styled", page, tt.wantTitle, tt.wantText)
			}
			switch {
			case tt.wantLink == "" && len(page.Links) != 0:
				t.Errorf("links = %+v, want none", page.Links)
			case tt.wantLink != "" && (len(page.Links) != 1 || page.Links[0].Text != tt.wantLink || page.Links[0].Href != install):
				t.Errorf("links = %+v, want one %q to %s", page.Links, tt.wantLink, install)
			}
			time.Sleep(200 * time.Millisecond) // CSP violation reports arrive after the load event
			var probs []string
			for _, pr := range p.takeProblems() {
				if pr.Source == "network" && pr.URL == doc && status == tt.wantStatus {
					continue // the page's own status, by design (checked above)
				}
				probs = append(probs, pr.String())
			}
			if len(probs) != 0 {
				t.Errorf("the browser reported errors on the %s page:\n%s", tt.name, strings.Join(probs, "\n"))
			}
		})
	}
	if strings.Contains(logs.String(), st.Credentials.ClientSecret) {
		t.Errorf("the functions' logs show the client secret")
	}
}
