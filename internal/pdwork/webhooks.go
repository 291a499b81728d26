package pdwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// WebhookVersion is the payload version the app's webhooks are created with: v2, Pipedrive's
// default since 2025 (the receiver also reads v1, for webhooks made before).
const WebhookVersion = "2.0"

// WebhookConfig is the set of webhooks every installation gets (register_webhooks jobs).
type WebhookConfig struct {
	// URL is the subscription_url Pipedrive delivers to. Empty: register_webhooks jobs succeed
	// as "skipped" and create nothing.
	URL string
	// Events are the event_object/event_action pairs to subscribe to, one webhook each.
	Events []WebhookEvent
}

// WebhookEvent is one event_object/event_action pair, written "deal.*" or "person.create".
type WebhookEvent struct {
	Object, Action string
}

// String returns "object.action".
func (e WebhookEvent) String() string { return e.Object + "." + e.Action }

// The values Pipedrive accepts for v2 webhooks (pipedrive-facts.md: the v1 objects plus the
// newer ones).
var (
	webhookObjects = []string{"activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage", "user",
		"deal_product", "deal_installment", "project", "task", "board", "phase", "*"}
	webhookActions = []string{"create", "change", "delete", "*"}
	// v1Actions are the v1-era names, still accepted in WEBHOOK_EVENTS and written as v2's.
	// v2 has no "merged": a merge is a change of the surviving entity.
	v1Actions = map[string]string{"added": "create", "updated": "change", "deleted": "delete"}
)

