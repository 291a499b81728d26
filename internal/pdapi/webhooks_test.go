package pdapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

func TestWebhooksAgainstSimulator(t *testing.T) {
	sim := pdsimtest.New(t, pdsim.Config{WebhookLimit: 2})
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	api := &pdapi.Client{AllowLoopback: true}
	ctx := context.Background()

	list, err := api.Webhooks(ctx, tok.APIDomain, tok.AccessToken)
	if err != nil || len(list) != 0 {
		t.Fatalf("Webhooks() on a new user = %v, %v; want none", list, err)
	}
	in := pdapi.NewWebhook{SubscriptionURL: "https://app.example/hooks", EventObject: "deal", EventAction: "*",
		Name: "deal.*", HTTPAuthUser: "hook-user", HTTPAuthPassword: "hook-password-never-logged"}
	created, err := api.CreateWebhook(ctx, tok.APIDomain, tok.AccessToken, in)
	if err != nil {
		t.Fatalf("CreateWebhook() error = %v", err)
	}
	want := pdapi.Webhook{ID: created.ID, EventObject: "deal", EventAction: "*", SubscriptionURL: "https://app.example/hooks",
		Name: "deal.*", Version: "2.0", UserID: pdsim.DefaultUserID, HTTPAuthUser: "hook-user"}
	if created.ID <= 0 || created != want {
		t.Errorf("CreateWebhook() = %+v, want %+v", created, want)
	}
	stored := sim.Webhooks(pdsim.DefaultUserID)
	if len(stored) != 1 || stored[0].HTTPAuthUser != "hook-user" || stored[0].HTTPAuthPassword != "hook-password-never-logged" {
		t.Errorf("simulator webhooks = %d, basic auth sent %t; want 1 with the credentials", len(stored), len(stored) == 1 && stored[0].HTTPAuthUser != "")
	}
	list, err = api.Webhooks(ctx, tok.APIDomain, tok.AccessToken)
	if err != nil || len(list) != 1 || list[0] != want {
		t.Errorf("Webhooks() = %+v, %v; want [%+v]", list, err, want)
	}

	t.Run("400 invalid subscription_url", func(t *testing.T) {
		bad := in
		bad.SubscriptionURL = "not a url"
		_, err := api.CreateWebhook(ctx, tok.APIDomain, tok.AccessToken, bad)
		if d := pderrors.DecisionOf(err); d.Action != pderrors.DeadLetter || d.Reason != pderrors.ReasonBadRequest || d.Status != 400 {
			t.Errorf("DecisionOf(CreateWebhook() error) = %+v, want DeadLetter (bad_request) 400", d)
		}
	})
	t.Run("422 at the limit", func(t *testing.T) {
		second := in
		second.EventObject = "person"
		if _, err := api.CreateWebhook(ctx, tok.APIDomain, tok.AccessToken, second); err != nil {
			t.Fatalf("CreateWebhook(second) error = %v", err)
		}
		third := in
		third.EventObject = "activity"
		_, err := api.CreateWebhook(ctx, tok.APIDomain, tok.AccessToken, third)
		if d := pderrors.DecisionOf(err); d.Action != pderrors.DeadLetter || d.Reason != pderrors.ReasonWebhookLimit || !d.Alert || d.Status != 422 {
			t.Errorf("DecisionOf(CreateWebhook() over the limit) = %+v, want DeadLetter (webhook_limit) with Alert, 422", d)
		}
	})
	t.Run("403 without the admin scope", func(t *testing.T) {
		if err := sim.AddUser(pdsim.User{ID: 91, CompanyID: 92, CompanyDomain: "narrow", Scopes: []string{"base"}}); err != nil {
			t.Fatal(err)
		}
		narrow, err := sim.IssueToken(91)
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.Webhooks(ctx, narrow.APIDomain, narrow.AccessToken)
		if d := pderrors.DecisionOf(err); d.Action != pderrors.DeadLetter || d.Reason != pderrors.ReasonScopeMismatch {
			t.Errorf("DecisionOf(Webhooks() without scope) = %+v, want DeadLetter (scope_mismatch)", d)
		}
	})
}

