package pdsim

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// Defaults that New uses for zero Config fields.
const (
	DefaultClientID        = "pdsim-client-id"
	DefaultClientSecret    = "pdsim-client-secret"
	DefaultRedirectURI     = "http://127.0.0.1:8080/callback"
	DefaultUserID          = int64(5206648)
	DefaultCompanyID       = int64(3408256)
	DefaultCompanyDomain   = "acme"
	DefaultCompanyName     = "Acme Inc"
	DefaultUserName        = "Ada Lovelace"
	DefaultUserEmail       = "ada@acme.example"
	DefaultAccessTokenTTL  = 3599 * time.Second
	DefaultRefreshTokenTTL = 60 * 24 * time.Hour
	DefaultCodeTTL         = 5 * time.Minute
	DefaultRateLimit       = 80
	DefaultRateWindow      = 2 * time.Second
	DefaultWebhookLimit    = 40
)

// DefaultScopes are the scopes granted when neither Config.Scopes nor User.Scopes says otherwise.
var DefaultScopes = []string{"base", "deals:full", "contacts:full", "admin"}

// DefaultGonePaths are the API paths that answer 410 Gone when Config.GonePaths is nil.
var DefaultGonePaths = []string{"/api/v1/deals/timeline"}

// Config configures a Server. Zero fields take the Default… values above.
type Config struct {
	// ClientID and ClientSecret are the app's credentials (Developer Hub).
	ClientID     string
	ClientSecret string
	// RedirectURI is the callback URL registered in Developer Hub; /oauth/authorize and the
	// authorization_code grant accept no other.
	RedirectURI string

	// UserID, CompanyID, CompanyDomain, CompanyName, Name and Email describe the default
	// user, who is added to the directory and is the acting user until SetActingUser.
	UserID        int64
	CompanyID     int64
	CompanyDomain string
	CompanyName   string
	Name          string
	Email         string
	// Scopes are granted to users added without their own scopes (default DefaultScopes).
	Scopes []string

	// RotateRefreshTokens true: a used refresh token becomes invalid and a new one is returned.
	// False: the same refresh token is returned and its expiry is extended (the behaviour
	// Pipedrive's authorization docs describe).
	RotateRefreshTokens bool
	// AccessTokenTTL is the access token lifetime; expires_in is its whole seconds (3599).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is how long a refresh token lives unused; each use resets it (60 days).
	RefreshTokenTTL time.Duration
	// CodeTTL is how long an authorization code can be exchanged (5 minutes).
	CodeTTL time.Duration

	// RateLimit is the number of API requests one access token may make per RateWindow (80).
	RateLimit int
	// RateWindow is the rate-limit window (2 s).
	RateWindow time.Duration
	// DailyBudget is the number of API requests per company per UTC day; 0 turns it off.
	DailyBudget int
	// WebhookLimit is the number of webhooks one user may have (40).
	WebhookLimit int
	// WebhookTimeout is how long a webhook receiver has to answer before the attempt counts
	// as failed (DefaultWebhookTimeout, 10 s, as Pipedrive).
	WebhookTimeout time.Duration
	// WebhookIDsAsStrings renders the ids in v2 webhook meta (entity_id, company_id, user_id,
	// webhook_id, …) as strings, as Pipedrive's v2 guide example shows; false renders numbers,
	// as captured payloads show. Receivers must accept both.
	WebhookIDsAsStrings bool
	// GonePaths are API paths (exact) that answer 410 Gone; nil means DefaultGonePaths and an
	// empty non-nil slice means none.
	GonePaths []string

	// BaseURL is the simulator's own URL (scheme://host:port, no trailing slash), used for
	// api_domain. Empty means: derive it from each request's Host header. SetBaseURL changes it.
	BaseURL string
	// Now is the clock (default time.Now). Tests pass a (*Clock).Now.
	Now func() time.Time
	// Seed seeds the generator that decides Fault.Fraction, so fractions are reproducible.
	Seed uint64
	// AdminEnabled serves the admin API under /_sim/. Leave it off in anything reachable by
	// others: it can mint codes and tokens.
	AdminEnabled bool
	// Logger receives one JSON-friendly event per decision; nil discards. Tokens, secrets,
	// codes and bodies are never logged.
	Logger *slog.Logger
	// HTTPClient sends uninstall requests (default: a client with a 10 s timeout); webhook
	// deliveries use its Transport with WebhookTimeout and never follow redirects.
	HTTPClient *http.Client
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.ClientSecret = cmp.Or(c.ClientSecret, DefaultClientSecret)
	c.RedirectURI = cmp.Or(c.RedirectURI, DefaultRedirectURI)
	c.UserID = cmp.Or(c.UserID, DefaultUserID)
	c.CompanyID = cmp.Or(c.CompanyID, DefaultCompanyID)
	c.CompanyDomain = cmp.Or(c.CompanyDomain, DefaultCompanyDomain)
	c.CompanyName = cmp.Or(c.CompanyName, DefaultCompanyName)
	c.Name = cmp.Or(c.Name, DefaultUserName)
	c.Email = cmp.Or(c.Email, DefaultUserEmail)
	if len(c.Scopes) == 0 {
		c.Scopes = DefaultScopes
	}
	c.Scopes = slices.Clone(c.Scopes)
	c.AccessTokenTTL = positiveOr(c.AccessTokenTTL, DefaultAccessTokenTTL)
	c.RefreshTokenTTL = positiveOr(c.RefreshTokenTTL, DefaultRefreshTokenTTL)
	c.CodeTTL = positiveOr(c.CodeTTL, DefaultCodeTTL)
	c.RateLimit = positiveOr(c.RateLimit, DefaultRateLimit)
	c.RateWindow = positiveOr(c.RateWindow, DefaultRateWindow)
	c.WebhookLimit = positiveOr(c.WebhookLimit, DefaultWebhookLimit)
	c.WebhookTimeout = positiveOr(c.WebhookTimeout, DefaultWebhookTimeout)
	if c.GonePaths == nil {
		c.GonePaths = DefaultGonePaths
	}
	c.GonePaths = slices.Clone(c.GonePaths)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Seed = cmp.Or(c.Seed, 1)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return c
}

