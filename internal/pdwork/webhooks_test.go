package pdwork_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

func TestParseWebhookEvents(t *testing.T) {
	ev := func(o, a string) pdwork.WebhookEvent { return pdwork.WebhookEvent{Object: o, Action: a} }
	tests := []struct {
		in   string
		want []pdwork.WebhookEvent
		ok   bool
	}{
		{"deal.*,person.added", []pdwork.WebhookEvent{ev("deal", "*"), ev("person", "create")}, true},
		{"deal.updated,deal.change,lead.deleted", []pdwork.WebhookEvent{ev("deal", "change"), ev("lead", "delete")}, true},
		{"deal_product.*,project.create,task.change,board.*,phase.*,deal_installment.delete",
			[]pdwork.WebhookEvent{ev("deal_product", "*"), ev("project", "create"), ev("task", "change"), ev("board", "*"), ev("phase", "*"), ev("deal_installment", "delete")}, true},
		{"deal.merged", nil, false},
		{" deal.create , , person.* ", []pdwork.WebhookEvent{ev("deal", "create"), ev("person", "*")}, true},
		{"*.*", []pdwork.WebhookEvent{ev("*", "*")}, true},
		{"deal.*,deal.*", []pdwork.WebhookEvent{ev("deal", "*")}, true},
		{"", nil, false},
		{" , ", nil, false},
		{"deal", nil, false},
		{"deal.", nil, false},
		{"invoice.*", nil, false},
		{"deal.exploded", nil, false},
		{"Deal.*", nil, false},
	}
	for _, tt := range tests {
		got, err := pdwork.ParseWebhookEvents(tt.in)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("ParseWebhookEvents(%q) = %v, %v; want %v (ok %t)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestValidateWebhookURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://app.example/pipedrive/webhooks": true,
		"http://127.0.0.1:9000/hooks":            true,
		"":                                       false,
		"app.example/hooks":                      false,
		"ftp://app.example/hooks":                false,
		"https:///hooks":                         false,
	} {
		if err := pdwork.ValidateWebhookURL(u); (err == nil) != ok {
			t.Errorf("ValidateWebhookURL(%q) = %v, want ok %t", u, err, ok)
		}
	}
}

// hookURL is the app's subscription_url in the register_webhooks tests.
const hookURL = "https://app.example/pipedrive/webhooks"

// The webhook keys of these tests: the current one, and the one before a rotation.
const (
	currentKey  = "current-webhook-key-NEVER-PRINT-0123456789abcdef"
	previousKey = "previous-webhook-key-NEVER-PRINT-0123456789abcde"
)

var (
	// currentCreds is the installation's Basic pair under the current key: what register_webhooks
	// registers with.
	currentCreds = webhook.InstallationCredentials([]byte(currentKey), installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	// previousCreds is the pair a webhook registered before the rotation carries.
	previousCreds = webhook.InstallationCredentials([]byte(previousKey), installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID})
	// legacyCreds is the deployment-wide pair of an older deployment.
	legacyCreds = webhook.Credentials{User: webhook.DefaultUser, Password: "legacy-webhook-password"}
)

// registerWebhooks wires the register_webhooks runner over moto and the simulator for events,
// with the default user installed, and opens a session to set up the user's webhooks.
func registerWebhooks(t *testing.T, events ...pdwork.WebhookEvent) (*pdwork.RegisterWebhooks, *pdsimtest.TestServer, installation.Installation) {
	t.Helper()
	secrets.Add("webhook password", currentCreds.Password, previousCreds.Password, legacyCreds.Password)
	secrets.Add("webhook key", currentKey, previousKey)
	s, sim := sessions(t)
	ss, err := s.Open(t.Context(), registerJob())
	if err != nil {
		t.Fatal(err)
	}
	return &pdwork.RegisterWebhooks{
		Sessions: s,
		Webhooks: s.API.(*pdapi.Client),
		Config:   pdwork.WebhookConfig{URL: hookURL, Events: events},
		Keys: func(context.Context) (webhook.Keys, error) {
			return webhook.Keys{Current: []byte(currentKey), Previous: []byte(previousKey), PreviousUntil: time.Now().Add(time.Hour)}, nil
		},
	}, sim, ss.Installation()
}

func registerJob() jobs.Job {
	return jobs.Job{ID: "register_webhooks:1", Kind: jobs.KindRegisterWebhooks, CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
}

// hookDesc describes a webhook at the simulator for comparisons: URL, event, version, Basic
// user and whether its password is the current one.
func hookDesc(h pdsim.Webhook) string {
	return fmt.Sprintf("%s %s.%s v%s user=%s current-password=%t", h.SubscriptionURL, h.EventObject, h.EventAction, h.Version,
		h.HTTPAuthUser, h.HTTPAuthPassword == currentCreds.Password)
}

// TestRegisterWebhooksReplacesStale: a webhook for our URL and one of our events that an older
// deployment registered as v1, or with another Basic user, is deleted and created again as v2
// with the current pair, in the same job; a current one is kept; another URL's is never touched.
// At the 40-webhook limit the delete frees the slot the replacement needs.
func TestRegisterWebhooksReplacesStale(t *testing.T) {
	dealCreate := pdwork.WebhookEvent{Object: "deal", Action: "create"}
	ours := func(action, version, user, password string) pdapi.NewWebhook {
		return pdapi.NewWebhook{SubscriptionURL: hookURL, EventObject: "deal", EventAction: action, Name: "deal." + action,
			Version: version, HTTPAuthUser: user, HTTPAuthPassword: password}
	}
	current := ours("create", "2.0", currentCreds.User, currentCreds.Password)
	other := pdapi.NewWebhook{SubscriptionURL: "https://other-app.example/hook", EventObject: "deal", EventAction: "added", Name: "theirs",
		Version: "1.0", HTTPAuthUser: "their-user", HTTPAuthPassword: "their-password"}
	v2Current := hookURL + " deal.create v2.0 user=" + currentCreds.User + " current-password=true"
	otherDesc := "https://other-app.example/hook deal.added v1.0 user=their-user current-password=false"
	tests := []struct {
		name     string
		before   []pdapi.NewWebhook
		others   int // webhooks to other URLs made first (toward the 40 per user)
		want     []string
		reason   string
		replaced []int // indexes into before of the webhooks deleted
		creates  int
	}{
		{"v1 registration is replaced by v2", []pdapi.NewWebhook{ours("added", "1.0", currentCreds.User, currentCreds.Password)}, 0,
			[]string{v2Current}, "webhooks_registered", []int{0}, 1},
		{"old Basic user is replaced", []pdapi.NewWebhook{ours("create", "2.0", "old-webhook-user", "old-webhook-password")}, 0,
			[]string{v2Current}, "webhooks_registered", []int{0}, 1},
		{"the legacy deployment-wide pair is replaced", []pdapi.NewWebhook{ours("create", "2.0", legacyCreds.User, legacyCreds.Password)}, 0,
			[]string{v2Current}, "webhooks_registered", []int{0}, 1},
		{"the previous key's credentials are replaced after a rotation", []pdapi.NewWebhook{ours("create", "2.0", previousCreds.User, previousCreds.Password)}, 0,
			[]string{v2Current}, "webhooks_registered", []int{0}, 1},
		{"current webhook is kept", []pdapi.NewWebhook{current}, 0,
			[]string{v2Current}, "webhooks_exist", nil, 0},
		{"a stale copy next to a current one is deleted", []pdapi.NewWebhook{current, ours("added", "1.0", "old-webhook-user", "x")}, 0,
			[]string{v2Current}, "webhooks_exist", []int{1}, 0},
		{"another URL's webhook is untouched", []pdapi.NewWebhook{other}, 0,
			[]string{otherDesc, v2Current}, "webhooks_registered", nil, 1},
		{"replaced at the 40-webhook limit", []pdapi.NewWebhook{ours("added", "1.0", currentCreds.User, currentCreds.Password)}, 39,
			nil, "webhooks_registered", []int{0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sim, in := registerWebhooks(t, dealCreate)
			api := &pdapi.Client{HTTP: sim.HTTP.Client()}
			for i := range tt.others {
				o := other
				o.SubscriptionURL += "/" + strconv.Itoa(i)
				if _, err := api.CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, o); err != nil {
					t.Fatalf("CreateWebhook(other #%d) = %v", i, err)
				}
			}
			var ids []int64
			for _, w := range tt.before {
				h, err := api.CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, w)
				if err != nil {
					t.Fatalf("CreateWebhook(%v) = %v", w, err)
				}
				ids = append(ids, h.ID)
			}
			sim.ResetCounters()

			v := r.Run(t.Context(), registerJob())
			if v.Outcome != worker.OutcomeSucceeded || v.Reason != tt.reason {
				t.Fatalf("Run = %s (%s) %v, want succeeded (%s)", v.Outcome, v.Reason, v.Err, tt.reason)
			}
			var sum pdwork.WebhookSummary
			if err := json.Unmarshal(v.Body, &sum); err != nil {
				t.Fatal(err)
			}
			var replaced []int64
			for _, ref := range sum.Replaced {
				replaced = append(replaced, ref.ID)
			}
			var wantReplaced []int64
			for _, i := range tt.replaced {
				wantReplaced = append(wantReplaced, ids[i])
			}
			if !slices.Equal(replaced, wantReplaced) || len(sum.Created) != tt.creates {
				t.Errorf("summary = %s, want replaced %v and %d created", v.Body, wantReplaced, tt.creates)
			}
			c := sim.Counters().APIByRoute
			if c["DELETE /api/v1/webhooks/{id}"] != len(tt.replaced) || c["POST /api/v1/webhooks"] != tt.creates {
				t.Errorf("calls = %d DELETE, %d POST; want %d and %d", c["DELETE /api/v1/webhooks/{id}"], c["POST /api/v1/webhooks"], len(tt.replaced), tt.creates)
			}
			hooks := sim.Webhooks(pdsim.DefaultUserID)
			var got []string
			for _, h := range hooks {
				if tt.want != nil || h.SubscriptionURL == hookURL {
					got = append(got, hookDesc(h))
				}
			}
			want := tt.want
			if want == nil {
				want = []string{v2Current}
			}
			if !slices.Equal(got, want) {
				t.Errorf("webhooks at Pipedrive = %q, want %q", got, want)
			}
			if n := len(hooks); n != len(want)+tt.others {
				t.Errorf("webhooks of the user = %d, want %d", n, len(want)+tt.others)
			}
		})
	}
}

