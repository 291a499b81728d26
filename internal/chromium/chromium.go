// Package chromium drives a headless Chromium through the DevTools protocol over a pipe
// (--remote-debugging-pipe: commands on the browser's file descriptor 3, answers and events on
// 4, each a JSON message ended by a NUL byte), with nothing but the standard library. Tests use
// it to load the pages users see, collect what the browser reports as errors (console errors,
// uncaught exceptions, Content-Security-Policy violations, failed loads), read the page and
// take screenshots.
package chromium

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by Find when no Chromium binary is installed.
var ErrNotFound = errors.New("chromium: no chromium binary found (apt-get install -y chromium)")

// Find returns the path of a Chromium binary: $CHROMIUM, else chromium, chromium-browser or
// google-chrome on PATH.
func Find() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Flags are the command-line flags Start gives Chromium: headless, no sandbox (tests may run
// as root), and no background connections (a closed network refuses them, noisily).
var Flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
	"--disable-dev-shm-usage", "--remote-debugging-pipe",
}

// Browser is a running Chromium. Close stops it. Safe for concurrent use.
type Browser struct {
	cmd    *exec.Cmd
	w      io.WriteCloser
	mu     sync.Mutex // guards writes, nextID, calls, subs
	nextID int64
	calls  map[int64]chan message
	subs   map[string][]chan message // session id -> subscribers of its events
	done   chan struct{}
	err    error // why the reader stopped
	stderr *lockedBuffer
}

type message struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Start launches Chromium at path with Flags, a fresh profile in userDataDir and the window
// size width x height.
func Start(ctx context.Context, path, userDataDir string, width, height int) (*Browser, error) {
	cmdR, cmdW, err := os.Pipe() // we write commands, the browser reads fd 3
	if err != nil {
		return nil, fmt.Errorf("chromium: %w", err)
	}
	evR, evW, err := os.Pipe() // the browser writes fd 4, we read
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		return nil, fmt.Errorf("chromium: %w", err)
	}
	args := append(append([]string(nil), Flags...),
		"--user-data-dir="+userDataDir, fmt.Sprintf("--window-size=%d,%d", width, height), "about:blank")
	cmd := exec.Command(path, args...)
	cmd.ExtraFiles = []*os.File{cmdR, evW}
	b := &Browser{cmd: cmd, w: cmdW, calls: map[int64]chan message{}, subs: map[string][]chan message{},
		done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{cmdR, cmdW, evR, evW} {
			f.Close()
		}
		return nil, fmt.Errorf("chromium: start %s: %w", path, err)
	}
	cmdR.Close()
	evW.Close()
	go b.read(evR)
	// The first call answers once the browser is ready.
	var v struct {
		Product string `json:"product"`
	}
	if err := b.call(ctx, "", "Browser.getVersion", nil, &v); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Stderr is what the browser wrote to its standard error so far (for failure messages).
func (b *Browser) Stderr() string { return b.stderr.String() }

// Close ends the browser and waits for it.
func (b *Browser) Close() {
	_ = b.call(context.Background(), "", "Browser.close", nil, nil)
	b.w.Close()
	exited := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-exited
	}
}

func (b *Browser) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.err = fmt.Errorf("chromium: connection closed: %w", err)
			for id, ch := range b.calls {
				close(ch)
				delete(b.calls, id)
			}
			b.mu.Unlock()
			close(b.done)
			return
		}
		var m message
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.calls[m.ID]; ok {
				ch <- m
				delete(b.calls, m.ID)
			}
		} else {
			for _, ch := range b.subs[m.SessionID] {
				select {
				case ch <- m:
				default: // a subscriber that stopped reading loses events rather than block all
				}
			}
		}
		b.mu.Unlock()
	}
}