// ParseWebhookEvents reads a comma-separated list such as "deal.*,person.create,lead.change"
// (WEBHOOK_EVENTS) into pairs, in order, without repeats. The v1-era actions added, updated and
// deleted are read as create, change and delete. Blank entries are ignored; an entry that is
// not object.action with a known object and a v2 action is an error, as is an empty list.
func ParseWebhookEvents(s string) ([]WebhookEvent, error) {
	var out []WebhookEvent
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		obj, act, ok := strings.Cut(part, ".")
		if v2, old := v1Actions[act]; old {
			act = v2
		}
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

// WebhookAPI lists, creates and deletes the app's webhooks; *pdapi.Client satisfies it.
type WebhookAPI interface {
	Webhooks(ctx context.Context, apiDomain, accessToken string) ([]pdapi.Webhook, error)
	CreateWebhook(ctx context.Context, apiDomain, accessToken string, w pdapi.NewWebhook) (pdapi.Webhook, error)
	DeleteWebhook(ctx context.Context, apiDomain, accessToken string, id int64) error
}

// WebhookSummary is the Result body of a register_webhooks job: ids only, no credentials.
type WebhookSummary struct {
	Created  []WebhookRef `json:"created"`
	Existing []WebhookRef `json:"existing"`
	// Replaced are the stale webhooks the job deleted (see RegisterWebhooks.Run); the webhook
	// that replaces one is in Created, or in Existing when a current one was already there.
	Replaced []WebhookRef `json:"replaced"`
}

// WebhookRef names one webhook of a WebhookSummary.
type WebhookRef struct {
	ID    int64  `json:"id"`
	Event string `json:"event"`
}

// ReasonCredentialsUnavailable: the webhook Basic credentials could not be read (the secret).
const ReasonCredentialsUnavailable = "credentials_unavailable"

// RegisterWebhooks runs register_webhooks jobs: it creates the configured webhooks the
// installation lacks, as v2 webhooks (WebhookVersion) with HTTP Basic credentials from
// Credentials, the same pair the receiver checks. Sessions, Webhooks and Credentials are
// required. Safe for concurrent use.
type RegisterWebhooks struct {
	Sessions *Sessions
	Webhooks WebhookAPI
	Config   WebhookConfig
	// Credentials returns the Basic pair Pipedrive must send with each delivery (the
	// secret's, clientcreds.Credentials.Webhook). It is never logged or returned in a Result.
	Credentials func(ctx context.Context) (webhook.Credentials, error)
	// Owners records, for each webhook created or found current, the installation that
	// registered it: v1 deliveries name no owner, and the receiver routes them by webhook id.
	// Nil records nothing.
	Owners WebhookOwners
}

// WebhookOwners remembers which installation registered a webhook; *tokenstore.Store
// satisfies it.
type WebhookOwners interface {
	RecordWebhookOwner(ctx context.Context, webhookID string, owner installation.ID) error
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
// survived, creates nothing twice; then deletes the stale ones and creates the missing ones.
//
// A listed webhook is ours for an event when its subscription_url is Config.URL and its object
// and action are the event's (a v1-era action such as "added" counts as its v2 name). It is
// current when its version is WebhookVersion, its Basic user is the one of Credentials and
// Pipedrive shows it active and not banned; it is stale when Pipedrive shows it inactive or
// banned (is_active 0, is_subscription_ban true: its deliveries are dropped), another version (a
// v1 webhook of an older deployment) or another Basic user (an older deployment's
// WEBHOOK_USER: every delivery would get 401 and Pipedrive would ban the webhook). A version,
// user or state Pipedrive does not show counts as current, and the
// password is never compared (what Pipedrive shows of it is not documented), so a rotated
// secret with the same user is not detected. Stale webhooks are deleted, all before any
// create, so a replacement never needs a slot beyond the 40 per user; a 404 means already
// deleted. An event without a current webhook then gets one. Webhooks for other URLs or other
// events are never touched.
//
// Every call goes through the Session, so a 401 refreshes once and the limits (422 at 40
// webhooks per user: dead-letter and alert) and faults decide as for api_call; a failed call
// ends the job with its verdict, and the next attempt lists again (what was deleted or created
// so far is seen then). Skipped without Config.URL; retried when the credentials cannot be read.
func (r *RegisterWebhooks) Run(ctx context.Context, j jobs.Job) worker.Verdict {
	ss, creds, existing, v := r.list(ctx, r.Sessions, j)
	if v != nil {
		return *v
	}
	p := r.plan(existing, creds.User)
	sum, v := r.apply(ctx, ss, j, p, creds)
	if v != nil {
		return *v
	}
	return registered(sum)
}

// list reads the credentials, opens the session (from sessions) and lists the installation's
// webhooks; v is the job's verdict when one of them failed.
func (r *RegisterWebhooks) list(ctx context.Context, sessions *Sessions, j jobs.Job) (ss *Session, creds webhook.Credentials, existing []pdapi.Webhook, v *worker.Verdict) {
	if r.Config.URL == "" {
		return nil, creds, nil, &worker.Verdict{Outcome: worker.OutcomeSkipped, Reason: ReasonWebhookURLUnset, Message: "WEBHOOK_URL is not set: no webhooks to register"}
	}
	creds, err := r.Credentials(ctx)
	if err == nil && !creds.Valid() {
		err = errors.New("the webhook Basic user or password is empty")
	}
	if err != nil {
		return nil, creds, nil, &worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonCredentialsUnavailable, Err: err}
	}
	ss, err = sessions.Open(ctx, j)
	if err != nil {
		vv := VerdictOf(err)
		return nil, creds, nil, &vv
	}
	if err := ss.Call(ctx, func(in installation.Installation) error {
		var err error
		existing, err = r.Webhooks.Webhooks(ctx, in.APIDomain, in.AccessToken)
		return err
	}); err != nil {
		vv := VerdictOf(err)
		return nil, creds, nil, &vv
	}
	return ss, creds, existing, nil
}

// webhookPlan is what a listing of an installation's webhooks asks for.
type webhookPlan struct {
	existing []WebhookRef
	stale    []WebhookRef
	missing  []WebhookEvent
	// lost names why events may have been missed ("webhook_missing", "webhook_inactive",
	// "webhook_credentials"); "" when every configured event had a webhook that delivers
	// (a v1 webhook delivers: replacing it loses nothing).
	lost string
}

// healthy reports whether the plan changes nothing.
func (p webhookPlan) healthy() bool { return len(p.stale) == 0 && len(p.missing) == 0 }

// plan compares the listed webhooks with the configured events (see Run).
func (r *RegisterWebhooks) plan(existing []pdapi.Webhook, user string) webhookPlan {
	var p webhookPlan
	lost := func(why string) {
		if p.lost == "" {
			p.lost = why
		}
	}
	for _, ev := range r.Config.Events {
		current := false
		for _, w := range existing {
			if !ourWebhookFor(w, r.Config.URL, ev) {
				continue
			}
			switch why := staleWebhook(w, user); {
			case why != "":
				p.stale = append(p.stale, WebhookRef{w.ID, ev.String()})
				if why != staleVersion {
					lost(why)
				}
			case !current:
				current = true
				p.existing = append(p.existing, WebhookRef{w.ID, ev.String()})
			}
		}
		if !current {
			p.missing = append(p.missing, ev)
			if !slices.ContainsFunc(p.stale, func(ref WebhookRef) bool { return ref.Event == ev.String() }) {
				lost("webhook_missing")
			}
		}
	}
	return p
}

// apply deletes the plan's stale webhooks, then creates its missing ones, and records the
// owner of each webhook it created or kept (Owners); v is the job's verdict when a call or a
// record failed.
func (r *RegisterWebhooks) apply(ctx context.Context, ss *Session, j jobs.Job, p webhookPlan, creds webhook.Credentials) (WebhookSummary, *worker.Verdict) {
	sum := WebhookSummary{Created: []WebhookRef{}, Existing: append([]WebhookRef{}, p.existing...), Replaced: []WebhookRef{}}
	// Deletes first: the slots they free are there for the creates.
	for _, ref := range p.stale {
		if err := ss.Call(ctx, func(in installation.Installation) error {
			err := r.Webhooks.DeleteWebhook(ctx, in.APIDomain, in.AccessToken, ref.ID)
			if pdapi.IsNotFound(err) {
				return nil // already gone: what the delete wanted
			}
			return err
		}); err != nil {
			v := VerdictOf(err)
			return sum, &v
		}
		sum.Replaced = append(sum.Replaced, ref)
	}
	for _, ev := range p.missing {
		var created pdapi.Webhook
		if err := ss.Call(ctx, func(in installation.Installation) error {
			var err error
			created, err = r.Webhooks.CreateWebhook(ctx, in.APIDomain, in.AccessToken, pdapi.NewWebhook{
				SubscriptionURL:  r.Config.URL,
				EventObject:      ev.Object,
				EventAction:      ev.Action,
				Name:             ev.String(),
				HTTPAuthUser:     creds.User,
				HTTPAuthPassword: creds.Password,
				Version:          WebhookVersion,
			})
			return err
		}); err != nil {
			// Those created so far stay: the next attempt lists them and creates the rest.
			v := VerdictOf(err)
			return sum, &v
		}
		sum.Created = append(sum.Created, WebhookRef{created.ID, ev.String()})
	}
	if r.Owners != nil {
		owner := installation.ID{CompanyID: j.CompanyID, UserID: j.UserID}
		for _, ref := range slices.Concat(sum.Created, sum.Existing) {
			if err := r.Owners.RecordWebhookOwner(ctx, strconv.FormatInt(ref.ID, 10), owner); err != nil {
				// The next attempt lists the webhooks (now existing) and records them again.
				return sum, &worker.Verdict{Outcome: worker.OutcomeRetry, Reason: ReasonStoreFailed, Err: err}
			}
		}
	}
	return sum, nil
}

// registered is the verdict of a registration that ended with sum.
func registered(sum WebhookSummary) worker.Verdict {
	body, _ := json.Marshal(sum) // ints and strings: cannot fail
	// The status of the last answer: 201 when something was created, else the list's (or the
	// last delete's) 200.
	reason, status := "webhooks_registered", 201
	if len(sum.Created) == 0 {
		reason, status = "webhooks_exist", 200
	}
	return worker.Verdict{Outcome: worker.OutcomeSucceeded, Reason: reason, Status: status, Body: body}
}

// ourWebhookFor reports whether w delivers ev to url: the same subscription_url and object, and
// the same action once a v1-era action name is read as its v2 one.
func ourWebhookFor(w pdapi.Webhook, url string, ev WebhookEvent) bool {
	act := w.EventAction
	if v2, old := v1Actions[act]; old {
		act = v2
	}
	return w.SubscriptionURL == url && w.EventObject == ev.Object && act == ev.Action
}

// Why a webhook is stale (staleWebhook).
const (
	staleVersion     = "webhook_version"
	staleInactive    = "webhook_inactive"
	staleCredentials = "webhook_credentials"
)

// staleWebhook says why w must be replaced: Pipedrive shows it inactive or banned (its
// deliveries are dropped), with another Basic user than user (every delivery gets 401), or
// with another version than WebhookVersion; "" when it is current. What Pipedrive does not
// show (an empty version or user, no is_active) is not stale.
func staleWebhook(w pdapi.Webhook, user string) string {
	switch {
	case w.Inactive || w.Banned:
		return staleInactive
	case w.HTTPAuthUser != "" && w.HTTPAuthUser != user:
		return staleCredentials
	case w.Version != "" && w.Version != WebhookVersion:
		return staleVersion
	}
	return ""
}
