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
	// DefaultBurstPenalty is how long a token's window refuses every call once a call went
	// over its limit: Pipedrive's burst 429 carries Retry-After: 10 and x-ratelimit-reset: 10
	// ("Our APIs have a penalty set when the rate limit is reached", Pipedrive staff).
	DefaultBurstPenalty = 10 * time.Second
	DefaultWebhookLimit = 40
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

	// Plan is the companies' pricing tier (PlanEssential by default): it sets the default
	// RateLimit (80, 160, 400, 480) and the budget multiplier (1, 2, 5, 7).
	Plan Plan
	// RateLimit is how many API calls one access token may make in any RateWindow (a rolling
	// window); 0 means the plan's limit.
	RateLimit int
	// SearchRateLimit is the same for search calls (/…/search, itemSearch), which have a
	// window of their own (DefaultSearchRateLimit, 10).
	SearchRateLimit int
	// RateWindow is the rolling window's length (2 s).
	RateWindow time.Duration
	// BurstPenalty is how long a token's window (general or search) refuses every call after
	// a call went over its limit (DefaultBurstPenalty, 10 s): each 429 meanwhile carries
	// Retry-After and x-ratelimit-reset of the penalty's time left, in whole seconds rounded
	// up. Calls during the penalty do not extend it. Negative: no penalty (a 429 only until
	// the window's oldest call leaves it).
	BurstPenalty time.Duration
	// DailyBudget, when positive, is every company's daily token budget. Zero: with
	// TokenBudget the documented BaseDailyTokens × plan multiplier × Seats + TopUpTokens,
	// without it no budget. Each call costs tokens by kind (CallCost); a call is served while
	// the company has any left. The budget resets at midnight in ServerTimezone.
	DailyBudget int
	// TokenBudget turns on the documented daily budget (see DailyBudget).
	TokenBudget bool
	// Seats and TopUpTokens size the documented budget (Seats default 1).
	Seats       int
	TopUpTokens int
	// ServerTimezone is where the budget's day ends (UTC by default); Pipedrive resets it at
	// its server's midnight, not the customer's.
	ServerTimezone *time.Location
	// BudgetHeadersOmitted is the fraction (0..1) of answers that leave out the budget headers
	// (x-daily-ratelimit-token-limit, -remaining), which Pipedrive does not send on every
	// answer; 0 sends them always (when a budget is on).
	BudgetHeadersOmitted float64
	// BlockAfter 429s of one token within BlockWindow get it Cloudflare's 403 block page for
	// BlockFor (DefaultBlockAfter, DefaultBlockWindow, DefaultBlockFor); a negative BlockAfter
	// never blocks.
	BlockAfter  int
	BlockWindow time.Duration
	BlockFor    time.Duration
	// GatewayUnauthorized answers a bad or expired access token as the live API gateway does
	// (401 "unauthorized access", errorCode 401, x-401-by-gw: true) instead of the status-code
	// page's "Invalid token: `access_token` is invalid".
	GatewayUnauthorized bool
	// V1Retired answers 410 Gone on the v1 endpoints of deals, persons, organizations and
	// activities (their searches included); their v2 endpoints serve as before. Off by
	// default: those v1 endpoints are out of support since 2026-08-01, and Pipedrive's
	// changelog says they may still operate but may be removed without notice. Turn it on to
	// test a client against their removal.
	V1Retired bool
	// WebhookLimit is the number of webhooks one user may have (40).
	WebhookLimit int
	// WebhookTimeout is how long a webhook receiver has to answer before the attempt counts
	// as failed (DefaultWebhookTimeout, 10 s, as Pipedrive).
	WebhookTimeout time.Duration
	// WebhookIDsAsNumbers renders the ids in v2 webhook meta (entity_id, company_id, user_id,
	// webhook_owner_id, webhook_id, …) as numbers, as third-party captures show; false (the
	// default) renders strings, as Pipedrive's v2 guide and migration guide examples do.
	// Receivers must accept both.
	WebhookIDsAsNumbers bool
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
	if _, ok := planLimits[c.Plan]; !ok {
		c.Plan = PlanEssential
	}
	c.RateLimit = positiveOr(c.RateLimit, planLimits[c.Plan].burst)
	c.SearchRateLimit = positiveOr(c.SearchRateLimit, DefaultSearchRateLimit)
	c.Seats = positiveOr(c.Seats, 1)
	c.TopUpTokens = max(c.TopUpTokens, 0)
	if c.ServerTimezone == nil {
		c.ServerTimezone = time.UTC
	}
	if c.BlockAfter == 0 {
		c.BlockAfter = DefaultBlockAfter
	}
	c.BlockWindow = positiveOr(c.BlockWindow, DefaultBlockWindow)
	c.BlockFor = positiveOr(c.BlockFor, DefaultBlockFor)
	c.RateWindow = positiveOr(c.RateWindow, DefaultRateWindow)
	if c.BurstPenalty == 0 {
		c.BurstPenalty = DefaultBurstPenalty
	}
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
