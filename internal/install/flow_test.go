package install_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/install"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// secretSource creates a client secret holding value in moto and reads it as the functions do.
func secretSource(t *testing.T, name, value string) *clientcreds.Source {
	t.Helper()
	sm := secretsmanager.NewFromConfig(testenv.AWS(t))
	out, err := sm.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(testenv.Prefix(t) + name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatal(err)
	}
	return &clientcreds.Source{Client: sm, SecretID: aws.ToString(out.ARN)}
}

// newFlow is a Flow over e's Installer and a secret in moto with the test credentials.
func (e *env) newFlow(secret string) *install.Flow {
	creds := secretSource(e.t, "flow", secret)
	return &install.Flow{
		Creds:     creds,
		OAuth:     &pdoauth.Client{BaseURL: e.sim.URL, Credentials: creds.OAuthCredentials},
		Installer: e.in,
		Alerts:    oncall.Notifier{Sender: e.rec},
		Now:       e.clock.Now,
	}
}

const goodSecret = `{"client_id":"` + testenv.ClientID + `","client_secret":"` + testenv.ClientSecret + `","state_key":"` + testenv.StateKey + `"}`

// begin runs Begin and returns its state (from the consent URL) and binding.
func begin(t *testing.T, f *install.Flow) (state, binding string) {
	t.Helper()
	st := f.Begin(t.Context(), redirectURI)
	if st.Outcome != install.Authorize || st.Binding == "" || st.TTL != 10*time.Minute {
		t.Fatalf("Begin = %+v, want Authorize with a binding for 10m", st)
	}
	u, err := url.Parse(st.URL)
	if err != nil || u.Query().Get("redirect_uri") != redirectURI || u.Query().Get("state") == "" {
		t.Fatalf("Begin URL %q: want Pipedrive's consent page with redirect_uri and state", st.URL)
	}
	secrets.AddWhole("state", u.Query().Get("state"))
	return u.Query().Get("state"), st.Binding
}

