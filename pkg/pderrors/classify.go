package pderrors

import (
	"net/http"
	"time"
)

// dailyBudgetRetryAfter: a Retry-After above an hour on a 429 is the exhausted daily token
// budget (it has been seen so), while a burst-window 429 asks for seconds.
const dailyBudgetRetryAfter = time.Hour

// rule maps a message to a decision: it applies when the normalised body text contains every
// word (each written in normalised form: lower case, single spaces, no punctuation).
type rule struct {
	words  []string
	reason Reason
	action Action
	alert  bool
}

// oauthRules are the documented OAuth messages, most specific first: the authorization-code
// "expired" row before "invalid", "cannot retrieve client credentials" before the general
// "invalid client", "not a valid uri" before the general redirect_uri "invalid", because
// every Pipedrive message starts with words such as "invalid grant" or "invalid request".
// Read-only.
var oauthRules = []rule{
	{[]string{"missing", "grant type"}, ReasonMissingGrantType, DeadLetter, true},
	{[]string{"unsupported grant type"}, ReasonUnsupportedGrantType, DeadLetter, true},
	{[]string{"grant type is invalid"}, ReasonUnsupportedGrantType, DeadLetter, true},
	// The user restarts the install; a person need not act.
	{[]string{"authorization code", "expired"}, ReasonAuthCodeExpired, Reauthorize, false},
	{[]string{"authorization code", "invalid"}, ReasonAuthCodeInvalid, Reauthorize, false},
	// A lost grant: the installation stops working until the user installs again.
	{[]string{"refresh token", "invalid"}, ReasonRefreshTokenInvalid, Reauthorize, true},
	{[]string{"refresh token", "expired"}, ReasonRefreshTokenInvalid, Reauthorize, true},
	{[]string{"refresh token", "revoked"}, ReasonRefreshTokenInvalid, Reauthorize, true},
	{[]string{"api token", "invalid"}, ReasonAPITokenInvalid, Reauthorize, false},
	// Client and request errors are our configuration or our bug: a person must act.
	{[]string{"cannot retrieve client credentials"}, ReasonClientCredentialsMissing, DeadLetter, true},
	{[]string{"client is invalid"}, ReasonClientInvalid, DeadLetter, true},
	{[]string{"invalid client"}, ReasonClientInvalid, DeadLetter, true},
	{[]string{"redirect uri", "not a valid uri"}, ReasonRedirectURINotValid, DeadLetter, true},
	{[]string{"redirect uri", "not provided"}, ReasonRedirectURINotValid, DeadLetter, true},
	{[]string{"redirect uri", "missing"}, ReasonRedirectURINotValid, DeadLetter, true},
	{[]string{"redirect uri", "invalid"}, ReasonRedirectURIMismatch, DeadLetter, true},
	{[]string{"redirect uri", "match"}, ReasonRedirectURIMismatch, DeadLetter, true},
	{[]string{"content must be"}, ReasonWrongContentType, DeadLetter, true},
	{[]string{"x www form urlencoded"}, ReasonWrongContentType, DeadLetter, true},
	// The app is unlisted or hidden for the user's company: nothing to fix on our side.
	{[]string{"not be installed"}, ReasonAppNotInstallable, DeadLetter, false},
}

// Words of the API and shared rules, in normalised form.
var (
	wordsMalformedAuth = []string{"malformed", "authorization header"}
	wordsScopeMismatch = []string{"scope", "mismatch"}
	wordsWebhookLimit  = []string{"webhook", "limit"}
	wordsDailyBudget   = []string{"daily", "budget"}
	wordsInvalidGrant  = []string{"invalid grant"}
	wordsMaintenance   = []string{"something broke"}
)

