package install

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
)

// Credentials supplies the app's current client credentials (the state key signs states);
// *clientcreds.Source satisfies it.
type Credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
}

// Authorizer builds Pipedrive's consent URL; *pdoauth.Client satisfies it.
type Authorizer interface {
	AuthorizeURL(ctx context.Context, redirectURI, state string) (string, error)
}

// Attempts caps costly work per source; *tokenstore.Store satisfies it. CountAttempt counts
// one attempt under name in the current window and reports whether it is within limit.
type Attempts interface {
	CountAttempt(ctx context.Context, name string, limit int, window time.Duration) (bool, error)
}

// Default caps on token-endpoint calls (see Flow).
const (
	DefaultAttemptWindow    = 10 * time.Minute
	DefaultAttemptsPerIP    = 30
	DefaultAttemptsPerState = 5
)

// The variables CapsFromEnv reads (template parameters InstallAttemptsPerIP,
// InstallAttemptsPerState and InstallAttemptWindowMinutes).
const (
	EnvAttemptsPerIP       = "INSTALL_ATTEMPTS_PER_IP"
	EnvAttemptsPerState    = "INSTALL_ATTEMPTS_PER_STATE"
	EnvAttemptWindowMinute = "INSTALL_ATTEMPT_WINDOW_MINUTES"
)

// Caps are the Flow's attempt caps (AttemptsPerIP, AttemptsPerState, AttemptWindow).
type Caps struct {
	PerIP, PerState int
	Window          time.Duration
}

// CapsFromEnv reads the caps: positive integers, each variable unset or empty meaning its
// default (DefaultAttemptsPerIP, DefaultAttemptsPerState, DefaultAttemptWindow). A company
// installing its whole team from behind one NAT address raises the per-IP cap.
func CapsFromEnv(getenv func(string) string) (Caps, error) {
	c := Caps{PerIP: DefaultAttemptsPerIP, PerState: DefaultAttemptsPerState, Window: DefaultAttemptWindow}
	for _, v := range []struct {
		key string
		set func(n int)
	}{
		{EnvAttemptsPerIP, func(n int) { c.PerIP = n }},
		{EnvAttemptsPerState, func(n int) { c.PerState = n }},
		{EnvAttemptWindowMinute, func(n int) { c.Window = time.Duration(n) * time.Minute }},
	} {
		raw := getenv(v.key)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return Caps{}, fmt.Errorf("install: %s = %q, want a positive integer", v.key, raw)
		}
		v.set(n)
	}
	return c, nil
}

// Flow is the browser's side of an install, around the Installer: Begin starts one (a state
// bound to the browser and Pipedrive's consent URL), Finish ends one (verifies the state, caps
// the callbacks that may reach the token endpoint, runs Install). Creds, OAuth and Installer
// are required; Attempts nil does not cap (tests). Safe for concurrent use.
type Flow struct {
	Creds     Credentials
	OAuth     Authorizer
	Installer *Installer
	Attempts  Attempts
	// Alerts is told about configuration a person must fix (publish-or-log).
	Alerts oncall.Notifier
	// Log receives side events (a state from another browser, a failed counter); nil discards.
	Log *slog.Logger

	// RequireState rejects callbacks without a state, and callbacks whose state Begin bound to
	// a browser arriving without that browser's binding. It is false by default because
	// installs started from the Pipedrive Marketplace may call back without a state this app
	// issued; turn it on only when every install starts at Begin. A state that is present is
	// always verified; with RequireState off, a state presented by another browser counts as
	// no state (logged as state_unbound) since stripping the state would get the same result.
	RequireState bool
	// StateTTL is how long an issued state is accepted; oauthstate.DefaultTTL when zero.
	StateTTL time.Duration
	// Now is the clock for states; time.Now when nil.
	Now func() time.Time
	// AttemptWindow, AttemptsPerIP and AttemptsPerState cap the callbacks that may reach the
	// token endpoint: per client IP and per state, in fixed windows of AttemptWindow (zero:
	// the defaults above). A real user needs one, a reload or two more.
	AttemptWindow    time.Duration
	AttemptsPerIP    int
	AttemptsPerState int
}

// Start is what Begin decided. Outcome is Authorize (redirect the browser to URL and keep
// Binding in a cookie for TTL), NotConfigured or ConfigError (a person was alerted).
type Start struct {
	Outcome Outcome
	Reason  string
	URL     string
	Binding string
	TTL     time.Duration
	Err     error
}

// Begin issues a fresh state bound to the browser (Binding) and Pipedrive's consent URL for
// redirectURI.
func (f *Flow) Begin(ctx context.Context, redirectURI string) Start {
	creds, err := f.Creds.Get(ctx)
	if err != nil {
		r := f.configError(ctx, "credentials_unavailable", "The app's client credentials could not be loaded", err)
		return Start{Outcome: r.Outcome, Reason: r.Reason, Err: err}
	}
	// The state is bound to this browser: the binding goes in a cookie only it holds.
	state, binding, err := f.signer(creds).IssueBound()
	if err != nil {
		r := f.configError(ctx, "state_key_invalid", "The state key in the client secret is missing or too short", err)
		return Start{Outcome: r.Outcome, Reason: r.Reason, Err: err}
	}
	u, err := f.OAuth.AuthorizeURL(ctx, redirectURI, state)
	if err != nil {
		r := f.configError(ctx, "authorize_url_failed", "The Pipedrive authorize URL could not be built", err)
		return Start{Outcome: r.Outcome, Reason: r.Reason, Err: err}
	}
	return Start{Outcome: Authorize, Reason: "authorize", URL: u, Binding: binding, TTL: cmp.Or(f.StateTTL, oauthstate.DefaultTTL)}
}