// TestFlow: one row per outcome the Flow adds around Install, without Lambda or HTTP: the
// state bound by Begin, verified by Finish (forged, expired, another browser's, missing), the
// caps, and a secret not configured yet or broken.
func TestFlow(t *testing.T) {
	t.Run("bound state installs", func(t *testing.T) {
		e := newEnv(t)
		f := e.newFlow(goodSecret)
		state, binding := begin(t, f)
		r := f.Finish(t.Context(), install.Callback{Code: e.issueCode(), State: state, HasState: true, Binding: binding, RedirectURI: redirectURI})
		if r.Outcome != install.Installed {
			t.Fatalf("Finish = %v (%s, %v), want installed", r.Outcome, r.Reason, r.Err)
		}
	})
	t.Run("state checks", func(t *testing.T) {
		e := newEnv(t)
		f := e.newFlow(goodSecret)
		state, binding := begin(t, f)
		forged, forgedBinding, err := (&oauthstate.Signer{Key: []byte("another-key-0123456789-abcdefghij"), Now: e.clock.Now}).IssueBound()
		if err != nil {
			t.Fatal(err)
		}
		// An authentic state issued without a browser binding (the v1 form).
		unbound, err := (&oauthstate.Signer{Key: []byte(testenv.StateKey), Now: e.clock.Now}).Issue()
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name         string
			requireState bool
			cb           install.Callback
			want         install.Outcome
			reason       string
		}{
			{"forged", false, install.Callback{State: forged, HasState: true, Binding: forgedBinding}, install.InvalidState, "state_forged"},
			{"malformed", false, install.Callback{State: "nonsense", HasState: true, Binding: binding}, install.InvalidState, "state_malformed"},
			{"another browser's, required", true, install.Callback{State: state, HasState: true, Binding: "other"}, install.InvalidState, "state_unbound"},
			{"missing, required", true, install.Callback{}, install.InvalidState, "state_missing"},
			{"unbound, required", true, install.Callback{State: unbound, HasState: true, Binding: binding}, install.InvalidState, "state_unbound"},
		} {
			f.RequireState = tt.requireState
			tt.cb.Code = "never-exchanged"
			if r := f.Finish(t.Context(), tt.cb); r.Outcome != tt.want || r.Reason != tt.reason {
				t.Errorf("%s: Finish = %v %s, want %v %s", tt.name, r.Outcome, r.Reason, tt.want, tt.reason)
			}
		}
		f.RequireState = false
		e.clock.Advance(11 * time.Minute)
		if r := f.Finish(t.Context(), install.Callback{Code: "never-exchanged", State: state, HasState: true, Binding: binding}); r.Outcome != install.InvalidState || r.Reason != "state_expired" {
			t.Errorf("expired: Finish = %v %s, want invalid_state state_expired", r.Outcome, r.Reason)
		}
		if n := e.tokenCalls(); n != 0 {
			t.Errorf("token calls = %d, want 0 for rejected states", n)
		}
	})
	t.Run("another browser's state, not required, counts as none", func(t *testing.T) {
		e := newEnv(t)
		f := e.newFlow(goodSecret)
		state, _ := begin(t, f)
		r := f.Finish(t.Context(), install.Callback{Code: e.issueCode(), State: state, HasState: true, Binding: "other", RedirectURI: redirectURI})
		if r.Outcome != install.Installed {
			t.Errorf("Finish = %v %s, want installed", r.Outcome, r.Reason)
		}
	})
	t.Run("caps per source", func(t *testing.T) {
		e := newEnv(t)
		f := e.newFlow(goodSecret)
		f.Attempts, f.AttemptsPerIP = e.store, 1
		cb := install.Callback{Code: "never-exchanged", SourceIP: "203.0.113.7"}
		if r := f.Finish(t.Context(), cb); r.Outcome == install.TooManyAttempts {
			t.Fatalf("first callback = %v, want it let through", r.Outcome)
		}
		if r := f.Finish(t.Context(), cb); r.Outcome != install.TooManyAttempts || r.Reason != "too_many_attempts_ip" {
			t.Errorf("second callback = %v %s, want too_many_attempts too_many_attempts_ip", r.Outcome, r.Reason)
		}
	})
	t.Run("not configured, then broken", func(t *testing.T) {
		e := newEnv(t)
		f := e.newFlow(`{"client_id":"REPLACE_ME","client_secret":"REPLACE_ME","state_key":"` + testenv.StateKey + `"}`)
		if st := f.Begin(t.Context(), redirectURI); st.Outcome != install.NotConfigured {
			t.Errorf("Begin = %v, want not_configured", st.Outcome)
		}
		if r := f.Finish(t.Context(), install.Callback{Code: "c"}); r.Outcome != install.NotConfigured {
			t.Errorf("Finish = %v, want not_configured", r.Outcome)
		}
		if len(e.rec.alerts) != 0 {
			t.Errorf("alerts = %v, want none while not configured", e.rec.alerts)
		}
		broken := e.newFlow(`{"client_id":"id","client_secret":"s","state_key":"short"}`)
		if st := broken.Begin(t.Context(), redirectURI); st.Outcome != install.ConfigError || st.Reason != "credentials_unavailable" {
			t.Errorf("Begin with a broken secret = %v %s, want config_error credentials_unavailable", st.Outcome, st.Reason)
		}
		if !slices.Equal(e.rec.alerts, []string{"credentials_unavailable"}) {
			t.Errorf("alerts = %v, want [credentials_unavailable]", e.rec.alerts)
		}
	})
}

// TestCapsFromEnv: the install caps come from the template's parameters, with documented
// defaults when unset, and a bad value stops the callback at start.
func TestCapsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	def, err := install.CapsFromEnv(env(nil))
	if err != nil || def != (install.Caps{PerIP: 30, PerState: 5, Window: 10 * time.Minute}) {
		t.Errorf("CapsFromEnv(unset) = %+v, %v; want 30 per IP, 5 per state, 10 minutes", def, err)
	}
	got, err := install.CapsFromEnv(env(map[string]string{install.EnvAttemptsPerIP: "300", install.EnvAttemptsPerState: "8", install.EnvAttemptWindowMinute: "15"}))
	if err != nil || got != (install.Caps{PerIP: 300, PerState: 8, Window: 15 * time.Minute}) {
		t.Errorf("CapsFromEnv(set) = %+v, %v", got, err)
	}
	for _, bad := range []string{"0", "-1", "ten", "1.5"} {
		if _, err := install.CapsFromEnv(env(map[string]string{install.EnvAttemptsPerIP: bad})); err == nil || !strings.Contains(err.Error(), install.EnvAttemptsPerIP) {
			t.Errorf("CapsFromEnv(%s=%q) = %v, want an error naming it", install.EnvAttemptsPerIP, bad, err)
		}
	}
}
