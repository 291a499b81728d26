package pdapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// FuzzMe: any users/me answer (status and body) leaves Me without a panic; a success names a
// positive user and company id, and every failure carries a pderrors decision.
func FuzzMe(f *testing.F) {
	f.Add(200, []byte(`{"success":true,"data":{"id":5206648,"company_id":"3408256","name":"A","is_admin":1}}`))
	f.Add(200, []byte(`{"success":true,"data":{"id":5206648.0,"company_id":0}}`))
	f.Add(401, []byte(`{"success":false,"error":"unauthorized access","errorCode":401}`))
	f.Add(200, []byte(`<html>`))
	srv := newAnswerServer(f)
	c := &pdapi.Client{AllowLoopback: true}
	f.Fuzz(func(t *testing.T, st int, b []byte) {
		srv.answer(st, b)
		me, err := c.Me(context.Background(), srv.URL, "v1u:token")
		if err == nil {
			if me.ID <= 0 || me.CompanyID <= 0 {
				t.Fatalf("Me accepted ids %d:%d", me.ID, me.CompanyID)
			}
			return
		}
		if d := pderrors.DecisionOf(err); d.Action == pderrors.Succeed {
			t.Fatalf("Me failed (%v) with a Succeed decision", err)
		}
	})
}

// FuzzWebhooks: any answer to the webhook list, create and delete calls leaves them without a panic;
// what they accept has positive ids, and every failure carries a pderrors decision that is not
// Succeed (a list answer that cannot be read must never look like "no webhooks yet").
func FuzzWebhooks(f *testing.F) {
	f.Add(200, []byte(`{"success":true,"data":[{"id":7,"event_object":"deal","event_action":"*","subscription_url":"https://x/y","version":"2.0","user_id":"5"}]}`))
	f.Add(201, []byte(`{"success":true,"data":{"id":"8","event_object":"person","event_action":"create"}}`))
	f.Add(200, []byte(`{"success":true,"data":[{"event_object":"deal"}]}`))
	f.Add(422, []byte(`{"success":false,"error":"Webhooks limit reached"}`))
	f.Add(200, []byte(`{"success":true,"data":null}`))
	f.Add(200, []byte(`{"success":true,"data":[{"id":9,"event_object":"deal","event_action":"added","version":"1.0","http_auth_user":"old-user","http_auth_password":"x"}]}`))
	f.Add(200, []byte(`{"success":true,"data":[{"id":9,"http_auth_user":5}]}`))
	f.Add(404, []byte(`{"success":false,"error":"Webhook not found"}`))
	f.Add(200, []byte(`{"success":true,"data":{"id":9}}`))
	srv := newAnswerServer(f)
	c := &pdapi.Client{AllowLoopback: true}
	f.Fuzz(func(t *testing.T, st int, b []byte) {
		st = srv.answer(st, b)
		list, err := c.Webhooks(context.Background(), srv.URL, "v1u:token")
		if err == nil {
			for _, w := range list {
				if w.ID <= 0 {
					t.Fatalf("Webhooks accepted id %d", w.ID)
				}
			}
		} else if d := pderrors.DecisionOf(err); d.Action == pderrors.Succeed {
			t.Fatalf("Webhooks failed (%v) with a Succeed decision", err)
		}
		created, err := c.CreateWebhook(context.Background(), srv.URL, "v1u:token", pdapi.NewWebhook{
			SubscriptionURL: "https://app.example/pipedrive/webhooks", EventObject: "deal", EventAction: "*", Name: "n", Version: "2.0"})
		if err == nil && created.ID <= 0 {
			t.Fatalf("CreateWebhook accepted id %d", created.ID)
		}
		if err != nil && pderrors.DecisionOf(err).Action == pderrors.Succeed {
			t.Fatalf("CreateWebhook failed (%v) with a Succeed decision", err)
		}
		err = c.DeleteWebhook(context.Background(), srv.URL, "v1u:token", 9)
		if (err == nil) != (st < 300) {
			t.Fatalf("DeleteWebhook on http %d = %v, want success exactly for a 2xx", st, err)
		}
		if err != nil && pderrors.DecisionOf(err).Action == pderrors.Succeed {
			t.Fatalf("DeleteWebhook failed (%v) with a Succeed decision", err)
		}
		if pdapi.IsNotFound(err) != (st == 404) {
			t.Fatalf("IsNotFound(DeleteWebhook on http %d) = %t", st, pdapi.IsNotFound(err))
		}
	})
}

// answerServer answers every request with the status and body last set by answer.
type answerServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   []byte
}

// newAnswerServer starts an answerServer that closes with f.
func newAnswerServer(f *testing.F) *answerServer {
	a := &answerServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		s, b := a.status, a.body
		a.mu.Unlock()
		w.WriteHeader(s)
		w.Write(b)
	}))
	f.Cleanup(a.Close)
	return a
}

// answer sets the next answers: body with st, folded into 200–599 when outside it; it returns
// the status it set.
func (a *answerServer) answer(st int, body []byte) int {
	if st < 200 || st > 599 {
		st = 200 + (st%400+400)%400
	}
	a.mu.Lock()
	a.status, a.body = st, body
	a.mu.Unlock()
	return st
}