// TestRegisterWebhooksDeleteFails: a delete that fails ends the job with the failure's verdict
// before anything is created, and the next attempt lists again and completes; a 404 means the
// webhook is already gone and the job goes on.
func TestRegisterWebhooksDeleteFails(t *testing.T) {
	tests := []struct {
		name   string
		status int
		first  worker.Outcome
	}{
		{"500 retries", http.StatusInternalServerError, worker.OutcomeRetry},
		{"429 retries", http.StatusTooManyRequests, worker.OutcomeRetry},
		{"404 counts as deleted", http.StatusNotFound, worker.OutcomeSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sim, in := registerWebhooks(t, pdwork.WebhookEvent{Object: "deal", Action: "*"})
			api := &pdapi.Client{HTTP: sim.HTTP.Client()}
			old, err := api.CreateWebhook(t.Context(), in.APIDomain, in.AccessToken, pdapi.NewWebhook{SubscriptionURL: hookURL,
				EventObject: "deal", EventAction: "*", Name: "deal.*", Version: "1.0", HTTPAuthUser: "old-webhook-user", HTTPAuthPassword: "old"})
			if err != nil {
				t.Fatal(err)
			}
			sim.Inject(pdsim.Fault{Method: http.MethodDelete, Path: "/api/v1/webhooks/*", Status: tt.status, Times: 1})
			sim.ResetCounters()
			v := r.Run(t.Context(), registerJob())
			if v.Outcome != tt.first {
				t.Fatalf("first Run = %s (%s) %v, want %s", v.Outcome, v.Reason, v.Err, tt.first)
			}
			if tt.first == worker.OutcomeSucceeded {
				// The fault answered 404 in Pipedrive's place: the job went on and created ours.
				var sum pdwork.WebhookSummary
				if err := json.Unmarshal(v.Body, &sum); err != nil || len(sum.Replaced) != 1 || sum.Replaced[0].ID != old.ID || len(sum.Created) != 1 {
					t.Errorf("summary = %s, want the old webhook replaced and one created", v.Body)
				}
				return
			}
			if c := sim.Counters().APIByRoute["POST /api/v1/webhooks"]; c != 0 {
				t.Errorf("creates after a failed delete = %d, want 0", c)
			}
			if hooks := sim.Webhooks(pdsim.DefaultUserID); len(hooks) != 1 || hooks[0].ID != old.ID {
				t.Errorf("webhooks after a failed delete = %d, want only the old one", len(hooks))
			}
			v = r.Run(t.Context(), registerJob())
			if v.Outcome != worker.OutcomeSucceeded || v.Reason != "webhooks_registered" {
				t.Fatalf("second Run = %s (%s) %v, want succeeded (webhooks_registered)", v.Outcome, v.Reason, v.Err)
			}
			hooks := sim.Webhooks(pdsim.DefaultUserID)
			if len(hooks) != 1 || hookDesc(hooks[0]) != hookURL+" deal.* v2.0 user="+currentCreds.User+" current-password=true" {
				t.Errorf("webhooks after the retry = %d (%v), want one v2 with the current pair", len(hooks), hooks)
			}
		})
	}
}
