package pdoauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

const (
	// DefaultBaseURL is Pipedrive's OAuth server.
	DefaultBaseURL = "https://oauth.pipedrive.com"
	// DefaultTimeout bounds each request when Client.HTTP is nil: well under the callback
	// function's 15 s Lambda timeout, so a slow OAuth server still leaves time to answer the user.
	DefaultTimeout = 5 * time.Second
	// MaxBodyBytes is the most of a response body that is read. Token answers are a few hundred
	// bytes; anything bigger is not a token answer.
	MaxBodyBytes = 64 << 10
	// MaxInFlight is how many calls to the OAuth server one process may have in flight and
	// still reuse their connections: the default client's transport keeps this many idle
	// connections per host. http.DefaultTransport keeps 2, so a refresher run with 8 token calls
	// in flight would open a new TLS connection for 6 of every 8. The refresher refuses a
	// REFRESH_CONCURRENCY above it.
	MaxInFlight = 32
)

// transport is shared by every Client without its own HTTP client: connections are reused
// across calls and clients (one per execution environment in Lambda).
var transport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxInFlight
	t.MaxIdleConns = max(t.MaxIdleConns, MaxInFlight)
	return t
}()

// Sentinel errors, wrapped inside the *pderrors.Error this package returns.
var (
	// ErrRejected: the OAuth server answered with a non-2xx status.
	ErrRejected = errors.New("pdoauth: oauth server rejected the request")
	// ErrMissingAccessToken: a 2xx token answer without an access_token.
	ErrMissingAccessToken = errors.New("pdoauth: token response without access_token")
	// ErrMalformedResponse: a 2xx token answer that is not the expected JSON object.
	ErrMalformedResponse = errors.New("pdoauth: malformed token response")
	// ErrBodyTooLarge: a response body longer than MaxBodyBytes.
	ErrBodyTooLarge = errors.New("pdoauth: response body too large")
	// ErrUntrustedAPIDomain: api_domain failed ValidateAPIDomain; the tokens were discarded.
	ErrUntrustedAPIDomain = errors.New("pdoauth: untrusted api_domain")
	// ErrNoCredentials: Client.Credentials is nil or returned an empty client ID or secret.
	ErrNoCredentials = errors.New("pdoauth: no client credentials")
)

// CredentialsFunc returns the app's current client ID and secret. It is called once per
// request and must be safe for concurrent use; clientcreds.Source.OAuthCredentials fits.
type CredentialsFunc func(ctx context.Context) (clientID, clientSecret string, err error)

// StaticCredentials returns a CredentialsFunc that always returns id and secret.
func StaticCredentials(id, secret string) CredentialsFunc {
	return func(context.Context) (string, string, error) { return id, secret, nil }
}

// Client talks to Pipedrive's OAuth server. The zero value of each optional field takes its
// default. A Client is safe for concurrent use as long as its fields are not changed.
type Client struct {
	// BaseURL is the OAuth server; DefaultBaseURL when empty.
	BaseURL string
	// Credentials supplies the client ID and secret for every request (required).
	Credentials CredentialsFunc
	// HTTP sends the requests; when nil, a client with DefaultTimeout on a transport shared by
	// the package that keeps MaxInFlight idle connections per host.
	HTTP *http.Client
	// Now is the clock for Token.ExpiresAt; time.Now when nil.
	Now func() time.Time
	// AllowLoopback accepts a loopback api_domain in token answers (APIDomainPolicy), for the
	// simulator; also on when EnvAllowLoopback is "true". Never set in the deployed functions.
	AllowLoopback bool
}

// Grant types, and the Op names used in returned errors.
const (
	opExchange         = "oauth exchange code"
	opRefresh          = "oauth refresh"
	opExchangeAPIToken = "oauth exchange api token"
	opRevoke           = "oauth revoke"
)

// AuthorizeURL returns the URL to send the user to so they approve the app:
// {BaseURL}/oauth/authorize?client_id=…&redirect_uri=…&state=… (state is left out when empty).
// redirectURI must equal the Developer Hub value. It fails only when the credentials do.
func (c *Client) AuthorizeURL(ctx context.Context, redirectURI, state string) (string, error) {
	id, _, err := c.credentials(ctx)
	if err != nil {
		return "", fmt.Errorf("pdoauth: authorize url: %w", err)
	}
	cfg := oauth2.Config{
		ClientID:    id,
		RedirectURL: redirectURI,
		Endpoint:    oauth2.Endpoint{AuthURL: c.baseURL() + "/oauth/authorize", AuthStyle: oauth2.AuthStyleInHeader},
	}
	return cfg.AuthCodeURL(state), nil
}

// Exchange trades an authorization code for tokens (grant_type=authorization_code).
// redirectURI must be the one the authorize request used.
func (c *Client) Exchange(ctx context.Context, code, redirectURI string) (*Token, error) {
	return c.token(ctx, opExchange, url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {redirectURI},
	}, "")
}

// Refresh trades a refresh token for a new access token (grant_type=refresh_token). When the
// answer carries no refresh_token, the returned Token keeps refreshToken; when it carries one,
// that is the one to store (Pipedrive may rotate it and invalidate the old one).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	return c.token(ctx, opRefresh, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}, refreshToken)
}

