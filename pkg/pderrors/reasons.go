package pderrors

// Reasons for OAuth responses (oauth.pipedrive.com), one per row of Pipedrive's status page.
const (
	ReasonOK                       Reason = "ok"
	ReasonMissingGrantType         Reason = "missing_grant_type"         // 400 Missing parameter: `grant_type`
	ReasonUnsupportedGrantType     Reason = "unsupported_grant_type"     // 400 Unsupported grant type: `grant_type` is invalid
	ReasonAuthCodeInvalid          Reason = "authorization_code_invalid" // 400 Invalid grant: `authorization_code` is invalid
	ReasonAuthCodeExpired          Reason = "authorization_code_expired" // 400 Invalid grant: `authorization_code` has expired
	ReasonRefreshTokenInvalid      Reason = "refresh_token_invalid"      // 400 Invalid grant: `refresh_token` is invalid
	ReasonAPITokenInvalid          Reason = "api_token_invalid"          // 400 Invalid grant: `api_token` is invalid
	ReasonClientCredentialsMissing Reason = "client_credentials_missing" // 400 Invalid client: cannot retrieve client credentials
	ReasonClientInvalid            Reason = "client_invalid"             // 400/401 Invalid client: client is invalid; 401 WWW-Authenticate: Basic, no message
	ReasonRedirectURINotValid      Reason = "redirect_uri_not_valid_uri" // 400 Invalid request: `redirect_uri` is not a valid URI
	ReasonRedirectURIMismatch      Reason = "redirect_uri_mismatch"      // 400 Invalid request: `redirect_uri` is invalid
	ReasonWrongContentType         Reason = "wrong_content_type"         // 400 Invalid request: content must be `application/x-www-form-urlencoded`
	ReasonAppNotInstallable        Reason = "app_not_installable"        // 400 /oauth/authorize: App cannot be installed for requested company
	ReasonMaintenance              Reason = "company_maintenance"        // 503 /oauth/authorize: company database under maintenance
	ReasonInvalidGrant             Reason = "invalid_grant"              // 4xx invalid_grant whose message names no known grant
	ReasonOAuthBadRequest          Reason = "oauth_bad_request"          // 400/401 from the OAuth server with no recognised message
)

// Reasons for API responses ({api_domain}/api/v1|v2/...).
const (
	ReasonMalformedAuthHeader Reason = "malformed_authorization_header" // 400 Invalid request: malformed authorization header
	ReasonBadRequest          Reason = "bad_request"                    // 400 other: invalid or missing data
	ReasonAccessTokenInvalid  Reason = "access_token_invalid"           // 401 Invalid token: `access_token` is invalid
	ReasonScopeMismatch       Reason = "scope_mismatch"                 // 403 Scope and URL mismatch
	ReasonForbidden           Reason = "forbidden"                      // 403 JSON without the scope message
	ReasonBlocked             Reason = "blocked_by_edge"                // 403 HTML page (or cf-mitigated): Cloudflare block after repeated 429s
	ReasonNotFound            Reason = "not_found"                      // 404 %Resource not found
	ReasonGone                Reason = "resource_gone"                  // 410 Old resource permanently unavailable
	ReasonWebhookLimit        Reason = "webhook_limit"                  // 422 Webhooks limit reached
	ReasonUnprocessable       Reason = "unprocessable"                  // 422 other
	ReasonRateLimited         Reason = "rate_limited"                   // 429 Request over limit
	ReasonDailyBudget         Reason = "daily_budget_exceeded"          // 429 "daily request budget exceeded", x-daily-ratelimit-token-remaining 0, or Retry-After > 1 h
	ReasonPaymentRequired     Reason = "payment_required"               // 402 the company account is not open (payment)
	ReasonFeatureCapped       Reason = "feature_capped"                 // 403 with code (or errorCode) feature_capping_*: a plan limit
	ReasonFeatureNotEnabled   Reason = "feature_not_enabled"            // 415 the feature is not enabled for the company
	ReasonNotImplemented      Reason = "not_implemented"                // 501
	ReasonClientError         Reason = "client_error"                   // any other 4xx (OAuth too)
)

// Reasons shared by both classifiers and by DecisionOf.
const (
	ReasonServerError  Reason = "server_error"  // 500, 502, 504 and other 5xx except 501 and 503
	ReasonUnavailable  Reason = "unavailable"   // 503 other than the maintenance page
	ReasonUnexpected   Reason = "unexpected"    // 1xx/3xx or a status outside 100-599
	ReasonTimeout      Reason = "timeout"       // network timeout or context deadline
	ReasonNetwork      Reason = "network"       // connection refused/reset, DNS, EOF
	ReasonCanceled     Reason = "canceled"      // context canceled by the caller
	ReasonUnknownError Reason = "unknown_error" // an error DecisionOf cannot place
)
