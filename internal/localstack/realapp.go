package localstack

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

// The environment variables AppFromEnv reads. The client secret is read from the environment
// only: a command-line flag would show it to everyone who can run `ps`.
const (
	EnvAppClientID     = "PIPEDRIVE_CLIENT_ID"
	EnvAppClientSecret = "PIPEDRIVE_CLIENT_SECRET"
	EnvAppRedirectURI  = "PIPEDRIVE_REDIRECT_URI"
	EnvAppOAuthURL     = "PIPEDRIVE_OAUTH_URL"
)

// DefaultAppOAuthURL is Pipedrive's OAuth server, used when a real app names no other.
const DefaultAppOAuthURL = "https://oauth.pipedrive.com"

// CallbackPath is the callback's route on the gateway; an app's redirect URI must end in it.
const CallbackPath = "/oauth/callback"

// App is a real Pipedrive app (Developer Hub) the local stack runs against instead of the
// simulator. Its String and GoString never show the client secret.
type App struct {
	// OAuthURL is Pipedrive's OAuth server (DefaultAppOAuthURL when empty).
	OAuthURL string
	// ClientID and ClientSecret are the app's, from Developer Hub.
	ClientID, ClientSecret string
	// RedirectURI is the callback URL registered in Developer Hub: a public https URL that
	// reaches the local gateway (a tunnel to it), ending in CallbackPath. Its origin is also
	// where Pipedrive delivers the app's webhooks.
	RedirectURI string
	// AllowLoopback lets the functions accept an api_domain on a loopback address, for a
	// simulator standing in for Pipedrive in tests; never set for a real app (AppFromEnv
	// leaves it off).
	AllowLoopback bool
}

// String shows the app without its secret.
func (a App) String() string {
	return fmt.Sprintf("App{OAuthURL: %q, ClientID: [set], ClientSecret: [redacted], RedirectURI: %q}", a.oauthURL(), a.RedirectURI)
}

// GoString is String, so that %#v does not print the secret either.
func (a App) GoString() string { return a.String() }

// ErrAppConfig matches every error of App.Validate and AppFromEnv.
var ErrAppConfig = errors.New("localstack: pipedrive app configuration")

// AppFromEnv reads a real app from getenv (os.Getenv): nil, nil when PIPEDRIVE_CLIENT_ID is
// unset (the simulator stays the default); otherwise the app, validated.
func AppFromEnv(getenv func(string) string) (*App, error) {
	if getenv(EnvAppClientID) == "" {
		return nil, nil
	}
	a := &App{
		OAuthURL:     getenv(EnvAppOAuthURL),
		ClientID:     getenv(EnvAppClientID),
		ClientSecret: getenv(EnvAppClientSecret),
		RedirectURI:  getenv(EnvAppRedirectURI),
	}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// Validate checks the app can be used: client id and secret set, an OAuth URL that is https
// (or http on loopback, for a stand-in simulator), and a redirect URI of the same kind whose
// path is CallbackPath. The errors name variables, never values of secrets.
func (a App) Validate() error {
	var problems []string
	if a.ClientID == "" {
		problems = append(problems, EnvAppClientID+" is empty")
	}
	if a.ClientSecret == "" {
		problems = append(problems, EnvAppClientSecret+" is not set (the environment only: never a flag)")
	}
	if _, err := publicURL(a.oauthURL()); err != nil {
		problems = append(problems, "the OAuth URL "+err.Error())
	}
	if u, err := publicURL(a.RedirectURI); err != nil {
		problems = append(problems, EnvAppRedirectURI+" "+err.Error())
	} else if u.Path != CallbackPath || u.RawQuery != "" || u.Fragment != "" {
		problems = append(problems, EnvAppRedirectURI+" must be the tunnel's https origin followed by "+CallbackPath)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrAppConfig, strings.Join(problems, "; "))
	}
	return nil
}

// credentials are what the stack stores in the ClientSecret: the app's id and secret and a
// fresh state key.
func (a App) credentials() infra.ClientCredentials {
	return infra.ClientCredentials{ClientID: a.ClientID, ClientSecret: a.ClientSecret, StateKey: randomHex(32)}
}

// env is what the functions get instead of the simulator's addresses: the real OAuth server,
// the public callback, and the public webhook receiver beside it.
func (a App) env() map[string]string {
	u, _ := url.Parse(a.RedirectURI) // validated
	return map[string]string{
		"PIPEDRIVE_OAUTH_URL": strings.TrimRight(a.oauthURL(), "/"),
		"REDIRECT_URI":        a.RedirectURI,
		"WEBHOOK_URL":         u.Scheme + "://" + u.Host + "/pipedrive/webhooks",
	}
}

// PublicBaseURL is the redirect URI's origin: where users open /oauth/install.
func (a App) PublicBaseURL() string {
	u, err := url.Parse(a.RedirectURI)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (a App) oauthURL() string { return cmp.Or(a.OAuthURL, DefaultAppOAuthURL) }

// publicURL parses raw as an absolute https URL, or http on a loopback host.
func publicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, errors.New("is empty")
	case err != nil || !u.IsAbs() || u.Host == "":
		return nil, errors.New("is not an absolute URL")
	case u.User != nil:
		return nil, errors.New("must not carry user info")
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return u, nil
	}
	return nil, errors.New("must be https (http only on 127.0.0.1 or localhost)")
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
