package pdkit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// App is an app built on the kit: what it does when Pipedrive tells it something changed, when
// a user installs or uninstalls it, and the work it queues for later. Every field is optional;
// the zero App acknowledges every event and does nothing else (the kit's own functions/ run
// it). An App must not change once started.
type App struct {
	// Events handles webhook events, usually an *EventMux. Nil acknowledges every event.
	Events EventHandler
	// OnInstall runs after each install (and re-install) stored the installation, as a job on
	// the worker: c acts for the new installation. An error retries it like a job's.
	OnInstall func(ctx context.Context, c *Client) error
	// OnUninstall runs after an uninstall is recorded, as a job on the worker. The installation's
	// tokens are gone, so it gets no Client: clean up what the app keeps for in. An error
	// retries it with backoff.
	OnUninstall func(ctx context.Context, in Installation) error
	// Jobs are the app's own kinds of work, by name (1 to 40 lowercase letters, digits and
	// underscores, starting with a letter). Queue one with Client.Enqueue.
	Jobs map[string]JobKind
}

// EventHandler reacts to one webhook event with a Client for the event's installation.
//
// HandleEvent runs at most once at a time per event, and again only when an earlier run
// returned an error: return nil when the event is handled (or of no interest); return the
// Client's error, wrapped with %w, when a call failed (the kit retries at Pipedrive's time or
// dead-letters with the reason); return any other error to have the event retried with backoff
// and, after the jobs queue's last receive, dead-lettered with an alert. A retry runs the
// handler again from the start, so make each step safe to repeat (look before you write).
// A change older than one already handled for the same entity is skipped before it reaches
// the handler.
type EventHandler interface {
	HandleEvent(ctx context.Context, ev Event, c *Client) error
}

// EventHandlerFunc adapts a function to an EventHandler.
type EventHandlerFunc func(ctx context.Context, ev Event, c *Client) error

// HandleEvent calls f.
func (f EventHandlerFunc) HandleEvent(ctx context.Context, ev Event, c *Client) error {
	return f(ctx, ev, c)
}

// EventMux routes events to handlers by entity and action, with patterns "entity.action"
// written as in the WebhookEvents template parameter: "deal.create", "deal.*" (every action on
// deals), "*.delete", "*.*". The most specific pattern wins: entity and action, then entity,
// then action, then "*.*". An event no pattern matches is acknowledged. The zero EventMux is
// empty and ready; safe for concurrent use.
type EventMux struct {
	mu     sync.RWMutex
	routes map[string]EventHandler
}

// NewEventMux returns an empty EventMux.
func NewEventMux() *EventMux { return &EventMux{} }

// Handle registers h for pattern. It panics when the pattern is not "entity.action" (each a
// lowercase word or "*"; action one of create, change, delete), h is nil, or the pattern is
// registered already: all programming errors, found at start.
func (m *EventMux) Handle(pattern string, h EventHandler) {
	entity, action, ok := strings.Cut(pattern, ".")
	if !ok || !patternWord(entity) || !(action == "*" || action == ActionCreate || action == ActionChange || action == ActionDelete) {
		panic(fmt.Sprintf("pdkit: event pattern %q: want entity.action, e.g. deal.create, deal.* or *.delete", pattern))
	}
	if h == nil {
		panic("pdkit: nil handler for event pattern " + pattern)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.routes[pattern]; dup {
		panic("pdkit: event pattern " + pattern + " registered twice")
	}
	if m.routes == nil {
		m.routes = map[string]EventHandler{}
	}
	m.routes[pattern] = h
}

// HandleFunc registers f for pattern (see Handle).
func (m *EventMux) HandleFunc(pattern string, f func(ctx context.Context, ev Event, c *Client) error) {
	m.Handle(pattern, EventHandlerFunc(f))
}

// Handler is the handler for ev and the pattern it was registered with; nil and "" when no
// pattern matches.
func (m *EventMux) Handler(ev Event) (h EventHandler, pattern string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range []string{ev.Entity + "." + ev.Action, ev.Entity + ".*", "*." + ev.Action, "*.*"} {
		if h, ok := m.routes[p]; ok {
			return h, p
		}
	}
	return nil, ""
}

// HandleEvent runs the handler ev matches; nil when none does.
func (m *EventMux) HandleEvent(ctx context.Context, ev Event, c *Client) error {
	if h, _ := m.Handler(ev); h != nil {
		return h.HandleEvent(ctx, ev, c)
	}
	return nil
}

func patternWord(s string) bool {
	if s == "*" {
		return true
	}
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) < 0
}

// JobKind is one kind of the app's own work.
type JobKind struct {
	// Run does one job with a Client for the job's installation. Its error is decided as an
	// EventHandler's: retried, or dead-lettered with the reason. Required.
	Run func(ctx context.Context, job Job, c *Client) error
	// UseBudgetReserve lets this kind's calls spend the part of the company's daily Pipedrive
	// budget the kit leaves to the customer's other integrations (template parameter
	// BudgetReservePercent). Set it for work a person is waiting for. False, the default, suits
	// background work (syncs, digests): its jobs wait, without spending an attempt, while the
	// company's remaining budget is within the reserve, until the budget resets. The install
	// hook may use the reserve; event handlers do not.
	UseBudgetReserve bool
}

// Job is one unit of the app's own work for one installation.
type Job struct {
	// Kind names the app's JobKind (a key of App.Jobs).
	Kind string
	// Key is the idempotency key: a job queued twice with one Kind and Key, for one
	// installation, runs once. Required; printable, no spaces, at most 64 bytes.
	Key string
	// Payload is the job's input as JSON (json.RawMessage or a []byte holding JSON); may be
	// empty. The whole job must stay under SQS's 256 KiB.
	Payload json.RawMessage
	// NotBefore delays the job until then (zero: now).
	NotBefore time.Time
	// Installation is the installation the job runs for: set when it runs (Enqueue queues for
	// the Client's installation and ignores it).
	Installation Installation
	// Attempt counts earlier runs of this job (0 for the first).
	Attempt int
}