// ExchangeAPIToken trades a user's personal API token for OAuth tokens
// (grant_type=exchange_api_token); Pipedrive accepts each API token once.
func (c *Client) ExchangeAPIToken(ctx context.Context, apiToken string) (*Token, error) {
	return c.token(ctx, opExchangeAPIToken, url.Values{
		"grant_type": {"exchange_api_token"},
		"api_token":  {apiToken},
	}, "")
}

// Revoke revokes token at {BaseURL}/oauth/revoke. hint is "access_token", "refresh_token" or
// empty. Revoking a refresh token revokes all of the user's tokens and uninstalls the app.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	status, header, body, err := c.post(ctx, opRevoke, "/oauth/revoke", form)
	if err != nil {
		return err
	}
	if !success(status) {
		return rejected(opRevoke, status, header, body)
	}
	return nil
}

// token runs one grant and turns the answer into a Token. oldRefresh is kept when the answer
// has no refresh_token.
func (c *Client) token(ctx context.Context, op string, form url.Values, oldRefresh string) (*Token, error) {
	// Measure expiry from before the request: the server's clock started no later than this.
	start := c.now()
	status, header, body, err := c.post(ctx, op, "/oauth/token", form)
	if err != nil {
		return nil, err
	}
	if !success(status) {
		return nil, rejected(op, status, header, body)
	}
	tok, err := parseToken(body, start)
	if err != nil {
		return nil, unusable(op, status, header, body, err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = oldRefresh
	}
	if tok.APIDomain != "" {
		domain, err := c.domainPolicy().Validate(tok.APIDomain)
		if err != nil {
			// Tokens were issued, but sending them to that host would hand them over.
			return nil, &pderrors.Error{Op: op, Err: err, Decision: pderrors.Decision{
				Action: pderrors.DeadLetter, Alert: true, Reason: pderrors.ReasonUnexpected,
				Status: status, Message: "untrusted api_domain in token response",
			}}
		}
		tok.APIDomain = domain
	}
	return tok, nil
}

// post sends one form to path with Basic client authentication and returns the answer, its
// body read up to MaxBodyBytes. A 2xx body beyond the limit is an error; a non-2xx body is
// truncated, which is enough to classify it.
func (c *Client) post(ctx context.Context, op, path string, form url.Values) (int, http.Header, []byte, error) {
	id, secret, err := c.credentials(ctx)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("pdoauth: %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("pdoauth: %s: build request: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: form-encode the ID and secret before Basic (as x/oauth2 does).
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// *url.Error keeps the chain (net.Error, context.DeadlineExceeded) for DecisionOf.
		return 0, nil, nil, fmt.Errorf("pdoauth: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("pdoauth: %s: read response (http %d): %w", op, resp.StatusCode, err)
	}
	if len(body) > MaxBodyBytes {
		body = body[:MaxBodyBytes]
		if success(resp.StatusCode) {
			err := fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, MaxBodyBytes)
			return 0, nil, nil, unusable(op, resp.StatusCode, resp.Header, body, err)
		}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// rejected is the error for a non-2xx answer.
func rejected(op string, status int, header http.Header, body []byte) error {
	return &pderrors.Error{
		Op:       op,
		Decision: pderrors.ClassifyOAuth(status, header, body),
		Err:      fmt.Errorf("%w (http %d)", ErrRejected, status),
	}
}

// unusable is the error for a 2xx answer that is not a usable token. The classifier's verdict
// stands if it is not Succeed (today it always is for 2xx; the check keeps this right if it
// learns to read error bodies sent with 200). Otherwise nothing says the next attempt fails the
// same way (a proxy page, a truncated answer), so: Retry; and Alert, because an answer we
// cannot read may have consumed a code or a rotated refresh token.
func unusable(op string, status int, header http.Header, body []byte, err error) error {
	d := pderrors.ClassifyOAuth(status, header, body)
	if d.Action == pderrors.Succeed {
		d = pderrors.Decision{
			Action: pderrors.Retry,
			Alert:  true,
			Reason: pderrors.ReasonUnexpected,
			Status: status,
			// Our own sentinel text: it never quotes the body.
			Message: err.Error(),
		}
	}
	return &pderrors.Error{Op: op, Decision: d, Err: err}
}

func success(status int) bool { return status >= 200 && status <= 299 }

func (c *Client) credentials(ctx context.Context) (string, string, error) {
	if c.Credentials == nil {
		return "", "", ErrNoCredentials
	}
	id, secret, err := c.Credentials(ctx)
	if err != nil {
		return "", "", fmt.Errorf("client credentials: %w", err)
	}
	if id == "" || secret == "" {
		return "", "", ErrNoCredentials
	}
	return id, secret, nil
}

func (c *Client) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

// httpClient returns c.HTTP (or a default) set not to follow redirects: the token endpoint
// never redirects, and following one would resend the form (a code, a token) elsewhere. The
// 3xx itself is returned and classified (DeadLetter, unexpected).
func (c *Client) httpClient() *http.Client {
	hc := http.Client{Timeout: DefaultTimeout, Transport: transport}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

func (c *Client) domainPolicy() APIDomainPolicy {
	return APIDomainPolicy{AllowLoopback: c.AllowLoopback || LoopbackAllowedByEnv()}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}
