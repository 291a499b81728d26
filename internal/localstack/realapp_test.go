package localstack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestAppFromEnv(t *testing.T) {
	full := map[string]string{
		localstack.EnvAppClientID:     "cid",
		localstack.EnvAppClientSecret: "s3cret-value",
		localstack.EnvAppRedirectURI:  "https://pdkit.example.trycloudflare.com/oauth/callback",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range full {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantNil bool
		wantErr string // "" means valid
	}{
		{"no client id: the simulator", map[string]string{localstack.EnvAppClientSecret: "x"}, true, ""},
		{"complete", full, false, ""},
		{"loopback http stand-in", with(localstack.EnvAppOAuthURL, "http://127.0.0.1:9999"), false, ""},
		{"no secret", with(localstack.EnvAppClientSecret, ""), false, localstack.EnvAppClientSecret},
		{"no redirect", with(localstack.EnvAppRedirectURI, ""), false, localstack.EnvAppRedirectURI},
		{"plain http redirect", with(localstack.EnvAppRedirectURI, "http://pdkit.example.com/oauth/callback"), false, "https"},
		{"wrong callback path", with(localstack.EnvAppRedirectURI, "https://pdkit.example.com/callback"), false, "/oauth/callback"},
		{"plain http oauth url", with(localstack.EnvAppOAuthURL, "http://oauth.pipedrive.com"), false, "OAuth URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := localstack.AppFromEnv(envOf(tt.env))
			switch {
			case tt.wantNil:
				if app != nil || err != nil {
					t.Errorf("AppFromEnv = %v, %v; want nil, nil", app, err)
				}
			case tt.wantErr == "":
				if app == nil || err != nil {
					t.Errorf("AppFromEnv = %v, %v; want an app", app, err)
				}
			default:
				if err == nil || !errors.Is(err, localstack.ErrAppConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("AppFromEnv error = %v, want ErrAppConfig naming %q", err, tt.wantErr)
				}
			}
			if err != nil && strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("AppFromEnv error shows the secret: %v", err)
			}
			if app != nil && (strings.Contains(fmt.Sprint(app), "s3cret-value") || strings.Contains(fmt.Sprintf("%#v", *app), "s3cret-value")) {
				t.Errorf("App prints its secret: %v", app)
			}
		})
	}
}

// TestStackAgainstARealApp runs the stack configured for a "real" app, with a second simulator,
// at its own address with its own client id and secret, standing in for Pipedrive: the
// configuration comes from the environment as `make serve` reads it, and a user installs
// through it.
func TestStackAgainstARealApp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	gateway := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	public := "http://" + gateway // what a tunnel's https origin is in production
	const clientID, secret = "real-app-client-id", "real-app-secret-0123456789"
	real := pdsimtest.New(t, pdsim.Config{ClientID: clientID, ClientSecret: secret, RedirectURI: public + "/oauth/callback"})

	app, err := localstack.AppFromEnv(envOf(map[string]string{
		localstack.EnvAppClientID:     clientID,
		localstack.EnvAppClientSecret: secret,
		localstack.EnvAppRedirectURI:  public + "/oauth/callback",
		localstack.EnvAppOAuthURL:     real.URL,
	}))
	if err != nil || app == nil {
		t.Fatalf("AppFromEnv = %v, %v", app, err)
	}
	if app.AllowLoopback {
		t.Errorf("AppFromEnv allows a loopback api_domain, want it off for a real app")
	}
	app.AllowLoopback = true // the stand-in's api_domain is on loopback
	logs := &testenv.Buffer{}
	cfg := stackConfig(t, logs)
	cfg.GatewayAddr, cfg.App = gateway, app
	st, err := localstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(st.Close)
	started(st)
	if st.Simulator != nil || st.SimulatorURL != "" {
		t.Errorf("Start with an App started the embedded simulator at %q", st.SimulatorURL)
	}

	// The ClientSecret in AWS holds the app's credentials.
	sv, err := secretsmanager.NewFromConfig(st.AWS).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(st.Resources.SecretID)})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		StateKey     string `json:"state_key"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(sv.SecretString)), &creds); err != nil || creds.ClientID != clientID || creds.ClientSecret != secret || len(creds.StateKey) < 32 {
		t.Errorf("ClientSecret holds client_id %q, a secret equal to the app's: %v, state key of %d; want the app's and a state key (err %v)",
			creds.ClientID, creds.ClientSecret == secret, len(creds.StateKey), err)
	}

	// A user installs: install link -> the real OAuth server's consent -> the public callback.
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(public + "/oauth/install")
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "The app is installed") {
		t.Fatalf("install through the real app = %d %s, want the success page\nlogs:\n%s", resp.StatusCode, body, logs)
	}
	if !strings.HasPrefix(resp.Request.URL.String(), public+"/oauth/callback?") {
		t.Errorf("the install ended at %s, want the public callback", resp.Request.URL.Redacted())
	}
	c := real.Counters()
	if c.TokenByGrant["authorization_code"] != 1 {
		t.Errorf("the real app's OAuth server exchanged %d codes, want 1", c.TokenByGrant["authorization_code"])
	}
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	in, err := st.Store.Get(ctx, id)
	secrets.Add("access token", in.AccessToken)
	secrets.Add("refresh token", in.RefreshToken)
	if err != nil || in.Status != installation.StatusActive || in.APIDomain != real.URL {
		t.Errorf("installation %s = %+v, %v; want active with api_domain %s", id, in, err, real.URL)
	}
	// The worker registers the webhooks at the real app's API, to the public receiver.
	var hooks []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		hooks = hooks[:0]
		for _, w := range real.Webhooks(pdsim.DefaultUserID) {
			hooks = append(hooks, w.SubscriptionURL)
		}
		if len(hooks) > 0 {
			break
		}
	}
	if len(hooks) == 0 || hooks[0] != public+"/pipedrive/webhooks" {
		t.Errorf("webhooks registered at the real app = %v, want subscription_url %s/pipedrive/webhooks", hooks, public)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the functions' logs show the client secret")
	}
}