// ClassifyAPI classifies a response from the Pipedrive REST API ({api_domain}/api/v1/… and
// /api/v2/…). header and body may be nil. The policy, by status:
//
//	2xx                       Succeed (ok)
//	400 malformed auth header DeadLetter + Alert (our bug)
//	400 other                 DeadLetter (bad_request), v2's ERR_SCHEMA_VALIDATION_FAILED too
//	401                       RefreshAndRetry (access_token_invalid), whatever the body: the
//	                          documented "Invalid token" and the gateway's "unauthorized access"
//	                          (x-401-by-gw: true) alike
//	402                       Pause + Alert (payment_required): the company account is not open
//	403 HTML page             Retry (blocked_by_edge) with the headers' hint: Cloudflare blocks
//	                          clients that kept calling after 429s; a rate problem, not scope
//	403 code feature_capping_* Pause + Alert (feature_capped): a plan limit of the company
//	403 "Scope and URL mismatch" DeadLetter + Alert (scope_mismatch)
//	403 other                 DeadLetter (forbidden)
//	404                       DeadLetter (not_found)
//	410                       DeadLetter + Alert (resource_gone): a retired endpoint, our code must change
//	415                       Pause + Alert (feature_not_enabled): the company lacks the feature
//	422 "Webhooks limit reached" DeadLetter + Alert (webhook_limit)
//	422 other                 DeadLetter (unprocessable)
//	429 daily budget          Pause + Alert (daily_budget_exceeded); see below
//	429 other                 Retry (rate_limited) with the headers' hint
//	500, 502, 504, other 5xx  Retry (server_error)
//	503                       Retry (unavailable)
//	501                       DeadLetter (not_implemented)
//	other 4xx                 DeadLetter (client_error)
//	1xx, 3xx, outside 100-599 DeadLetter (unexpected)
//
// A 429 is the company's daily token budget when its message says "daily request budget
// exceeded", when x-daily-ratelimit-token-remaining is 0, or when Retry-After exceeds one hour.
// Its RetryAfter is Retry-After only (Pipedrive does not document one; when sent it says when
// the budget returns), never x-ratelimit-reset, which on such an answer still counts the
// 2-second burst window. x-daily-requests-left is not read: it counts POST/PUT requests of
// api_token integrations, not an OAuth app's budget. 5xx beyond the four Pipedrive uses (such
// as Cloudflare's 520-524) are retried too: they are gateway failures that pass.
//
// The wait hint of a Retry is the larger of Retry-After and x-ratelimit-reset; see
// MaxRetryAfter. The body is read only when it is a JSON object; an empty, HTML, truncated or
// unknown body leaves the status to decide. ClassifyAPI allocates nothing when header and body
// are nil.
func ClassifyAPI(status int, header http.Header, body []byte) Decision {
	if d, done := classifyStatusClass(status); done {
		return d
	}
	p := parseBody(header, body)
	d := Decision{Status: status, Message: p.message}
	switch status {
	case http.StatusBadRequest:
		if hasAll(p.text, wordsMalformedAuth) {
			return deadLetter(d, ReasonMalformedAuthHeader, true)
		}
		return deadLetter(d, ReasonBadRequest, false)
	case http.StatusUnauthorized:
		d.Action, d.Reason = RefreshAndRetry, ReasonAccessTokenInvalid
		return d
	case http.StatusPaymentRequired:
		return pause(d, header, ReasonPaymentRequired)
	case http.StatusUnsupportedMediaType:
		return pause(d, header, ReasonFeatureNotEnabled)
	case http.StatusForbidden:
		if isBlocked(header, p) {
			return retry(d, header, ReasonBlocked)
		}
		if p.featureCapped {
			return pause(d, header, ReasonFeatureCapped)
		}
		if hasAll(p.text, wordsScopeMismatch) {
			return deadLetter(d, ReasonScopeMismatch, true)
		}
		return deadLetter(d, ReasonForbidden, false)
	case http.StatusNotFound:
		return deadLetter(d, ReasonNotFound, false)
	case http.StatusGone:
		return deadLetter(d, ReasonGone, true)
	case http.StatusUnprocessableEntity:
		if hasAll(p.text, wordsWebhookLimit) {
			return deadLetter(d, ReasonWebhookLimit, true)
		}
		return deadLetter(d, ReasonUnprocessable, false)
	case http.StatusTooManyRequests:
		if isDailyBudget(header, p.text) {
			return pause(d, header, ReasonDailyBudget)
		}
		return retry(d, header, ReasonRateLimited)
	case http.StatusNotImplemented:
		return deadLetter(d, ReasonNotImplemented, false)
	case http.StatusServiceUnavailable:
		return retry(d, header, ReasonUnavailable)
	}
	if status >= 500 {
		return retry(d, header, ReasonServerError)
	}
	return deadLetter(d, ReasonClientError, false)
}

