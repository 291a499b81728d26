package pderrors_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// Constructors for expected decisions; Status is filled from the row.
func succeed() pderrors.Decision {
	return pderrors.Decision{Action: pderrors.Succeed, Reason: pderrors.ReasonOK}
}

func dead(r pderrors.Reason, alert bool, msg string) pderrors.Decision {
	return pderrors.Decision{Action: pderrors.DeadLetter, Reason: r, Alert: alert, Message: msg}
}

func retryIn(r pderrors.Reason, after time.Duration, alert bool, msg string) pderrors.Decision {
	return pderrors.Decision{Action: pderrors.Retry, Reason: r, RetryAfter: after, Alert: alert, Message: msg}
}

func reauth(r pderrors.Reason, alert bool, msg string) pderrors.Decision {
	return pderrors.Decision{Action: pderrors.Reauthorize, Reason: r, Alert: alert, Message: msg}
}

func pauseFor(r pderrors.Reason, after time.Duration, msg string) pderrors.Decision {
	return pderrors.Decision{Action: pderrors.Pause, Reason: r, RetryAfter: after, Alert: true, Message: msg}
}

func refresh(msg string) pderrors.Decision {
	return pderrors.Decision{Action: pderrors.RefreshAndRetry, Reason: pderrors.ReasonAccessTokenInvalid, Message: msg}
}

// The exact messages of pipedrive-status-codes.md.
const (
	msgMissingGrantType     = "Missing parameter: `grant_type`"
	msgUnsupportedGrantType = "Unsupported grant type: `grant_type` is invalid"
	msgAuthCodeInvalid      = "Invalid grant: `authorization_code` is invalid"
	msgAuthCodeExpired      = "Invalid grant: `authorization_code` has expired"
	msgRefreshInvalid       = "Invalid grant: `refresh_token` is invalid"
	msgAPITokenInvalid      = "Invalid grant: `api_token` is invalid"
	msgNoClientCredentials  = "Invalid client: cannot retrieve client credentials"
	msgClientInvalid        = "Invalid client: client is invalid"
	msgRedirectNotURI       = "Invalid request: `redirect_uri` is not a valid URI"
	msgRedirectInvalid      = "Invalid request: `redirect_uri` is invalid"
	msgContentType          = "Invalid request: content must be `application/x-www-form-urlencoded`"
	msgNotInstallable       = "App cannot be installed for requested company"
	msgInternal             = "Internal Server Error"
	msgWhoops               = "Whoops! Something broke in our servers and we cannot serve you this page."

	msgMalformedAuth   = "Invalid request: malformed authorization header"
	msgAccessInvalid   = "Invalid token: `access_token` is invalid"
	msgScopeMismatch   = "Scope and URL mismatch"
	msgGone            = "Old resource permanently unavailable"
	msgWebhookLimit    = "Webhooks limit reached"
	msgOverLimit       = "Request over limit"
	msgDailyBudget     = "daily request budget exceeded"
	msgValidationError = "Parameter 'title' is required and cannot be empty"
)