// TestDeleteWebhook: a delete removes the webhook from the list; a second delete of the same id
// is Pipedrive's 404 (IsNotFound, DeadLetter not_found); a webhook of another user is a 404
// too and stays; an id that is not positive or an untrusted api_domain are refused unsent.
func TestDeleteWebhook(t *testing.T) {
	sim := pdsimtest.New(t, pdsim.Config{})
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddUser(pdsim.User{ID: 93, CompanyID: pdsim.DefaultCompanyID, CompanyDomain: "acme", Scopes: []string{"base", "admin"}}); err != nil {
		t.Fatal(err)
	}
	other, err := sim.IssueToken(93)
	if err != nil {
		t.Fatal(err)
	}
	api := &pdapi.Client{AllowLoopback: true}
	ctx := context.Background()
	hook := pdapi.NewWebhook{SubscriptionURL: "https://app.example/hooks", EventObject: "deal", EventAction: "*", Name: "deal.*"}
	mine, err := api.CreateWebhook(ctx, tok.APIDomain, tok.AccessToken, hook)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := api.CreateWebhook(ctx, other.APIDomain, other.AccessToken, hook)
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCounters()
	tests := []struct {
		name      string
		domain    string
		id        int64
		want      pderrors.Action
		reason    pderrors.Reason
		notFound  bool
		requested bool
	}{
		{"own webhook", tok.APIDomain, mine.ID, pderrors.Succeed, pderrors.ReasonOK, false, true},
		{"already deleted", tok.APIDomain, mine.ID, pderrors.DeadLetter, pderrors.ReasonNotFound, true, true},
		{"another user's", tok.APIDomain, theirs.ID, pderrors.DeadLetter, pderrors.ReasonNotFound, true, true},
		{"id 0", tok.APIDomain, 0, pderrors.DeadLetter, pdapi.ReasonInvalidRequest, false, false},
		{"untrusted api_domain", "https://evil.example", theirs.ID, pderrors.DeadLetter, pdapi.ReasonUntrustedAPIDomain, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.Counters().APIByRoute["DELETE /api/v1/webhooks/{id}"]
			err := api.DeleteWebhook(ctx, tt.domain, tok.AccessToken, tt.id)
			if d := pderrors.DecisionOf(err); d.Action != tt.want || d.Reason != tt.reason {
				t.Errorf("DecisionOf(DeleteWebhook(%d) error %v) = %+v, want %s (%s)", tt.id, err, d, tt.want, tt.reason)
			}
			if got := pdapi.IsNotFound(err); got != tt.notFound {
				t.Errorf("IsNotFound(%v) = %t, want %t", err, got, tt.notFound)
			}
			if sent := sim.Counters().APIByRoute["DELETE /api/v1/webhooks/{id}"] > before; sent != tt.requested {
				t.Errorf("DeleteWebhook(%d) sent a request = %t, want %t", tt.id, sent, tt.requested)
			}
		})
	}
	if got := sim.Webhooks(pdsim.DefaultUserID); len(got) != 0 {
		t.Errorf("own webhooks after the delete = %d, want 0", len(got))
	}
	if got := sim.Webhooks(93); len(got) != 1 || got[0].ID != theirs.ID {
		t.Errorf("the other user's webhooks = %+v, want theirs untouched", got)
	}
}

func TestWebhooksMalformedAnswers(t *testing.T) {
	tests := []struct {
		name string
		call func(api *pdapi.Client, url string) error
		body string
	}{
		{"list: data not a list", func(api *pdapi.Client, url string) error {
			_, err := api.Webhooks(context.Background(), url, token)
			return err
		}, `{"success":true,"data":{"id":1}}`},
		{"list: webhook without id", func(api *pdapi.Client, url string) error {
			_, err := api.Webhooks(context.Background(), url, token)
			return err
		}, `{"success":true,"data":[{"event_object":"deal"}]}`},
		{"create: no id", func(api *pdapi.Client, url string) error {
			_, err := api.CreateWebhook(context.Background(), url, token, pdapi.NewWebhook{Name: "x"})
			return err
		}, `{"success":true,"data":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := echoServer(t, http.StatusOK, tt.body)
			err := tt.call(&pdapi.Client{AllowLoopback: true}, url)
			if d := pderrors.DecisionOf(err); d.Action != pderrors.Retry || !d.Alert || d.Reason != pderrors.ReasonUnexpected {
				t.Errorf("DecisionOf(error %v) = %+v, want Retry (unexpected) with Alert", err, d)
			}
		})
	}
}

func TestNewWebhookNeverPrintsThePassword(t *testing.T) {
	w := pdapi.NewWebhook{SubscriptionURL: "https://app.example/hooks", EventObject: "deal", EventAction: "*",
		HTTPAuthUser: "u", HTTPAuthPassword: "hook-password-never-logged"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("webhook", "webhook", w)
	for _, s := range []string{fmt.Sprint(w), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w), logged.String()} {
		if strings.Contains(s, "hook-password-never-logged") {
			t.Errorf("formatted webhook %q contains the password", s)
		}
	}
}

// TestWebhookActiveAndBanned reads is_active and is_subscription_ban in the shapes Pipedrive
// has shown (1/0, true/false, strings) and their absence (active, not banned).
func TestWebhookActiveAndBanned(t *testing.T) {
	tests := []struct {
		name                   string
		fields                 string
		wantInactive, wantBann bool
	}{
		{"active, not banned", `"is_active":1,"is_subscription_ban":false`, false, false},
		{"inactive as 0", `"is_active":0`, true, false},
		{"inactive as false", `"is_active":false`, true, false},
		{"inactive as a string", `"is_active":"0"`, true, false},
		{"banned", `"is_active":1,"is_subscription_ban":true`, false, true},
		{"neither shown", ``, false, false},
		{"null", `"is_active":null,"is_subscription_ban":null`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sep := ""
			if tt.fields != "" {
				sep = ","
			}
			url, _ := echoServer(t, http.StatusOK, `{"success":true,"data":[{"id":7,"event_object":"deal","event_action":"*"`+sep+tt.fields+`}]}`)
			hooks, err := (&pdapi.Client{AllowLoopback: true}).Webhooks(context.Background(), url, token)
			if err != nil || len(hooks) != 1 || hooks[0].Inactive != tt.wantInactive || hooks[0].Banned != tt.wantBann {
				t.Errorf("Webhooks = %+v, %v; want one with Inactive %t, Banned %t", hooks, err, tt.wantInactive, tt.wantBann)
			}
		})
	}
	url, _ := echoServer(t, http.StatusOK, `{"success":true,"data":[{"id":7,"is_active":"maybe"}]}`)
	if _, err := (&pdapi.Client{AllowLoopback: true}).Webhooks(context.Background(), url, token); err == nil {
		t.Errorf("Webhooks(is_active \"maybe\") = nil error, want a malformed answer")
	}
}
