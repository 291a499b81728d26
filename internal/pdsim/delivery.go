package pdsim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Pipedrive's webhook policy ("Webhooks policy" in the webhooks-for-apps guide): a non-2xx
// answer, or none within the timeout, is retried after 3, 30 and 150 seconds; 10 failed first
// attempts ban the webhook for 30 minutes (the count returns to zero only when a ban ends), what
// happens during a ban is lost, and a webhook without a successful delivery on 3 consecutive
// days is deleted.
var WebhookRetryDelays = [3]time.Duration{3 * time.Second, 30 * time.Second, 150 * time.Second}

// The ban rule and the default delivery timeout (Config.WebhookTimeout).
const (
	WebhookBanThreshold   = 10
	WebhookBanDuration    = 30 * time.Minute
	DefaultWebhookTimeout = 10 * time.Second
	// WebhookDeleteAfter is how long a webhook may go without a successful delivery, counted
	// from its first failed attempt after the last success, before Pipedrive deletes it.
	WebhookDeleteAfter = 3 * 24 * time.Hour
)

// The outcomes of a delivery attempt (Delivery.Outcome, Counters.WebhookDeliveries).
const (
	// OutcomeDelivered: the receiver answered 2xx.
	OutcomeDelivered = "delivered"
	// OutcomeFailed: a non-2xx answer (redirects are not followed) or no answer at all.
	OutcomeFailed = "failed"
	// OutcomeTimeout: no answer within Config.WebhookTimeout.
	OutcomeTimeout = "timeout"
	// OutcomeBanned: not sent because the webhook is banned; the event is lost for it.
	OutcomeBanned = "banned"
)

// Delivery is one attempt to deliver an event to a webhook, as the admin listing shows it.
// It never holds the Basic auth password, only whether Basic auth was sent.
type Delivery struct {
	// Seq orders deliveries by the time their attempt finished (1, 2, …).
	Seq int64 `json:"seq"`
	// EventID is the event's meta.id; WebhookID the webhook it went to.
	EventID   string `json:"event_id"`
	WebhookID int64  `json:"webhook_id"`
	// Object, Action and EntityID describe the event.
	Object   string `json:"object"`
	Action   string `json:"action"`
	EntityID int64  `json:"entity_id"`
	// Attempt is meta.attempt: 1 for the first delivery, 2–4 for the retries.
	Attempt int `json:"attempt"`
	// Time is when the attempt started, on the simulated clock.
	Time time.Time `json:"time"`
	// Status is the receiver's HTTP status, 0 when there was none (error, timeout, ban).
	Status int `json:"status"`
	// Outcome is one of the Outcome… constants.
	Outcome string `json:"outcome"`
	// Error says why an attempt without a status failed.
	Error string `json:"error,omitempty"`
	// BasicAuth is whether the request carried HTTP Basic credentials.
	BasicAuth bool `json:"basic_auth"`
	// Redelivery marks attempts made by Redeliver: they never retry and ignore bans.
	Redelivery bool `json:"redelivery"`
	// NextAttemptAt is when the retry of a failed attempt is due (simulated clock), if any.
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// job is one attempt to be made.
type job struct {
	ev         *Event
	hookID     int64
	attempt    int
	due        time.Time
	redelivery bool
}

// deliveryState is the Server's delivery bookkeeping, guarded by Server.mu.
type deliveryState struct {
	events     []*Event
	deliveries []Delivery
	retries    []job
	seq        int64
	inflight   int
	idle       chan struct{} // closed and replaced whenever inflight drops to 0
}

// startLocked starts j in its own goroutine; WaitDeliveries waits for it. Callers hold s.mu.
func (s *Server) startLocked(j job) {
	s.dl.inflight++
	go func() {
		defer s.finished()
		s.attempt(context.Background(), j)
	}()
}

// finished marks one started attempt as done.
func (s *Server) finished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dl.inflight--
	if s.dl.inflight == 0 {
		close(s.dl.idle)
		s.dl.idle = make(chan struct{})
	}
}