// ClassifyOAuth classifies a response from Pipedrive's OAuth server (oauth.pipedrive.com:
// /oauth/token, /oauth/authorize, /oauth/revoke). header and body may be nil.
//
// 4xx responses are classified by their message (Pipedrive's "message", RFC 6749's
// "error_description", and "error"), matched case-insensitively, ignoring backticks, quotes,
// '_' versus space and surrounding text. Pipedrive documents these rows as 400 and has been
// seen answering them with 401, so the status within 4xx does not matter once a message is
// recognised:
//
//	refresh_token invalid (or expired, revoked)     Reauthorize + Alert (refresh_token_invalid)
//	authorization_code has expired                  Reauthorize (authorization_code_expired)
//	authorization_code is invalid                   Reauthorize (authorization_code_invalid)
//	api_token is invalid                            Reauthorize (api_token_invalid)
//	Invalid client (both messages), redirect_uri (both), content type,
//	missing or unsupported grant_type               DeadLetter + Alert (one reason each)
//	App cannot be installed for requested company   DeadLetter (app_not_installable)
//
// The authorization-code rows need no person: the user restarts the install.
// Unrecognised 4xx messages fall back:
//
//	invalid_grant, unknown message      Reauthorize + Alert (invalid_grant): the grant is gone
//	                                    and, as it may be a refresh token, a person is told
//	401 with WWW-Authenticate: Basic    DeadLetter + Alert (client_invalid): how a wrong client
//	and no message                      secret was seen to answer
//	other 400 or 401                    DeadLetter + Alert (oauth_bad_request)
//	other 4xx                           DeadLetter + Alert (client_error): our code builds every
//	                                    OAuth request, so an undocumented 4xx is ours to fix
//
// 403 as an HTML page and 5xx are handled as ClassifyAPI does (Cloudflare fronts the OAuth
// server too). A 429 is Retry with the headers' hint: rate_limited, or daily_budget_exceeded
// with Alert when it is the budget by ClassifyAPI's rule (the token endpoint is not charged to
// the API budget, so there is nothing to pause). Except that a 503 whose body says "Whoops! Something broke…" (the
// /oauth/authorize page for a company database under maintenance) is company_maintenance.
// 2xx is Succeed; 1xx, 3xx and statuses outside 100-599 are DeadLetter (unexpected).
func ClassifyOAuth(status int, header http.Header, body []byte) Decision {
	if d, done := classifyStatusClass(status); done {
		return d
	}
	p := parseBody(header, body)
	d := Decision{Status: status, Message: p.message}
	switch {
	case status == http.StatusTooManyRequests:
		return rateLimited(d, header, p.text)
	case status == http.StatusForbidden && isBlocked(header, p):
		return retry(d, header, ReasonBlocked)
	case status == http.StatusNotImplemented:
		return deadLetter(d, ReasonNotImplemented, false)
	case status == http.StatusServiceUnavailable:
		// The maintenance answer is a page as often as JSON: search the raw page too.
		if hasAll(p.text, wordsMaintenance) || (p.html && containsFold(body[:min(len(body), maxScanBody)], wordsMaintenance[0])) {
			return retry(d, header, ReasonMaintenance)
		}
		return retry(d, header, ReasonUnavailable)
	case status >= 500:
		return retry(d, header, ReasonServerError)
	}
	for _, r := range oauthRules {
		if hasAll(p.text, r.words) {
			d.Action, d.Reason, d.Alert = r.action, r.reason, r.alert
			return d
		}
	}
	switch {
	case hasAll(p.text, wordsInvalidGrant):
		d.Action, d.Reason, d.Alert = Reauthorize, ReasonInvalidGrant, true
		return d
	case status == http.StatusUnauthorized && d.Message == "" && isBasicChallenge(header):
		return deadLetter(d, ReasonClientInvalid, true)
	case status == http.StatusBadRequest || status == http.StatusUnauthorized:
		return deadLetter(d, ReasonOAuthBadRequest, true)
	}
	return deadLetter(d, ReasonClientError, true)
}