// positiveOr returns v when it is positive, else def: a zero or negative limit, TTL or window
// means the default.
func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// User is one Pipedrive user in one company: who approves an authorization and whom the tokens
// act for.
type User struct {
	// ID is the Pipedrive user id; it keys the directory.
	ID int64 `json:"id"`
	// CompanyID, CompanyDomain and CompanyName describe the user's company.
	CompanyID     int64  `json:"company_id"`
	CompanyDomain string `json:"company_domain"`
	CompanyName   string `json:"company_name"`
	// Name and Email are what /api/v1/users/me returns.
	Name  string `json:"name"`
	Email string `json:"email"`
	// Scopes are granted when this user approves; empty means Config.Scopes.
	Scopes []string `json:"scopes"`
}

// The exact messages Pipedrive answers with, from its status-code page. Tests of clients can
// compare against these.
const (
	MsgMissingGrantType         = "Missing parameter: `grant_type`"
	MsgUnsupportedGrantType     = "Unsupported grant type: `grant_type` is invalid"
	MsgAuthCodeInvalid          = "Invalid grant: `authorization_code` is invalid"
	MsgAuthCodeExpired          = "Invalid grant: `authorization_code` has expired"
	MsgRefreshTokenInvalid      = "Invalid grant: `refresh_token` is invalid"
	MsgAPITokenInvalid          = "Invalid grant: `api_token` is invalid"
	MsgClientCredentialsMissing = "Invalid client: cannot retrieve client credentials"
	MsgClientInvalid            = "Invalid client: client is invalid"
	MsgRedirectURINotValid      = "Invalid request: `redirect_uri` is not a valid URI"
	MsgRedirectURIInvalid       = "Invalid request: `redirect_uri` is invalid"
	MsgContentType              = "Invalid request: content must be `application/x-www-form-urlencoded`"
	MsgNotInstallable           = "App cannot be installed for requested company"
	MsgMaintenance              = "Whoops! Something broke in our servers and we cannot serve you this page."
	MsgInternalServerError      = "Internal Server Error"
	MsgMalformedAuthHeader      = "Invalid request: malformed authorization header"
	MsgAccessTokenInvalid       = "Invalid token: `access_token` is invalid"
	MsgScopeMismatch            = "Scope and URL mismatch"
	MsgRequestOverLimit         = "Request over limit"
	MsgDailyBudgetExceeded      = "daily request budget exceeded"
	MsgWebhooksLimit            = "Webhooks limit reached"
	MsgGone                     = "Gone"
	MsgDealNotFound             = "Deal not found"
	MsgPersonNotFound           = "Person not found"
	MsgWebhookNotFound          = "Webhook not found"
	// MsgMissingToken is the simulator's own answer to /oauth/revoke without `token`; the
	// status-code page has no row for it.
	MsgMissingToken = "Missing parameter: `token`"
)

// The OAuth `error` codes used with the messages above.
const (
	ErrCodeInvalidRequest       = "invalid_request"
	ErrCodeInvalidClient        = "invalid_client"
	ErrCodeInvalidGrant         = "invalid_grant"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
)

// ErrorInfo is the error_info value of every API error body.
const ErrorInfo = "Please check developers.pipedrive.com"