// WaitDeliveries waits until no delivery attempt is in flight: every first delivery of the
// events so far, and every retry DeliverDue or Redeliver started, has been answered or has
// failed. Retries that are not yet due are not waited for (see DeliverDue). It returns
// ctx.Err() if ctx ends first.
func (s *Server) WaitDeliveries(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.dl.inflight == 0 {
			s.mu.Unlock()
			return nil
		}
		idle := s.dl.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DeliverDue makes every retry whose time has come on the simulated clock (Config.Now plus
// AdvanceClock), concurrently, waits for them and returns their deliveries in finishing
// order. With a fake clock, tests advance the clock and call it; the standalone binary calls
// it from a ticker (StartDeliveryLoop).
func (s *Server) DeliverDue(ctx context.Context) []Delivery {
	s.mu.Lock()
	now := s.nowLocked()
	for _, h := range sortedByID(s.webhooks, func(h *Webhook) int64 { return h.ID }) {
		s.expireLocked(h, now)
	}
	var due, later []job
	for _, j := range s.dl.retries {
		if j.due.After(now) {
			later = append(later, j)
		} else {
			due = append(due, j)
		}
	}
	s.dl.retries = later
	s.dl.inflight += len(due)
	s.mu.Unlock()
	slices.SortStableFunc(due, func(a, b job) int { return a.due.Compare(b.due) })
	return s.runJobs(ctx, due, true)
}

// runJobs makes the attempts of jobs (already counted in flight), all at once when
// concurrent (released together) or one after another, and returns their deliveries in
// finishing order.
func (s *Server) runJobs(ctx context.Context, jobs []job, concurrent bool) []Delivery {
	out := make([]Delivery, 0, len(jobs))
	var mu sync.Mutex
	collect := func(j job) {
		defer s.finished()
		if d, ok := s.attempt(ctx, j); ok {
			mu.Lock()
			out = append(out, d)
			mu.Unlock()
		}
	}
	if !concurrent {
		for _, j := range jobs {
			collect(j)
		}
		return out
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, j := range jobs {
		wg.Go(func() {
			<-start
			collect(j)
		})
	}
	close(start)
	wg.Wait()
	slices.SortFunc(out, func(a, b Delivery) int { return cmpInt64(a.Seq, b.Seq) })
	return out
}

// StartDeliveryLoop calls DeliverDue every interval until ctx ends, for servers on the real
// clock. Tests on a fake clock call DeliverDue themselves instead.
func (s *Server) StartDeliveryLoop(ctx context.Context, interval time.Duration) {
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.DeliverDue(ctx)
			}
		}
	}()
}

// RedeliverOptions says how Redeliver repeats an event.
type RedeliverOptions struct {
	// WebhookID is the webhook to send to; 0 means every webhook the event matched.
	WebhookID int64 `json:"webhook_id"`
	// Times is how many copies each webhook gets (default 1).
	Times int `json:"times"`
	// Concurrent sends all copies at once instead of one after another.
	Concurrent bool `json:"concurrent"`
	// Attempt is meta.attempt in the copies (default 1), e.g. 2 to look like a retry.
	Attempt int `json:"attempt"`
}

// ErrUnknownEvent is returned by Redeliver for an event id the simulator has not recorded.
var ErrUnknownEvent = errors.New("pdsim: unknown event")

// ErrUnknownWebhook is returned by Redeliver for a webhook that does not exist (any more).
var ErrUnknownWebhook = errors.New("pdsim: unknown webhook")

