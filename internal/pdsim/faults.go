package pdsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests fail or slow down before the simulator handles them. Faults
// apply to the OAuth and API endpoints, not to /_sim/. The first fault (in injection order)
// that matches and fires wins.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string `json:"method,omitempty"`
	// Path matches the URL path exactly, or as a prefix when it ends in "*"; "" matches all.
	Path string `json:"path,omitempty"`
	// Status is the status to answer with; 0 answers normally after Latency (a pure delay).
	Status int `json:"status,omitempty"`
	// Header is added to the answer (e.g. Retry-After for a 429).
	Header http.Header `json:"header,omitempty"`
	// Body is the answer body; "" means Pipedrive's error body for Status on that endpoint.
	Body string `json:"body,omitempty"`
	// Times limits the fault to the next Times firings; 0 keeps it until cleared.
	Times int `json:"times,omitempty"`
	// Fraction is the probability (0..1) that a matching request fires the fault, drawn from
	// a generator seeded by Config.Seed; 0 means always.
	Fraction float64 `json:"fraction,omitempty"`
	// Latency delays the answer (real time; cut short if the client goes away). In JSON it is
	// a Go duration string such as "250ms".
	Latency time.Duration `json:"-"`
	// Hang blocks until the client gives up (the request context ends) or ReleaseHung, then
	// closes the connection without an answer.
	Hang bool `json:"hang,omitempty"`
	// Drop hijacks the connection and closes it without an answer.
	Drop bool `json:"drop,omitempty"`
	// Complete, with Hang or Latency, carries the request out when the hold ends (a hang ends
	// when the client goes away, or at ReleaseHung), even when the client has gone away (its
	// answer is then lost): a request Pipedrive received and did after its caller died.
	// Without it a held request is abandoned.
	Complete bool `json:"complete,omitempty"`
}

// faultJSON is Fault's JSON form, with Latency as a duration string.
type faultJSON struct {
	plainFault
	Latency string `json:"latency,omitempty"`
}

// plainFault is Fault without its JSON methods.
type plainFault Fault

// MarshalJSON encodes f with latency as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{plainFault: plainFault(f)}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes a Fault whose latency is a duration string ("250ms", "2s").
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault(j.plainFault)
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("fault latency: %w", err)
		}
		f.Latency = d
	}
	return nil
}

// Validate reports a Fault that cannot be applied.
func (f Fault) Validate() error {
	var errs []error
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d out of range 100-599", f.Status))
	}
	if f.Times < 0 {
		errs = append(errs, fmt.Errorf("times %d is negative", f.Times))
	}
	if f.Fraction < 0 || f.Fraction > 1 {
		errs = append(errs, fmt.Errorf("fraction %v out of range 0-1", f.Fraction))
	}
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", f.Latency))
	}
	if f.Complete && !f.Hang && f.Latency == 0 {
		errs = append(errs, errors.New("complete needs hang or latency"))
	}
	if f.Complete && (f.Status != 0 || f.Drop) {
		errs = append(errs, errors.New("complete carries the request out: no status or drop with it"))
	}
	if f.Path != "" && !strings.HasPrefix(f.Path, "/") && f.Path != "*" {
		errs = append(errs, fmt.Errorf("path %q must start with /", f.Path))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid fault: %w", err)
	}
	return nil
}

// matches reports whether the fault applies to r.
func (f Fault) matches(r *http.Request) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, r.Method) {
		return false
	}
	switch {
	case f.Path == "":
		return true
	case strings.HasSuffix(f.Path, "*"):
		return strings.HasPrefix(r.URL.Path, strings.TrimSuffix(f.Path, "*"))
	}
	return r.URL.Path == f.Path
}

// maxFaultBody bounds the body a Complete fault holds in memory.
const maxFaultBody = 1 << 20

// faultEntry is an injected fault and its firing count.
type faultEntry struct {
	id    string
	fault Fault
	fired int
}

// InjectedFault is a fault as listed by Faults.
type InjectedFault struct {
	ID    string `json:"id"`
	Fault Fault  `json:"fault"`
	Fired int    `json:"fired"`
}

// Inject adds a fault and returns its id (for Counters().Faults and RemoveFault). It panics
// when f.Validate fails: an invalid fault is a bug in the test that wrote it.
func (s *Server) Inject(f Fault) string {
	if err := f.Validate(); err != nil {
		panic("pdsim: " + err.Error())
	}
	f.Header = f.Header.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultSeq++
	id := "f" + strconv.Itoa(s.faultSeq)
	s.faults = append(s.faults, &faultEntry{id: id, fault: f})
	return id
}

// RemoveFault removes one fault; it reports whether the id was active.
func (s *Server) RemoveFault(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.faults {
		if e.id == id {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			return true
		}
	}
	return false
}