// oauthCases: one row per line of the OAuth table of pipedrive-status-codes.md, then variants
// of the messages and malformed responses.
func oauthCases() []classifyCase {
	return []classifyCase{
		// The OAuth table, row by row.
		{"ref 200 /oauth/token", 200, hdr("Content-Type", "application/json"), tokenJSON, succeed()},
		{"ref 400 missing grant_type", 400, nil, oauthMsg(msgMissingGrantType), dead(pderrors.ReasonMissingGrantType, true, msgMissingGrantType)},
		{"ref 400 unsupported grant_type", 400, nil, oauthMsg(msgUnsupportedGrantType), dead(pderrors.ReasonUnsupportedGrantType, true, msgUnsupportedGrantType)},
		{"ref 400 authorization_code invalid", 400, nil, oauthMsg(msgAuthCodeInvalid), reauth(pderrors.ReasonAuthCodeInvalid, false, msgAuthCodeInvalid)},
		{"ref 400 authorization_code expired", 400, nil, oauthMsg(msgAuthCodeExpired), reauth(pderrors.ReasonAuthCodeExpired, false, msgAuthCodeExpired)},
		{"ref 400 refresh_token invalid", 400, nil, oauthMsg(msgRefreshInvalid), reauth(pderrors.ReasonRefreshTokenInvalid, true, msgRefreshInvalid)},
		{"ref 400 api_token invalid", 400, nil, oauthMsg(msgAPITokenInvalid), reauth(pderrors.ReasonAPITokenInvalid, false, msgAPITokenInvalid)},
		{"ref 400 cannot retrieve client credentials", 400, nil, oauthMsg(msgNoClientCredentials), dead(pderrors.ReasonClientCredentialsMissing, true, msgNoClientCredentials)},
		{"ref 400 client is invalid", 400, nil, oauthMsg(msgClientInvalid), dead(pderrors.ReasonClientInvalid, true, msgClientInvalid)},
		{"ref 400 redirect_uri not a valid URI", 400, nil, oauthMsg(msgRedirectNotURI), dead(pderrors.ReasonRedirectURINotValid, true, msgRedirectNotURI)},
		{"ref 400 redirect_uri invalid", 400, nil, oauthMsg(msgRedirectInvalid), dead(pderrors.ReasonRedirectURIMismatch, true, msgRedirectInvalid)},
		{"ref 400 wrong content type", 400, nil, oauthMsg(msgContentType), dead(pderrors.ReasonWrongContentType, true, msgContentType)},
		{"ref 400 /oauth/authorize app cannot be installed", 400, nil, oauthMsg(msgNotInstallable), dead(pderrors.ReasonAppNotInstallable, false, msgNotInstallable)},
		{"ref 500", 500, nil, oauthMsg(msgInternal), retryIn(pderrors.ReasonServerError, 0, false, msgInternal)},
		{"ref 503 /oauth/authorize maintenance", 503, nil, oauthMsg(msgWhoops), retryIn(pderrors.ReasonMaintenance, 0, false, msgWhoops)},

		// Message variants.
		{"refresh_token without backticks", 400, nil, oauthMsg("Invalid grant: refresh_token is invalid"), reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh_token is invalid")},
		{"refresh token spelled with a space (facts shape)", 400, nil, oauthErr("Invalid grant: refresh token is invalid", "invalid_grant"), reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh token is invalid")},
		{"refresh token in upper case", 400, nil, oauthMsg("INVALID GRANT: `REFRESH_TOKEN` IS INVALID"), reauth(pderrors.ReasonRefreshTokenInvalid, true, "INVALID GRANT: `REFRESH_TOKEN` IS INVALID")},
		{"refresh token in curly quotes", 400, nil, oauthMsg("Invalid grant: ‘refresh_token’ is invalid"), reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: ‘refresh_token’ is invalid")},
		{"refresh token expired", 400, nil, oauthErr("Invalid grant: refresh token has expired", "invalid_grant"), reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh token has expired")},
		{"refresh token answered with 401", 401, nil, oauthErr(msgRefreshInvalid, "invalid_grant"), reauth(pderrors.ReasonRefreshTokenInvalid, true, msgRefreshInvalid)},
		{"authorization code expired inside longer text", 400, nil, oauthMsg("oauth: " + msgAuthCodeExpired + " (issued more than 5 minutes ago)"), reauth(pderrors.ReasonAuthCodeExpired, false, "oauth: "+msgAuthCodeExpired+" (issued more than 5 minutes ago)")},
		{"authorization code with surrounding white space", 400, nil, oauthMsg("  \n" + msgAuthCodeInvalid + "\t "), reauth(pderrors.ReasonAuthCodeInvalid, false, msgAuthCodeInvalid)},
		{"success as a string", 400, nil, `{"success":"false","message":"Invalid client: client is invalid","error":"invalid_client"}`, dead(pderrors.ReasonClientInvalid, true, msgClientInvalid)},
		{"error key absent", 400, nil, `{"success":false,"message":"Invalid grant: refresh token is invalid"}`, reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh token is invalid")},
		{"error_description shape", 400, nil, `{"error":"invalid_grant","error_description":"Invalid grant: refresh token is invalid"}`, reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh token is invalid")},
		{"error_description missing grant_type", 400, nil, `{"error":"invalid_request","error_description":"Missing parameter: grant_type"}`, dead(pderrors.ReasonMissingGrantType, true, "Missing parameter: grant_type")},
		{"RFC code unsupported_grant_type", 400, nil, `{"error":"unsupported_grant_type"}`, dead(pderrors.ReasonUnsupportedGrantType, true, "unsupported_grant_type")},
		{"RFC code invalid_client", 401, nil, `{"error":"invalid_client"}`, dead(pderrors.ReasonClientInvalid, true, "invalid_client")},
		{"RFC code redirect_uri_mismatch", 400, nil, `{"error":"redirect_uri_mismatch"}`, dead(pderrors.ReasonRedirectURIMismatch, true, "redirect_uri_mismatch")},
		{"redirect_uri does not match", 400, nil, oauthMsg("Invalid request: redirect_uri does not match"), dead(pderrors.ReasonRedirectURIMismatch, true, "Invalid request: redirect_uri does not match")},
		{"redirect_uri missing", 400, nil, oauthMsg("Invalid request: missing redirect_uri"), dead(pderrors.ReasonRedirectURINotValid, true, "Invalid request: missing redirect_uri")},
		{"content type named by the MIME type only", 400, nil, oauthMsg("Content-Type must be application/x-www-form-urlencoded"), dead(pderrors.ReasonWrongContentType, true, "Content-Type must be application/x-www-form-urlencoded")},
		{"invalid_grant with an unknown message", 400, nil, oauthErr("Invalid grant: something new", "invalid_grant"), reauth(pderrors.ReasonInvalidGrant, true, "Invalid grant: something new")},
		{"invalid_grant code only", 400, nil, `{"success":false,"error":"invalid_grant"}`, reauth(pderrors.ReasonInvalidGrant, true, "invalid_grant")},
		{"error as an object keeps the message", 400, nil, `{"message":"Invalid grant: refresh token is invalid","error":{"code":"invalid_grant"}}`, reauth(pderrors.ReasonRefreshTokenInvalid, true, "Invalid grant: refresh token is invalid")},
		{"JSON after a byte order mark", 400, nil, "\uFEFF" + oauthMsg(msgClientInvalid), dead(pderrors.ReasonClientInvalid, true, msgClientInvalid)},

		// 401 for a wrong client secret, as captured.
		{"401 wrong secret with www-authenticate", 401, hdr("WWW-Authenticate", `Basic realm="Service"`), oauthMsg(msgClientInvalid), dead(pderrors.ReasonClientInvalid, true, msgClientInvalid)},
		{"401 www-authenticate Basic without message", 401, hdr("WWW-Authenticate", `Basic realm="Service"`), "", dead(pderrors.ReasonClientInvalid, true, "")},
		{"401 www-authenticate Basic with success only", 401, hdr("WWW-Authenticate", `basic realm="Service"`), `{"success":false}`, dead(pderrors.ReasonClientInvalid, true, "")},
		{"401 www-authenticate Bearer without message", 401, hdr("WWW-Authenticate", `Bearer`), "", dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"401 without header or message", 401, nil, "", dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"401 www-authenticate Basic with unknown message", 401, hdr("WWW-Authenticate", `Basic realm="Service"`), oauthMsg("Something else"), dead(pderrors.ReasonOAuthBadRequest, true, "Something else")},

		// Unknown or malformed bodies fall back on the status.
		{"400 unknown message", 400, nil, oauthMsg("Invalid request: something we never saw"), dead(pderrors.ReasonOAuthBadRequest, true, "Invalid request: something we never saw")},
		{"400 empty body", 400, nil, "", dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 HTML body", 400, hdr("Content-Type", "text/html"), "<html><body>Invalid grant: refresh token is invalid</body></html>", dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 truncated JSON", 400, nil, `{"success":false,"message":"Invalid grant: refresh token is inv`, dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 JSON array", 400, nil, `[{"message":"Invalid grant: refresh token is invalid"}]`, dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 JSON string", 400, nil, `"Invalid grant: refresh token is invalid"`, dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 JSON null", 400, nil, `null`, dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"400 plain text", 400, hdr("Content-Type", "text/plain"), "Invalid grant: refresh token is invalid", dead(pderrors.ReasonOAuthBadRequest, true, "")},
		{"404 unknown endpoint", 404, nil, oauthMsg("Not found"), dead(pderrors.ReasonClientError, true, "Not found")},
		{"405 method", 405, nil, "", dead(pderrors.ReasonClientError, true, "")},
		{"403 JSON unknown", 403, nil, oauthMsg("Forbidden"), dead(pderrors.ReasonClientError, true, "Forbidden")},
		{"403 JSON with a documented message", 403, nil, oauthMsg(msgNotInstallable), dead(pderrors.ReasonAppNotInstallable, false, msgNotInstallable)},

		// Edge, rate and server answers.
		{"403 Cloudflare block page with Retry-After", 403, hdr("Content-Type", "text/html; charset=UTF-8", "Retry-After", "30"), cloudflareBlock, retryIn(pderrors.ReasonBlocked, 30*time.Second, false, "")},
		{"429 with Retry-After", 429, hdr("Retry-After", "2"), oauthMsg(msgOverLimit), retryIn(pderrors.ReasonRateLimited, 2*time.Second, false, msgOverLimit)},
		{"429 daily budget", 429, hdr("Retry-After", "7200"), oauthMsg(msgDailyBudget), retryIn(pderrors.ReasonDailyBudget, 2*time.Hour, true, msgDailyBudget)},
		{"501", 501, nil, "", dead(pderrors.ReasonNotImplemented, false, "")},
		{"502 HTML", 502, hdr("Content-Type", "text/html"), "<html>Bad gateway</html>", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"504", 504, nil, "", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"503 maintenance page", 503, hdr("Content-Type", "text/html"), maintenancePage, retryIn(pderrors.ReasonMaintenance, 0, false, "")},
		{"503 maintenance with Retry-After", 503, hdr("Retry-After", "120"), oauthMsg("whoops! something broke"), retryIn(pderrors.ReasonMaintenance, 2*time.Minute, false, "whoops! something broke")},
		{"503 other", 503, nil, oauthMsg("Service Unavailable"), retryIn(pderrors.ReasonUnavailable, 0, false, "Service Unavailable")},
		{"503 other page", 503, nil, "<html>Service Unavailable</html>", retryIn(pderrors.ReasonUnavailable, 0, false, "")},
		{"503 empty", 503, nil, "", retryIn(pderrors.ReasonUnavailable, 0, false, "")},
		{"201", 201, nil, "", succeed()},
		{"302 redirect", 302, hdr("Location", "https://example.com"), "", dead(pderrors.ReasonUnexpected, false, "")},
		{"100", 100, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"status 0", 0, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"status 600", 600, nil, oauthMsg(msgRefreshInvalid), dead(pderrors.ReasonUnexpected, false, "")},
		{"negative status", -400, nil, oauthMsg(msgRefreshInvalid), dead(pderrors.ReasonUnexpected, false, "")},
	}
}

// apiCases: one row per line of the API table of pipedrive-status-codes.md, then variants and
// malformed responses, including every Retry-After shape.
func apiCases() []classifyCase {
	return []classifyCase{
		// The API table, row by row.
		{"ref 200", 200, hdr("Content-Type", "application/json"), `{"success":true,"data":{"id":5206648}}`, succeed()},
		{"ref 201 created", 201, nil, `{"success":true,"data":{"id":1}}`, succeed()},
		{"ref 204 no content", 204, nil, "", succeed()},
		{"ref 400 malformed authorization header", 400, nil, apiErr(msgMalformedAuth), dead(pderrors.ReasonMalformedAuthHeader, true, msgMalformedAuth)},
		{"ref 400 invalid or missing data", 400, nil, apiErr(msgValidationError), dead(pderrors.ReasonBadRequest, false, msgValidationError)},
		{"ref 401 access_token invalid", 401, nil, apiErr(msgAccessInvalid), refresh(msgAccessInvalid)},
		{"ref 403 scope and URL mismatch", 403, nil, apiErr(msgScopeMismatch), dead(pderrors.ReasonScopeMismatch, true, msgScopeMismatch)},
		{"ref 404 resource not found", 404, nil, apiErr("Deal not found"), dead(pderrors.ReasonNotFound, false, "Deal not found")},
		{"ref 410 gone", 410, nil, apiErr(msgGone), dead(pderrors.ReasonGone, true, msgGone)},
		{"ref 422 webhooks limit", 422, nil, apiErr(msgWebhookLimit), dead(pderrors.ReasonWebhookLimit, true, msgWebhookLimit)},
		{"ref 429 request over limit", 429, nil, apiErr(msgOverLimit), retryIn(pderrors.ReasonRateLimited, 0, false, msgOverLimit)},
		{"ref 500", 500, nil, apiErr(msgInternal), retryIn(pderrors.ReasonServerError, 0, false, msgInternal)},

		// Variants of the documented answers.
		{"2xx with an error-looking body", 200, nil, apiErr(msgScopeMismatch), succeed()},
		{"400 malformed header in longer text, upper case", 400, nil, apiErr("ERROR: INVALID REQUEST: MALFORMED AUTHORIZATION HEADER."), dead(pderrors.ReasonMalformedAuthHeader, true, "ERROR: INVALID REQUEST: MALFORMED AUTHORIZATION HEADER.")},
		{"400 validation errors shape", 400, nil, `{"status":"error","success":false,"errors":{"subscription_url":["invalid or non-reachable URL"]}}`, dead(pderrors.ReasonBadRequest, false, "")},
		{"401 empty body", 401, nil, "", refresh("")},
		{"401 HTML body", 401, hdr("Content-Type", "text/html"), "<html>Unauthorized</html>", refresh("")},
		{"401 without backticks", 401, nil, apiErr("Invalid token: access_token is invalid"), refresh("Invalid token: access_token is invalid")},
		{"403 scope mismatch with errorCode", 403, nil, `{"success":false,"error":"Scope and URL mismatch","errorCode":403,"error_info":"Please check developers.pipedrive.com","data":null,"additional_data":null}`, dead(pderrors.ReasonScopeMismatch, true, msgScopeMismatch)},
		{"403 scope mismatch with code", 403, nil, `{"success":false,"error":"scope and url mismatch","code":"forbidden"}`, dead(pderrors.ReasonScopeMismatch, true, "scope and url mismatch")},
		{"403 scope mismatch in message", 403, nil, `{"success":false,"message":"Scope and URL mismatch"}`, dead(pderrors.ReasonScopeMismatch, true, msgScopeMismatch)},
		{"403 other JSON", 403, nil, apiErr("You do not have permissions to do this"), dead(pderrors.ReasonForbidden, false, "You do not have permissions to do this")},
		{"403 empty body", 403, nil, "", dead(pderrors.ReasonForbidden, false, "")},
		{"403 truncated JSON", 403, nil, `{"success":false,"error":"Scope and URL mism`, dead(pderrors.ReasonForbidden, false, "")},
		{"403 Cloudflare page, no hint", 403, hdr("Content-Type", "text/html; charset=UTF-8"), cloudflareBlock, retryIn(pderrors.ReasonBlocked, 0, false, "")},
		{"403 Cloudflare page with Retry-After", 403, hdr("Retry-After", "60"), cloudflareBlock, retryIn(pderrors.ReasonBlocked, time.Minute, false, "")},
		{"403 HTML page mentioning scope", 403, nil, "<html><body>Scope and URL mismatch</body></html>", retryIn(pderrors.ReasonBlocked, 0, false, "")},
		{"403 HTML by Content-Type, empty body", 403, hdr("Content-Type", "text/html"), "", retryIn(pderrors.ReasonBlocked, 0, false, "")},
		{"403 cf-mitigated challenge", 403, hdr("Cf-Mitigated", "challenge", "X-Ratelimit-Reset", "2"), "", retryIn(pderrors.ReasonBlocked, 2*time.Second, false, "")},
		{"404 literal %Resource", 404, nil, apiErr("`%Resource` not found"), dead(pderrors.ReasonNotFound, false, "`%Resource` not found")},
		{"404 HTML", 404, nil, "<html>Not Found</html>", dead(pderrors.ReasonNotFound, false, "")},
		{"410 empty body", 410, nil, "", dead(pderrors.ReasonGone, true, "")},
		{"422 webhook limit lower case in longer text", 422, nil, apiErr("webhooks limit reached for this user (40)"), dead(pderrors.ReasonWebhookLimit, true, "webhooks limit reached for this user (40)")},
		{"422 other", 422, nil, apiErr("Stage does not belong to pipeline"), dead(pderrors.ReasonUnprocessable, false, "Stage does not belong to pipeline")},
		{"402 account not open", 402, nil, apiErr("Company account is not open"), pauseFor(pderrors.ReasonPaymentRequired, 0, "Company account is not open")},
		{"402 empty body", 402, nil, "", pauseFor(pderrors.ReasonPaymentRequired, 0, "")},
		{"402 ignores x-ratelimit-reset", 402, hdr("X-RateLimit-Reset", "2"), apiErr("Payment required"), pauseFor(pderrors.ReasonPaymentRequired, 0, "Payment required")},
		{"403 feature capping code", 403, nil, apiErrCode("Open deals limit reached", "feature_capping_deals_limit"), pauseFor(pderrors.ReasonFeatureCapped, 0, "Open deals limit reached")},
		{"403 feature capping errorCode", 403, nil, `{"success":false,"error":"Custom fields limit reached","errorCode":"feature_capping_custom_fields_limit"}`, pauseFor(pderrors.ReasonFeatureCapped, 0, "Custom fields limit reached")},
		{"403 feature capping code in upper case", 403, nil, apiErrCode("Limit reached", "FEATURE_CAPPING_USERS"), pauseFor(pderrors.ReasonFeatureCapped, 0, "Limit reached")},
		{"403 other code is forbidden", 403, nil, apiErrCode("No access", "forbidden"), dead(pderrors.ReasonForbidden, false, "No access")},
		{"403 code as a number is forbidden", 403, nil, `{"success":false,"error":"No access","code":403}`, dead(pderrors.ReasonForbidden, false, "No access")},
		{"403 escaped code decoding shorter than the prefix", 403, nil, `{"success":false,"error":"x","code":"\u0066\u0065\u0061\u0074ure"}`, dead(pderrors.ReasonForbidden, false, "x")},
		{"403 code feature_capping alone is too short", 403, nil, apiErrCode("x", "feature_cap"), dead(pderrors.ReasonForbidden, false, "x")},
		{"403 HTML page wins over a code", 403, hdr("Content-Type", "text/html"), cloudflareBlock, retryIn(pderrors.ReasonBlocked, 0, false, "")},
		{"415 feature not enabled", 415, nil, apiErr("Feature not enabled"), pauseFor(pderrors.ReasonFeatureNotEnabled, 0, "Feature not enabled")},
		{"415 with Retry-After", 415, hdr("Retry-After", "60"), "", pauseFor(pderrors.ReasonFeatureNotEnabled, time.Minute, "")},
		{"400 v2 schema validation", 400, nil, apiErrCode("Validation failed: title: Parameter is required", "ERR_SCHEMA_VALIDATION_FAILED"), dead(pderrors.ReasonBadRequest, false, "Validation failed: title: Parameter is required")},
		{"401 live gateway shape", 401, hdr("X-401-By-Gw", "true"), gatewayUnauthorized, refresh("unauthorized access")},
		{"401 live gateway without body", 401, hdr("X-401-By-Gw", "true"), "", refresh("")},
		{"409 other 4xx", 409, nil, "", dead(pderrors.ReasonClientError, false, "")},
		{"499 other 4xx", 499, nil, "", dead(pderrors.ReasonClientError, false, "")},
		{"501", 501, nil, "", dead(pderrors.ReasonNotImplemented, false, "")},
		{"502 Cloudflare page", 502, hdr("Content-Type", "text/html"), "<html>502 Bad Gateway</html>", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"503", 503, nil, "", retryIn(pderrors.ReasonUnavailable, 0, false, "")},
		{"503 with Retry-After", 503, hdr("Retry-After", "10"), "", retryIn(pderrors.ReasonUnavailable, 10*time.Second, false, "")},
		{"503 whoops is not maintenance on the API", 503, nil, apiErr(msgWhoops), retryIn(pderrors.ReasonUnavailable, 0, false, msgWhoops)},
		{"504", 504, nil, "", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"520 Cloudflare unknown", 520, nil, "", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"599", 599, nil, "", retryIn(pderrors.ReasonServerError, 0, false, "")},
		{"101", 101, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"304", 304, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"status 0", 0, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"status 1000", 1000, nil, "", dead(pderrors.ReasonUnexpected, false, "")},
		{"negative status", -1, nil, "", dead(pderrors.ReasonUnexpected, false, "")},

		// 429 wait hints.
		{"429 Retry-After seconds", 429, hdr("Retry-After", "7"), apiErr(msgOverLimit), retryIn(pderrors.ReasonRateLimited, 7*time.Second, false, msgOverLimit)},
		{"429 Retry-After with spaces", 429, hdr("Retry-After", " 7 "), "", retryIn(pderrors.ReasonRateLimited, 7*time.Second, false, "")},
		{"429 Retry-After fraction", 429, hdr("Retry-After", "1.5"), "", retryIn(pderrors.ReasonRateLimited, seconds(1.5), false, "")},
		{"429 Retry-After 0", 429, hdr("Retry-After", "0"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 x-ratelimit-reset", 429, hdr("X-RateLimit-Limit", "80", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2"), apiErr(msgOverLimit), retryIn(pderrors.ReasonRateLimited, 2*time.Second, false, msgOverLimit)},
		{"429 both headers, Retry-After larger", 429, hdr("Retry-After", "7", "X-RateLimit-Reset", "2"), "", retryIn(pderrors.ReasonRateLimited, 7*time.Second, false, "")},
		{"429 both headers, reset larger", 429, hdr("Retry-After", "1", "X-RateLimit-Reset", "5"), "", retryIn(pderrors.ReasonRateLimited, 5*time.Second, false, "")},
		{"429 lower-case keys built by hand", 429, http.Header{"retry-after": {"3"}, "x-ratelimit-reset": {"4"}}, "", retryIn(pderrors.ReasonRateLimited, 4*time.Second, false, "")},
		{"429 garbage Retry-After", 429, hdr("Retry-After", "soon"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 garbage Retry-After, usable reset", 429, hdr("Retry-After", "7s", "X-RateLimit-Reset", "3"), "", retryIn(pderrors.ReasonRateLimited, 3*time.Second, false, "")},
		{"429 garbage reset, usable Retry-After", 429, hdr("Retry-After", "3", "X-RateLimit-Reset", "2e3"), "", retryIn(pderrors.ReasonRateLimited, 3*time.Second, false, "")},
		{"429 negative Retry-After", 429, hdr("Retry-After", "-5"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 negative reset", 429, hdr("X-RateLimit-Reset", "-5"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 empty Retry-After", 429, hdr("Retry-After", ""), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 HTTP-date with Date header", 429, hdr("Date", respDate, "Retry-After", date90s), "", retryIn(pderrors.ReasonRateLimited, 90*time.Second, false, "")},
		{"429 RFC 850 HTTP-date with Date header", 429, hdr("Date", respDate, "Retry-After", date90sRFC), "", retryIn(pderrors.ReasonRateLimited, 90*time.Second, false, "")},
		{"429 past HTTP-date", 429, hdr("Date", respDate, "Retry-After", datePast), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 HTTP-date without Date header", 429, hdr("Retry-After", date90s), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 HTTP-date with garbage Date header", 429, hdr("Date", "yesterday", "Retry-After", date90s), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 garbage with Date header", 429, hdr("Date", respDate, "Retry-After", "Wed, 99 Nov"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 Retry-After exactly one hour", 429, hdr("Retry-After", "3600"), apiErr(msgOverLimit), retryIn(pderrors.ReasonRateLimited, time.Hour, false, msgOverLimit)},
		{"429 Retry-After above one hour", 429, hdr("Retry-After", "3601"), apiErr(msgOverLimit), pauseFor(pderrors.ReasonDailyBudget, 3601*time.Second, msgOverLimit)},
		{"429 daily budget message, burst reset 2 ignored", 429, hdr("X-RateLimit-Limit", "80", "X-RateLimit-Remaining", "79", "X-RateLimit-Reset", "2"), apiErr(msgDailyBudget), pauseFor(pderrors.ReasonDailyBudget, 0, msgDailyBudget)},
		{"429 daily budget message, upper case inside text", 429, nil, apiErr("Error: DAILY REQUEST BUDGET EXCEEDED for company"), pauseFor(pderrors.ReasonDailyBudget, 0, "Error: DAILY REQUEST BUDGET EXCEEDED for company")},
		{"429 daily budget message with Retry-After", 429, hdr("Retry-After", "7200", "X-RateLimit-Reset", "2"), apiErr(msgDailyBudget), pauseFor(pderrors.ReasonDailyBudget, 2*time.Hour, msgDailyBudget)},
		{"429 x-daily-ratelimit-token-remaining 0", 429, hdr("X-Daily-Ratelimit-Token-Limit", "30000", "X-Daily-Ratelimit-Token-Remaining", "0", "X-RateLimit-Reset", "2"), apiErr(msgOverLimit), pauseFor(pderrors.ReasonDailyBudget, 0, msgOverLimit)},
		{"429 x-daily-ratelimit-token-remaining 5 is the burst", 429, hdr("X-Daily-Ratelimit-Token-Remaining", "5", "X-RateLimit-Reset", "2"), apiErr(msgOverLimit), retryIn(pderrors.ReasonRateLimited, 2*time.Second, false, msgOverLimit)},
		{"429 x-daily-ratelimit-token-remaining garbage", 429, hdr("X-Daily-Ratelimit-Token-Remaining", "none"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 x-daily-requests-left 0 is not the budget", 429, hdr("X-Daily-Requests-Left", "0", "X-RateLimit-Reset", "1"), "", retryIn(pderrors.ReasonRateLimited, time.Second, false, "")},
		{"429 x-daily-requests-left 12", 429, hdr("X-Daily-Requests-Left", "12"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 x-daily-requests-left garbage", 429, hdr("X-Daily-Requests-Left", "none"), "", retryIn(pderrors.ReasonRateLimited, 0, false, "")},
		{"429 huge Retry-After capped", 429, hdr("Retry-After", "99999999999999999999999999"), "", pauseFor(pderrors.ReasonDailyBudget, pderrors.MaxRetryAfter, "")},
		{"429 huge reset capped", 429, hdr("X-RateLimit-Reset", "1764151200"), "", retryIn(pderrors.ReasonRateLimited, pderrors.MaxRetryAfter, false, "")},
		{"429 HTTP-date a year ahead capped", 429, hdr("Date", respDate, "Retry-After", "Thu, 26 Nov 2026 10:00:00 GMT"), "", pauseFor(pderrors.ReasonDailyBudget, pderrors.MaxRetryAfter, "")},
		{"429 HTML body", 429, hdr("Retry-After", "5", "Content-Type", "text/html"), "<html>Too Many Requests</html>", retryIn(pderrors.ReasonRateLimited, 5*time.Second, false, "")},
		{"429 truncated JSON", 429, hdr("Retry-After", "5"), `{"success":false,"error":"daily request bud`, retryIn(pderrors.ReasonRateLimited, 5*time.Second, false, "")},
		{"2xx ignores 429 headers", 200, hdr("Retry-After", "7"), "", succeed()},
		{"404 ignores Retry-After", 404, hdr("Retry-After", "7"), "", dead(pderrors.ReasonNotFound, false, "")},
	}
}

func TestClassifyOAuth(t *testing.T) {
	for _, c := range oauthCases() {
		t.Run(c.name, func(t *testing.T) {
			got := pderrors.ClassifyOAuth(c.status, c.header, []byte(c.body))
			checkDecision(t, "ClassifyOAuth", c, got)
			checkInvariants(t, "ClassifyOAuth", c.status, got)
		})
	}
}

func TestClassifyAPI(t *testing.T) {
	for _, c := range apiCases() {
		t.Run(c.name, func(t *testing.T) {
			got := pderrors.ClassifyAPI(c.status, c.header, []byte(c.body))
			checkDecision(t, "ClassifyAPI", c, got)
			checkInvariants(t, "ClassifyAPI", c.status, got)
		})
	}
}

// TestClassifyNilBody checks that nil and empty bodies and headers decide as the status alone.
func TestClassifyNilBody(t *testing.T) {
	tests := []struct {
		status int
		api    pderrors.Reason
		oauth  pderrors.Reason
	}{
		{200, pderrors.ReasonOK, pderrors.ReasonOK},
		{400, pderrors.ReasonBadRequest, pderrors.ReasonOAuthBadRequest},
		{401, pderrors.ReasonAccessTokenInvalid, pderrors.ReasonOAuthBadRequest},
		{403, pderrors.ReasonForbidden, pderrors.ReasonClientError},
		{429, pderrors.ReasonRateLimited, pderrors.ReasonRateLimited},
		{500, pderrors.ReasonServerError, pderrors.ReasonServerError},
		{503, pderrors.ReasonUnavailable, pderrors.ReasonUnavailable},
	}
	for _, tt := range tests {
		for _, h := range []http.Header{nil, {}} {
			for _, body := range [][]byte{nil, {}, []byte(" \n")} {
				if got := pderrors.ClassifyAPI(tt.status, h, body); got.Reason != tt.api {
					t.Errorf("ClassifyAPI(%d, %v, %q).Reason = %q, want %q", tt.status, h, body, got.Reason, tt.api)
				}
				if got := pderrors.ClassifyOAuth(tt.status, h, body); got.Reason != tt.oauth {
					t.Errorf("ClassifyOAuth(%d, %v, %q).Reason = %q, want %q", tt.status, h, body, got.Reason, tt.oauth)
				}
			}
		}
	}
}

// TestClassifyMessage checks Decision.Message: the field chosen, and that it is safe to log.
func TestClassifyMessage(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name string
		body string
		want string
	}{
		{"message first", `{"message":"m","error_description":"d","error":"e"}`, "m"},
		{"error_description second", `{"message":" ","error_description":"d","error":"e"}`, "d"},
		{"error last", `{"error":"e"}`, "e"},
		{"none", `{"success":false}`, ""},
		{"control characters and new lines collapsed", `{"message":"a\u0000b\r\n\tc\u001b[31m  d"}`, "a b c [31m d"},
		{"long message cut to 200 runes", `{"message":"` + long + `"}`, strings.Repeat("é", 199) + "…"},
		{"very long message cut", `{"message":"` + strings.Repeat("ab ", 5000) + `"}`, strings.Repeat("ab ", 66) + "a…"},
		{"exactly 200 runes kept", `{"message":"` + long[:400] + `"}`, long[:400]},
		{"token-like word redacted", `{"message":"Invalid grant: refresh token 1:1:9f8e7d6c5b4a39281706fedcba is invalid"}`, "Invalid grant: refresh token [redacted] is invalid"},
		{"access token redacted", `{"message":"token v1u:AQIBAHj+LzTNK2yuuuaLqifzhWb9crUNKTpk4FlQ9rjnXqp4Ijzjx"}`, "token [redacted]"},
		{"double-quoted token redacted", `{"message":"refresh token \"1:1:9f8e7d6c5b4a39281706fedcba\" is invalid"}`, `refresh token "[redacted]" is invalid`},
		{"single-quoted token redacted", `{"message":"token 'v1u:AQIBAHj+LzTNK2yuuuaLqifzhWb9crUN' rejected"}`, "token '[redacted]' rejected"},
		{"bracketed token redacted", `{"message":"bad token [v1u:AQIBAHj+LzTNK2yuuuaLqifzhWb9crUN], (1:1:9f8e7d6c5b4a39281706fedcba)."}`, "bad token [[redacted]], ([redacted])."},
		{"backquoted token redacted", "{\"message\":\"Invalid grant: refresh token `1:1:9f8e7d6c5b4a39281706fedcba` is invalid\"}", "Invalid grant: refresh token `[redacted]` is invalid"},
		{"quoted ordinary word kept", `{"message":"field \"subscription_url\" is invalid"}`, `field "subscription_url" is invalid`},
		{"long words without digits kept", `{"message":"see https://developers.pipedrive.com/docs"}`, "see https://developers.pipedrive.com/docs"},
		{"invalid UTF-8 dropped", "{\"message\":\"bad \xff\xfe byte\"}", "bad byte"},
		{"HTML has no message", `<html><body><p>Invalid grant</p></body></html>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, classify := range []struct {
				name string
				f    func(int, http.Header, []byte) pderrors.Decision
			}{{"ClassifyAPI", pderrors.ClassifyAPI}, {"ClassifyOAuth", pderrors.ClassifyOAuth}} {
				got := classify.f(400, nil, []byte(tt.body))
				if got.Message != tt.want {
					t.Errorf("%s(400, nil, %q).Message = %q, want %q", classify.name, tt.body, got.Message, tt.want)
				}
				checkInvariants(t, classify.name, 400, got)
			}
		})
	}
}

// TestClassifyLargeBody checks that a body beyond the decode limit is classified by status alone.
func TestClassifyLargeBody(t *testing.T) {
	body := `{"message":"Invalid grant: refresh token is invalid","pad":"` + strings.Repeat("x", 70<<10) + `"}`
	got := pderrors.ClassifyOAuth(400, nil, []byte(body))
	if got.Reason != pderrors.ReasonOAuthBadRequest || got.Message != "" {
		t.Errorf("ClassifyOAuth(400, nil, <70 KiB body>) = %v/%q, want %v with no message", got.Reason, got.Message, pderrors.ReasonOAuthBadRequest)
	}
	small := `{"message":"Invalid grant: refresh token is invalid","pad":"` + strings.Repeat("x", 60<<10) + `"}`
	if got := pderrors.ClassifyOAuth(400, nil, []byte(small)); got.Reason != pderrors.ReasonRefreshTokenInvalid {
		t.Errorf("ClassifyOAuth(400, nil, <60 KiB body>).Reason = %v, want %v", got.Reason, pderrors.ReasonRefreshTokenInvalid)
	}
}

// TestClassifyAPIAllocs: the status-only path runs on every API call and must not allocate.
func TestClassifyAPIAllocs(t *testing.T) {
	for _, status := range []int{200, 204, 400, 401, 403, 404, 410, 422, 429, 500, 501, 502, 503, 504, 302, 0} {
		var d pderrors.Decision
		allocs := testing.AllocsPerRun(100, func() {
			d = pderrors.ClassifyAPI(status, nil, nil)
		})
		if allocs != 0 {
			t.Errorf("ClassifyAPI(%d, nil, nil) allocates %v times per call, want 0", status, allocs)
		}
		if d.Status != status {
			t.Errorf("ClassifyAPI(%d, nil, nil).Status = %d, want %d", status, d.Status, status)
		}
	}
}