// Redeliver sends event eventID again, with the same meta.id and payload, the way Pipedrive
// sometimes delivers one event more than once: Times copies to each webhook, optionally all
// at once. Copies are recorded (Redelivery true) but never retried and never banned. It
// waits for the copies and returns their deliveries.
func (s *Server) Redeliver(ctx context.Context, eventID string, o RedeliverOptions) ([]Delivery, error) {
	o.Times = max(o.Times, 1)
	o.Attempt = max(o.Attempt, 1)
	s.mu.Lock()
	ev := s.eventLocked(eventID)
	if ev == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("redeliver %s: %w", eventID, ErrUnknownEvent)
	}
	hooks := ev.WebhookIDs
	if o.WebhookID != 0 {
		if h, ok := s.webhooks[o.WebhookID]; !ok || h.CompanyID != ev.CompanyID {
			s.mu.Unlock()
			return nil, fmt.Errorf("redeliver %s to %d: %w", eventID, o.WebhookID, ErrUnknownWebhook)
		}
		hooks = []int64{o.WebhookID}
	}
	var jobs []job
	for _, id := range hooks {
		for range o.Times {
			jobs = append(jobs, job{ev: ev, hookID: id, attempt: o.Attempt, redelivery: true})
		}
	}
	s.dl.inflight += len(jobs)
	s.mu.Unlock()
	return s.runJobs(ctx, jobs, o.Concurrent), nil
}

// attempt makes one delivery attempt of j and records it; ok is false when the webhook no
// longer exists (deleted, or its user uninstalled), in which case nothing is sent.
func (s *Server) attempt(ctx context.Context, j job) (Delivery, bool) {
	s.mu.Lock()
	h, ok := s.webhooks[j.hookID]
	if !ok {
		s.mu.Unlock()
		return Delivery{}, false
	}
	now := s.nowLocked()
	if !h.BannedUntil.IsZero() && !now.Before(h.BannedUntil) {
		// The ban is over: start counting afresh.
		h.BannedUntil, h.ConsecutiveFailures = time.Time{}, 0
	}
	if s.expireLocked(h, now) {
		s.mu.Unlock()
		return Delivery{}, false
	}
	hook := *h
	s.mu.Unlock()

	d := Delivery{
		EventID: j.ev.ID, WebhookID: hook.ID, Object: j.ev.Object, Action: j.ev.Action, EntityID: j.ev.EntityID,
		Attempt: j.attempt, Time: now, Redelivery: j.redelivery,
		BasicAuth: hook.HTTPAuthUser != "" || hook.HTTPAuthPassword != "",
	}
	if !j.redelivery && now.Before(hook.BannedUntil) {
		d.Outcome, d.BasicAuth = OutcomeBanned, false
		d.Error = "webhook banned until " + hook.BannedUntil.UTC().Format(time.RFC3339)
		return s.record(d, j), true
	}
	d.Status, d.Outcome, d.Error = s.post(ctx, hook, s.payload(j.ev, hook, j.attempt))
	return s.record(d, j), true
}

// expireLocked deletes h, as Pipedrive does, when it has gone WebhookDeleteAfter without a
// successful delivery since its first failed attempt, and reports whether it did. Callers hold
// s.mu. It runs when an attempt is due and at every DeliverDue, so advancing the clock past the
// deadline and calling DeliverDue deletes a failing webhook even when no event comes.
func (s *Server) expireLocked(h *Webhook, now time.Time) bool {
	if h.FailingSince.IsZero() || now.Sub(h.FailingSince) < WebhookDeleteAfter {
		return false
	}
	delete(s.webhooks, h.ID)
	s.counters.WebhooksDeleted++
	s.log.Warn("webhook deleted", "action", "webhook_delete", "company_id", h.CompanyID, "user_id", h.OwnerID,
		"webhook_id", h.ID, "reason", "no_successful_delivery", "failing_since", h.FailingSince.UTC().Format(time.RFC3339))
	return true
}