// Callback is what a browser brought back from Pipedrive's consent page.
type Callback struct {
	// Code is the authorization code (the caller checked it is one non-empty value).
	Code string
	// State is the state, when HasState; Binding is this browser's binding (its cookie).
	State    string
	HasState bool
	Binding  string
	// SourceIP is the client's address, for the per-IP cap; "" does not count.
	SourceIP string
	// RedirectURI is the callback URL the browser came back to (the exchange must name it).
	RedirectURI string
}

// Finish verifies the callback's state, counts it against the caps and installs with its code.
func (f *Flow) Finish(ctx context.Context, cb Callback) Result {
	creds, err := f.Creds.Get(ctx)
	if err != nil {
		return f.configError(ctx, "credentials_unavailable", "The app's client credentials could not be loaded", err)
	}
	switch {
	case cb.HasState:
		err := f.signer(creds).VerifyBound(cb.State, cb.Binding)
		switch {
		case err == nil:
		case errors.Is(err, oauthstate.ErrWeakKey):
			return f.configError(ctx, "state_key_invalid", "The state key in the client secret is missing or too short", err)
		case errors.Is(err, oauthstate.ErrStateUnbound) && !f.RequireState:
			// Another browser's state (or this one's, cookie lost) is worth no more than no
			// state, which is accepted in this mode: go on, but say so.
			f.logger().LogAttrs(ctx, slog.LevelWarn, "oauth state not bound to this browser",
				slog.String("action", "continue"), slog.String("reason", "state_unbound"))
		default:
			return Result{Outcome: InvalidState, Reason: stateReason(err), Err: err}
		}
	case f.RequireState:
		return Result{Outcome: InvalidState, Reason: "state_missing"}
	}
	if reason, ok := f.allowAttempt(ctx, cb); !ok {
		return Result{Outcome: TooManyAttempts, Reason: reason}
	}
	in := f.Installer
	if in.RedirectURI != cb.RedirectURI && cb.RedirectURI != "" {
		// Derived from the request's domain: the exchange must name the URL the user came back to.
		cp := *in
		cp.RedirectURI = cb.RedirectURI
		in = &cp
	}
	return in.Install(ctx, cb.Code)
}

// AttemptWindowOrDefault is the caps' window (for a Retry-After).
func (f *Flow) AttemptWindowOrDefault() time.Duration {
	return cmp.Or(f.AttemptWindow, DefaultAttemptWindow)
}

// configError is the Result of a configuration problem: NotConfigured while the credentials
// are the deploy's placeholders (no alert: a first deploy), else ConfigError and an alert.
func (f *Flow) configError(ctx context.Context, reason, summary string, err error) Result {
	if errors.Is(err, clientcreds.ErrNotConfigured) {
		return Result{Outcome: NotConfigured, Reason: "client_credentials_placeholder", Err: err}
	}
	f.Alerts.Notify(ctx, oncall.Alert{Reason: reason, Summary: summary, Detail: oncall.ErrorDetail(err)})
	return Result{Outcome: ConfigError, Reason: reason, Err: err}
}

// allowAttempt counts this callback against the caps per client IP and per state; reason
// names the cap that refused it. A counter that cannot be written lets the callback through
// (logged): the caps protect Pipedrive's token endpoint from floods, and an outage of the
// counter must not stop real installs.
func (f *Flow) allowAttempt(ctx context.Context, cb Callback) (reason string, ok bool) {
	if f.Attempts == nil {
		return "", true
	}
	type limitKey struct {
		reason, name string
		limit        int
	}
	var keys []limitKey
	if cb.SourceIP != "" {
		keys = append(keys, limitKey{"too_many_attempts_ip", "callback#ip#" + cb.SourceIP, cmp.Or(f.AttemptsPerIP, DefaultAttemptsPerIP)})
	}
	if cb.HasState {
		// The state's hash: the key never holds the state itself.
		sum := sha256.Sum256([]byte(cb.State))
		keys = append(keys, limitKey{"too_many_attempts_state", "callback#state#" + hex.EncodeToString(sum[:16]), cmp.Or(f.AttemptsPerState, DefaultAttemptsPerState)})
	}
	for _, k := range keys {
		allowed, err := f.Attempts.CountAttempt(ctx, k.name, k.limit, f.AttemptWindowOrDefault())
		if err != nil {
			f.logger().LogAttrs(ctx, slog.LevelWarn, "attempt counter failed; not capping",
				slog.String("action", "continue"), slog.String("reason", "attempt_count_failed"), slog.String("error", err.Error()))
			continue
		}
		if !allowed {
			return k.reason, false
		}
	}
	return "", true
}

func (f *Flow) signer(c clientcreds.Credentials) *oauthstate.Signer {
	return &oauthstate.Signer{Key: c.StateKey, TTL: f.StateTTL, Now: f.Now, RequireBinding: f.RequireState}
}

func (f *Flow) logger() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// stateReason names a state verification failure for the log.
func stateReason(err error) string {
	switch {
	case errors.Is(err, oauthstate.ErrStateExpired):
		return "state_expired"
	case errors.Is(err, oauthstate.ErrStateForged):
		return "state_forged"
	case errors.Is(err, oauthstate.ErrStateUnbound):
		return "state_unbound"
	}
	return "state_malformed"
}