// call sends method with params in session (empty: the browser) and decodes the result.
func (b *Browser) call(ctx context.Context, session, method string, params, result any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	if params == nil {
		p = []byte("{}")
	}
	ch := make(chan message, 1)
	b.mu.Lock()
	if b.err != nil {
		b.mu.Unlock()
		return b.err
	}
	b.nextID++
	id := b.nextID
	b.calls[id] = ch
	msg, _ := json.Marshal(message{ID: id, Method: method, Params: p, SessionID: session})
	_, err = b.w.Write(append(msg, 0))
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("chromium: %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("chromium: %s: browser went away", method)
		}
		if m.Error != nil {
			return fmt.Errorf("chromium: %s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.calls, id)
		b.mu.Unlock()
		return fmt.Errorf("chromium: %s: %w", method, ctx.Err())
	}
}

// Page is one tab. Its Problems are every error the browser reported while it was open.
type Page struct {
	b       *Browser
	session string
	target  string
	events  chan message

	mu       sync.Mutex
	problems []Problem
	loaded   chan struct{}
	// The last main-document response.
	docURL  string
	headers map[string]string
	status  int
}

// Problem is one error the browser reported: Source is "console", "exception", or the Log
// domain's source ("network", "security", "violation", "javascript", …); URL is the resource
// concerned, when the browser names one.
type Problem struct {
	Source, Text, URL string
}

// String is the problem on one line.
func (p Problem) String() string {
	if p.URL == "" {
		return p.Source + ": " + p.Text
	}
	return p.Source + ": " + p.Text + " (" + p.URL + ")"
}

// NewPage opens a blank tab and starts collecting its errors.
func (b *Browser) NewPage(ctx context.Context) (*Page, error) {
	var t struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &t); err != nil {
		return nil, err
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": t.TargetID, "flatten": true}, &s); err != nil {
		return nil, err
	}
	p := &Page{b: b, session: s.SessionID, target: t.TargetID, events: make(chan message, 1024)}
	b.mu.Lock()
	b.subs[s.SessionID] = append(b.subs[s.SessionID], p.events)
	b.mu.Unlock()
	go p.watch()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		if err := b.call(ctx, p.session, m, nil, nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// watch records the page's problems and load events.
func (p *Page) watch() {
	for {
		var m message
		select {
		case m = <-p.events:
		case <-p.b.done:
			return
		}
		switch m.Method {
		case "Runtime.consoleAPICalled":
			var e struct {
				Type string `json:"type"`
				Args []struct {
					Value       any    `json:"value"`
					Description string `json:"description"`
				} `json:"args"`
			}
			if json.Unmarshal(m.Params, &e) == nil && (e.Type == "error" || e.Type == "assert") {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, fmt.Sprint(a.Value)+a.Description)
				}
				p.problem(Problem{Source: "console", Text: e.Type + ": " + strings.Join(parts, " ")})
			}
		case "Runtime.exceptionThrown":
			var e struct {
				Details struct {
					Text      string `json:"text"`
					Exception struct {
						Description string `json:"description"`
					} `json:"exception"`
				} `json:"exceptionDetails"`
			}
			_ = json.Unmarshal(m.Params, &e)
			p.problem(Problem{Source: "exception", Text: e.Details.Text + " " + e.Details.Exception.Description})
		case "Log.entryAdded":
			// CSP violations, failed resource loads and other browser-side errors land here.
			var e struct {
				Entry struct {
					Source string `json:"source"`
					Level  string `json:"level"`
					Text   string `json:"text"`
					URL    string `json:"url"`
				} `json:"entry"`
			}
			if json.Unmarshal(m.Params, &e) == nil && e.Entry.Level == "error" {
				p.problem(Problem{Source: e.Entry.Source, Text: e.Entry.Text, URL: e.Entry.URL})
			}
		case "Network.responseReceived":
			var e struct {
				Type     string `json:"type"`
				Response struct {
					URL     string            `json:"url"`
					Status  int               `json:"status"`
					Headers map[string]string `json:"headers"`
				} `json:"response"`
			}
			if json.Unmarshal(m.Params, &e) == nil && e.Type == "Document" {
				p.mu.Lock()
				p.docURL, p.headers, p.status = e.Response.URL, e.Response.Headers, e.Response.Status
				p.mu.Unlock()
			}
		case "Page.loadEventFired":
			p.mu.Lock()
			if p.loaded != nil {
				close(p.loaded)
				p.loaded = nil
			}
			p.mu.Unlock()
		}
	}
}

func (p *Page) problem(pr Problem) {
	p.mu.Lock()
	p.problems = append(p.problems, pr)
	p.mu.Unlock()
}

// Problems returns the errors reported so far and forgets them.
func (p *Page) Problems() []Problem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// Document returns the URL (after redirects), the HTTP status and the headers (lower-case
// names) of the main document.
func (p *Page) Document() (string, int, map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := map[string]string{}
	for k, v := range p.headers {
		h[strings.ToLower(k)] = v
	}
	return p.docURL, p.status, h
}

// Navigate loads url (following redirects) and waits for its load event.
func (p *Page) Navigate(ctx context.Context, url string) error {
	loaded := make(chan struct{})
	p.mu.Lock()
	p.loaded = loaded
	p.mu.Unlock()
	var r struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &r); err != nil {
		return err
	}
	if r.ErrorText != "" {
		return fmt.Errorf("chromium: navigate: %s", r.ErrorText)
	}
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("chromium: navigate: no load event: %w", ctx.Err())
	}
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise) and decodes its
// JSON value into out.
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("chromium: eval: %s", r.Exception.Text)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result.Value, out)
}

// Screenshot writes a PNG of the viewport to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	var r struct {
		Data string `json:"data"`
	}
	if err := p.b.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return fmt.Errorf("chromium: screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o644)
}

// Close closes the tab.
func (p *Page) Close(ctx context.Context) error {
	return p.b.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": p.target}, nil)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(b)
	}
	return len(b), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