// record stores d, updates the webhook's ban counter and last delivery, schedules the retry
// of a failed attempt, counts and logs it, and returns d as stored.
func (s *Server) record(d Delivery, j job) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	failed := d.Outcome == OutcomeFailed || d.Outcome == OutcomeTimeout
	h, exists := s.webhooks[d.WebhookID]
	if exists && !j.redelivery && d.Outcome != OutcomeBanned {
		h.lastDelivery, h.lastStatus = d.Time, d.Status
		switch {
		case !failed:
			h.FailingSince = time.Time{}
		case h.FailingSince.IsZero():
			h.FailingSince = d.Time
		}
		// Only first attempts count, and a success does not reset the count: only the end of
		// a ban does (pipedrive-facts.md, "Ban counter").
		if j.attempt == 1 {
			if failed {
				h.ConsecutiveFailures++
			}
			if h.ConsecutiveFailures >= WebhookBanThreshold && h.BannedUntil.IsZero() {
				h.BannedUntil = s.nowLocked().Add(WebhookBanDuration)
				s.log.Warn("webhook banned", "action", "webhook_ban", "company_id", h.CompanyID, "user_id", h.OwnerID,
					"webhook_id", h.ID, "reason", "consecutive_failures", "until", h.BannedUntil.UTC().Format(time.RFC3339))
			}
		}
		if failed && j.attempt <= len(WebhookRetryDelays) {
			next := s.nowLocked().Add(WebhookRetryDelays[j.attempt-1])
			s.dl.retries = append(s.dl.retries, job{ev: j.ev, hookID: j.hookID, attempt: j.attempt + 1, due: next})
			d.NextAttemptAt = &next
		}
	}
	s.dl.seq++
	d.Seq = s.dl.seq
	s.dl.deliveries = append(s.dl.deliveries, d)
	s.counters.WebhookDeliveries[d.Outcome]++
	if d.Outcome != OutcomeBanned {
		s.counters.WebhookByStatus[d.Status]++
	}
	s.log.Info("webhook delivery", "action", "webhook_deliver", "company_id", j.ev.CompanyID, "user_id", j.ev.UserID,
		"webhook_id", d.WebhookID, "event_id", d.EventID, "attempt", d.Attempt, "status", d.Status,
		"outcome", d.Outcome, "reason", d.Error, "redelivery", d.Redelivery)
	return d
}

// post sends body to the webhook's URL: JSON, HTTP Basic when the webhook has credentials,
// no redirects followed, Config.WebhookTimeout (real time, like latency faults: it exists to
// catch slow receivers). It returns the status and the outcome.
func (s *Server) post(ctx context.Context, h Webhook, body map[string]any) (status int, outcome, errText string) {
	b, err := marshal(body)
	if err != nil {
		return 0, OutcomeFailed, "encode payload: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.SubscriptionURL, bytes.NewReader(b))
	if err != nil {
		return 0, OutcomeFailed, "build request: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Pipedrive-Webhooks-pdsim")
	if h.HTTPAuthUser != "" || h.HTTPAuthPassword != "" {
		req.SetBasicAuth(h.HTTPAuthUser, h.HTTPAuthPassword)
	}
	resp, err := s.hookClient.Do(req)
	if err == nil {
		// Reading the answer is part of the attempt: a receiver that stalls mid-body times out.
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		status = resp.StatusCode
	}
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return 0, OutcomeTimeout, fmt.Sprintf("no answer within %s", s.cfg.WebhookTimeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry credentials; the webhook id identifies it
		}
		return 0, OutcomeFailed, err.Error()
	}
	if status < 200 || status > 299 {
		return status, OutcomeFailed, ""
	}
	return status, OutcomeDelivered, ""
}

// Deliveries returns every recorded delivery attempt, in the order they finished.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dl.deliveries)
}

// ClearDeliveries forgets recorded deliveries (events stay, and scheduled retries still
// happen).
func (s *Server) ClearDeliveries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dl.deliveries = nil
}

// PendingRetries returns when each scheduled retry is due, soonest first.
func (s *Server) PendingRetries() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Time, 0, len(s.dl.retries))
	for _, j := range s.dl.retries {
		out = append(out, j.due)
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// AgeFailures makes webhook id look as if its failures had started d earlier: a test control
// (Pipedrive has none) that plays days of failed deliveries in an instant, so that the next
// DeliverDue deletes a webhook failing for WebhookDeleteAfter. It does nothing to a webhook
// whose last attempt succeeded. ErrUnknownWebhook when there is no such webhook.
func (s *Server) AgeFailures(id int64, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.webhooks[id]
	if !ok {
		return fmt.Errorf("age failures of %d: %w", id, ErrUnknownWebhook)
	}
	if !h.FailingSince.IsZero() {
		h.FailingSince = h.FailingSince.Add(-d)
	}
	return nil
}
