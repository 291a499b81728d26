package uninstall_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/uninstall"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var (
	t0   = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	acme = installation.ID{CompanyID: 3408256, UserID: 5206648}
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// recorder is an alert Sender that keeps the reasons.
type recorder struct{ reasons []string }

func (r *recorder) Alert(_ context.Context, a oncall.Alert) error {
	r.reasons = append(r.reasons, a.Reason)
	return nil
}

// failingStore is a store whose uninstall write fails.
type failingStore struct{}

func (failingStore) UninstallAsOf(context.Context, installation.ID, time.Time) (installation.Installation, error) {
	return installation.Installation{}, errors.New("dynamodb: throttled")
}

// TestUninstall: one row per Outcome, on moto (the tokens table, the client secret), without
// Lambda or HTTP: the Result, what the store holds afterwards, and who was alerted.
func TestUninstall(t *testing.T) {
	res := testenv.Provision(t)
	cfg := testenv.AWS(t)
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(cfg), Table: res.TableName, Cipher: testenv.Cipher(t, res), Now: func() time.Time { return t0 }}
	sm := secretsmanager.NewFromConfig(cfg)
	unconfigured, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(testenv.Prefix(t) + "first-deploy"),
		SecretString: aws.String(`{"client_id":"REPLACE_ME","client_secret":"REPLACE_ME","state_key":"` + testenv.StateKey + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	right := basic(testenv.ClientID, testenv.ClientSecret)
	body := `{"client_id":"` + testenv.ClientID + `","company_id":3408256,"user_id":"5206648","timestamp":"2026-11-27T12:30:00Z"}`
	tests := []struct {
		name       string
		secretID   string
		store      uninstall.Store
		req        uninstall.Request
		want       uninstall.Outcome
		wantGone   bool // the installation is uninstalled afterwards
		wantAlerts string
	}{
		{name: "uninstalled", req: uninstall.Request{Authorization: right, Body: body}, want: uninstall.Uninstalled, wantGone: true},
		{name: "base64 body", req: uninstall.Request{Authorization: right, Body: base64.StdEncoding.EncodeToString([]byte(body)), Base64: true}, want: uninstall.Uninstalled, wantGone: true},
		{name: "no timestamp: unconditional", req: uninstall.Request{Authorization: right, Body: `{"company_id":3408256,"user_id":5206648}`}, want: uninstall.Uninstalled, wantGone: true},
		{name: "unknown installation", req: uninstall.Request{Authorization: right, Body: `{"company_id":1,"user_id":2}`}, want: uninstall.Unknown},
		{name: "dated an hour before the install", req: uninstall.Request{Authorization: right, Body: `{"company_id":3408256,"user_id":5206648,"timestamp":"2026-11-27T11:00:00Z"}`}, want: uninstall.Predates},
		{name: "wrong secret", req: uninstall.Request{Authorization: basic(testenv.ClientID, "guessed"), Body: body}, want: uninstall.Unauthorized},
		{name: "no Authorization", req: uninstall.Request{Body: body}, want: uninstall.Unauthorized},
		{name: "not JSON", req: uninstall.Request{Authorization: right, Body: `{`}, want: uninstall.Malformed},
		{name: "ids missing", req: uninstall.Request{Authorization: right, Body: `{"company_id":3408256}`}, want: uninstall.Malformed},
		{name: "not base64", req: uninstall.Request{Authorization: right, Body: "%%%", Base64: true}, want: uninstall.Malformed},
		{name: "too large", req: uninstall.Request{Authorization: right, Body: `{"pad":"` + strings.Repeat("x", uninstall.MaxBodyBytes) + `"}`}, want: uninstall.TooLarge},
		{name: "another app's client_id", req: uninstall.Request{Authorization: right, Body: `{"client_id":"other","company_id":3408256,"user_id":5206648}`}, want: uninstall.ClientIDMismatch},
		{name: "not configured", secretID: aws.ToString(unconfigured.ARN), req: uninstall.Request{Authorization: basic("REPLACE_ME", "REPLACE_ME"), Body: body}, want: uninstall.NotConfigured},
		{name: "secret missing", secretID: "no-such-secret", req: uninstall.Request{Authorization: right, Body: body}, want: uninstall.CredentialsUnavailable, wantAlerts: "credentials_unavailable"},
		{name: "store fails", store: failingStore{}, req: uninstall.Request{Authorization: right, Body: body}, want: uninstall.StoreFailed, wantAlerts: "uninstall_store_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := store.Install(t.Context(), tokenstore.Installation{ID: acme, AccessToken: "v1u:uninstall-access", RefreshToken: "1:uninstall-refresh",
				APIDomain: "https://acme.pipedrive.com", ExpiresAt: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			alerts := &recorder{}
			u := &uninstall.Uninstaller{
				Creds:  &clientcreds.Source{Client: sm, SecretID: cmpOr(tt.secretID, res.SecretID)},
				Store:  store,
				Alerts: oncall.Notifier{Sender: alerts},
				Now:    func() time.Time { return t0 },
			}
			if tt.store != nil {
				u.Store = tt.store
			}
			r := u.Uninstall(t.Context(), tt.req)
			if r.Outcome != tt.want {
				t.Fatalf("Uninstall = %v (%v), want %v", r.Outcome, r.Err, tt.want)
			}
			if tt.want == uninstall.Malformed && r.Err == nil {
				t.Errorf("Malformed without the problem in Err")
			}
			got, err := store.Get(t.Context(), acme)
			if err != nil {
				t.Fatal(err)
			}
			if gone := got.Status == tokenstore.StatusUninstalled; gone != tt.wantGone {
				t.Errorf("uninstalled afterwards = %t, want %t", gone, tt.wantGone)
			}
			if strings.Join(alerts.reasons, ",") != tt.wantAlerts {
				t.Errorf("alerts = %v, want %q", alerts.reasons, tt.wantAlerts)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