// ClearFaults removes every fault. Requests already hanging keep hanging; see ReleaseHung.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults lists the active faults in the order they are tried.
func (s *Server) Faults() []InjectedFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InjectedFault, 0, len(s.faults))
	for _, e := range s.faults {
		f := e.fault
		f.Header = f.Header.Clone()
		out = append(out, InjectedFault{ID: e.id, Fault: f, Fired: e.fired})
	}
	return out
}

// ReleaseHung ends every request currently held by a Hang or Latency fault: their connections
// are closed without an answer. Call it before closing the HTTP server, which otherwise waits
// for them. Later hangs hang again.
func (s *Server) ReleaseHung() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

// pickFault returns the fault that fires for r, if any, consuming one of its Times.
func (s *Server) pickFault(r *http.Request) (Fault, string, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.faults {
		if !e.fault.matches(r) {
			continue
		}
		if fr := e.fault.Fraction; fr > 0 && fr < 1 && s.rng.Float64() >= fr {
			continue
		}
		e.fired++
		if e.fault.Times > 0 && e.fired >= e.fault.Times {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		s.counters.Faults[e.id]++
		return e.fault, e.id, s.release, true
	}
	return Fault{}, "", nil, false
}

// applyFault applies the first firing fault. It reports whether the request was answered (or
// abandoned) and must not be handled further.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request) bool {
	f, id, release, ok := s.pickFault(r)
	if !ok {
		return false
	}
	s.log.Info("fault", "action", "fault", "fault_id", id, "method", r.Method, "path", r.URL.Path, "status", f.Status)
	if f.Complete {
		// Held (the whole latency; a hang until the client goes or ReleaseHung), then carried
		// out whatever became of the client: the body is read first, as a server that
		// received the request has it.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFaultBody))
		if err != nil {
			abort(w)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if f.Latency > 0 {
			t := time.NewTimer(f.Latency)
			select {
			case <-t.C:
			case <-release:
			}
			t.Stop()
		}
		if f.Hang {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
		s.mux.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
		return true
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-release:
			abort(w)
		}
	}
	switch {
	case f.Drop:
		abort(w)
	case f.Hang:
		select {
		case <-r.Context().Done():
			return true
		case <-release:
			abort(w)
		}
	case f.Status == 0:
		return false
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := []byte(f.Body)
	if f.Body == "" {
		body = defaultFaultBody(r.URL.Path, f.Status)
	}
	if w.Header().Get("Content-Type") == "" && len(body) > 0 {
		w.Header().Set("Content-Type", sniffType(body))
	}
	w.WriteHeader(f.Status)
	if r.Method != http.MethodHead && f.Status != http.StatusNoContent && f.Status != http.StatusNotModified {
		_, _ = w.Write(body)
	}
	return true
}

// abort closes the connection without an answer: hijack and close when the writer allows it,
// otherwise abort the handler (net/http then closes the connection without writing).
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
	panic(http.ErrAbortHandler)
}

// defaultFaultBody is Pipedrive's body for status on path: the OAuth shape under /oauth/, the
// maintenance page text for 503 on /oauth/authorize, the API error shape elsewhere.
func defaultFaultBody(path string, status int) []byte {
	if status == http.StatusNoContent || status == http.StatusNotModified || status < 200 {
		return nil
	}
	if strings.HasPrefix(path, "/oauth/") {
		msg := http.StatusText(status)
		switch {
		case status == http.StatusServiceUnavailable && path == "/oauth/authorize":
			msg = MsgMaintenance
		case status == http.StatusInternalServerError:
			msg = MsgInternalServerError
		case status == http.StatusUnauthorized:
			msg = MsgClientInvalid
		}
		return oauthErrorJSON(msg, "")
	}
	msg := http.StatusText(status)
	switch status {
	case http.StatusBadRequest:
		msg = "Bad request"
	case http.StatusUnauthorized:
		msg = MsgAccessTokenInvalid
	case http.StatusForbidden:
		msg = MsgScopeMismatch
	case http.StatusNotFound:
		msg = "Not found"
	case http.StatusGone:
		msg = MsgGone
	case http.StatusTooManyRequests:
		msg = MsgRequestOverLimit
	case http.StatusInternalServerError:
		msg = MsgInternalServerError
	}
	if msg == "" {
		msg = "Error " + strconv.Itoa(status)
	}
	return apiErrorJSON(msg)
}

// sniffType guesses a Content-Type for a custom fault body.
func sniffType(b []byte) string {
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "text/plain; charset=utf-8"
	}
	switch t[:1] {
	case "{", "[":
		return "application/json"
	case "<":
		return "text/html; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}
