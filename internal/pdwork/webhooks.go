package pdwork

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// WebhookConfig is the set of webhooks every installation gets (register_webhooks jobs).
type WebhookConfig struct {
	// URL is the subscription_url Pipedrive delivers to. Empty: register_webhooks jobs succeed
	// as "skipped" and create nothing.
	URL string
	// Events are the event_object/event_action pairs to subscribe to, one webhook each.
	Events []WebhookEvent
	// HTTPAuthUser and HTTPAuthPassword, when set, make Pipedrive deliver with HTTP Basic.
	// The password is never logged and never returned in a Result.
	HTTPAuthUser, HTTPAuthPassword string
}

// WebhookEvent is one event_object/event_action pair, written "deal.*" or "person.create".
type WebhookEvent struct {
	Object, Action string
}

// String returns "object.action".
func (e WebhookEvent) String() string { return e.Object + "." + e.Action }

// The values Pipedrive accepts (pipedrive-facts.md); the v1-era actions still work for
// version 1.0 webhooks.
var (
	webhookObjects = []string{"activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user", "*"}
	webhookActions = []string{"create", "change", "delete", "*", "added", "updated", "deleted", "merged"}
)

// ParseWebhookEvents reads a comma-separated list such as "deal.*,person.added" (WEBHOOK_EVENTS)
// into pairs, in order, without repeats. Blank entries are ignored; an entry that is not
// object.action with a known object and action is an error, as is an empty list.
func ParseWebhookEvents(s string) ([]WebhookEvent, error) {
	var out []WebhookEvent
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		obj, act, ok := strings.Cut(part, ".")
		if !ok || !slices.Contains(webhookObjects, obj) || !slices.Contains(webhookActions, act) {
			return nil, fmt.Errorf("webhook event %q: want object.action with object one of %s and action one of %s",
				part, strings.Join(webhookObjects, ", "), strings.Join(webhookActions, ", "))
		}
		if e := (WebhookEvent{obj, act}); !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("webhook events %q: no event given", s)
	}
	return out, nil
}

// ValidateWebhookURL checks that u can be a subscription_url: an absolute http or https URL.
func ValidateWebhookURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("webhook URL %q is not an absolute http(s) URL", u)
	}
	return nil
}

// WebhookAPI lists and creates the app's webhooks; *pdapi.Client satisfies it.
type WebhookAPI interface {
	Webhooks(ctx context.Context, apiDomain, accessToken string) ([]pdapi.Webhook, error)
	CreateWebhook(ctx context.Context, apiDomain, accessToken string, w pdapi.NewWebhook) (pdapi.Webhook, error)
}

// WebhookSummary is the Result body of a register_webhooks job: ids only, no credentials.
type WebhookSummary struct {
	Created  []WebhookRef `json:"created"`
	Existing []WebhookRef `json:"existing"`
}

// WebhookRef names one webhook of a WebhookSummary.
type WebhookRef struct {
	ID    int64  `json:"id"`
	Event string `json:"event"`
}

// RegisterWebhooks runs register_webhooks jobs: it creates the configured webhooks the
// installation lacks. Sessions and Webhooks are required. Safe for concurrent use.
type RegisterWebhooks struct {
	Sessions *Sessions
	Webhooks WebhookAPI
	Config   WebhookConfig
}

var (
	_ worker.Runner    = (*RegisterWebhooks)(nil)
	_ worker.Exclusive = (*RegisterWebhooks)(nil)
)

// ExclusiveKey makes one registration per installation run at a time: two installs in quick
// succession enqueue two jobs (one per install version); run together, both would list no
// webhooks and both create every one.
func (*RegisterWebhooks) ExclusiveKey(j jobs.Job) string {
	return jobs.KindRegisterWebhooks + "#" + installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}.String()
}

// Run lists the installation's webhooks first, so a repeated job, or a reinstall whose webhooks
// survived, creates nothing twice; then creates the missing ones. Every call goes through the
// Session, so a 401 refreshes once and the limits and faults decide as for api_call. Skipped
// without Config.URL.
func (r *RegisterWebhooks) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	cfg := r.Config
	if cfg.URL == "" {
		return worker.Verdict{Outcome: worker.OutcomeSkipped, Reason: ReasonWebhookURLUnset, Message: "WEBHOOK_URL is not set: no webhooks to register"}
	}
	ss, err := r.Sessions.Open(ctx, j)
	if err != nil {
		return VerdictOf(err)
	}
	var existing []pdapi.Webhook
	if err := ss.Call(ctx, func(in installation.Installation) error {
		var err error
		existing, err = r.Webhooks.Webhooks(ctx, in.APIDomain, in.AccessToken)
		return err
	}); err != nil {
		return VerdictOf(err)
	}
	sum := WebhookSummary{Created: []WebhookRef{}, Existing: []WebhookRef{}}
	for _, ev := range cfg.Events {
		i := slices.IndexFunc(existing, func(w pdapi.Webhook) bool {
			return w.SubscriptionURL == cfg.URL && w.EventObject == ev.Object && w.EventAction == ev.Action
		})
		if i >= 0 {
			sum.Existing = append(sum.Existing, WebhookRef{existing[i].ID, ev.String()})
			continue
		}
		var created pdapi.Webhook
		if err := ss.Call(ctx, func(in installation.Installation) error {
			var err error
			created, err = r.Webhooks.CreateWebhook(ctx, in.APIDomain, in.AccessToken, pdapi.NewWebhook{
				SubscriptionURL:  cfg.URL,
				EventObject:      ev.Object,
				EventAction:      ev.Action,
				Name:             ev.String(),
				HTTPAuthUser:     cfg.HTTPAuthUser,
				HTTPAuthPassword: cfg.HTTPAuthPassword,
			})
			return err
		}); err != nil {
			// Those created so far stay: the next attempt lists them and creates the rest.
			return VerdictOf(err)
		}
		sum.Created = append(sum.Created, WebhookRef{created.ID, ev.String()})
	}
	body, _ := json.Marshal(sum) // ints and strings: cannot fail
	// The status of the last answer: 201 when something was created, else the list's 200.
	reason, status := "webhooks_registered", 201
	if len(sum.Created) == 0 {
		reason, status = "webhooks_exist", 200
	}
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: reason, Status: status, Body: body}
}