// classifyStatusClass decides the statuses whose body does not matter: 2xx, and 1xx, 3xx or
// anything outside 100-599. done is false for 4xx and 5xx.
func classifyStatusClass(status int) (d Decision, done bool) {
	switch {
	case status >= 200 && status <= 299:
		return Decision{Action: Succeed, Reason: ReasonOK, Status: status}, true
	case status >= 400 && status <= 599:
		return Decision{}, false
	}
	// A redirect or an informational answer means the request went somewhere we did not
	// intend (the client follows redirects); retrying the same request cannot help.
	return Decision{Action: DeadLetter, Reason: ReasonUnexpected, Status: status}, true
}

// rateLimited decides an OAuth 429: Retry with the headers' hint, reason daily_budget_exceeded
// (with Alert) when isDailyBudget says so.
func rateLimited(d Decision, h http.Header, text string) Decision {
	d = retry(d, h, ReasonRateLimited)
	if isDailyBudget(h, text) {
		d.Reason, d.Alert = ReasonDailyBudget, true
	}
	return d
}

// isDailyBudget reports whether a 429 is the company's spent daily token budget rather than
// the burst window: its message, x-daily-ratelimit-token-remaining of 0 or below, or a
// Retry-After above an hour.
func isDailyBudget(h http.Header, text string) bool {
	if hasAll(text, wordsDailyBudget) {
		return true
	}
	if len(h) == 0 {
		return false
	}
	if n, ok := parseInt(headerValue(h, "X-Daily-Ratelimit-Token-Remaining")); ok && n <= 0 {
		return true
	}
	return parseRetryAfter(headerValue(h, "Retry-After"), headerValue(h, "Date")) > dailyBudgetRetryAfter
}

// pause returns d as a Pause with Alert: the company account stops until its budget returns or
// a person acts. The wait hint is Retry-After alone: x-ratelimit-reset is the burst window's.
func pause(d Decision, h http.Header, reason Reason) Decision {
	d.Action, d.Reason, d.Alert = Pause, reason, true
	if len(h) > 0 {
		d.RetryAfter = capHint(parseRetryAfter(headerValue(h, "Retry-After"), headerValue(h, "Date")))
	}
	return d
}

// retry returns d as a Retry with the reason and the headers' wait hint.
func retry(d Decision, h http.Header, reason Reason) Decision {
	d.Action, d.Reason = Retry, reason
	d.RetryAfter, _ = waitHint(h)
	return d
}

// deadLetter returns d as a DeadLetter with the reason and alert.
func deadLetter(d Decision, reason Reason, alert bool) Decision {
	d.Action, d.Reason, d.Alert = DeadLetter, reason, alert
	return d
}

// isBlocked reports whether a 403 is Cloudflare's block page rather than Pipedrive's JSON: an
// HTML page, or Cloudflare's cf-mitigated header.
func isBlocked(h http.Header, p parsedBody) bool {
	return p.html || headerValue(h, "Cf-Mitigated") != ""
}

// isBasicChallenge reports whether WWW-Authenticate asks for HTTP Basic, the client
// authentication of the token endpoint.
func isBasicChallenge(h http.Header) bool {
	v := trimSpace(headerValue(h, "Www-Authenticate"))
	return len(v) >= 5 && containsFold(v[:5], "basic")
}
