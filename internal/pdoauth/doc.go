// Package pdoauth is a client for Pipedrive's OAuth server (https://oauth.pipedrive.com):
// the authorize URL, the three token grants (authorization_code, refresh_token,
// exchange_api_token) and token revocation.
//
// # Errors
//
// Every unsuccessful answer — a non-2xx status, or a 2xx whose body is oversized, not JSON, or
// has no access_token — is returned as a *pderrors.Error whose Decision comes from
// pderrors.ClassifyOAuth (for an unusable 2xx the classifier's verdict is kept when it
// recognises an error body; otherwise the Decision is Retry with Alert and
// pderrors.ReasonUnexpected). The wrapped error is one of this package's sentinels
// (ErrRejected, ErrMissingAccessToken, ErrMalformedResponse, ErrBodyTooLarge,
// ErrUntrustedAPIDomain). Network failures are returned wrapped with %w, unclassified, so
// pderrors.DecisionOf sees the *url.Error, net.Error and context errors underneath (a client
// timeout is a Retry). No error string contains a token, a code, a secret or a response body.
//
// # api_domain
//
// Pipedrive names, on every exchange and refresh, the host that API calls for this user must go
// to, and it may change: Token.APIDomain always carries the latest value, and callers must
// store it. Because the access token is sent there, the value is checked by APIDomainPolicy:
// https to a host under pipedrive.com (exact suffix on the parsed host), port 443 or none, no
// user info, path, query or fragment; loopback (the simulator) only with Client.AllowLoopback
// or PIPEDRIVE_ALLOW_LOOPBACK=true, which the local stack and the tests set and the template
// never does. Anything else is refused with
// ErrUntrustedAPIDomain (Decision DeadLetter with Alert): an attacker-chosen api_domain would
// receive our tokens. A response without api_domain yields an empty APIDomain; callers keep the
// value they had.
//
// # Credentials
//
// The client ID and secret come from Client.Credentials, called on every request, so a secret
// rotated in Secrets Manager is used as soon as the credentials source (clientcreds) refreshes
// its cache, without rebuilding the Client. Client authentication is HTTP Basic, with ID and
// secret form-encoded first as RFC 6749 §2.3.1 requires (as golang.org/x/oauth2 does).
//
// # What comes from golang.org/x/oauth2 and what is by hand
//
// AuthorizeURL is oauth2.Config.AuthCodeURL. The token and revoke requests are written by hand
// (about a hundred lines) because x/oauth2 v0.38 does not fit them:
//   - exchange_api_token is not an RFC 6749 grant and revocation (RFC 7009) is not offered;
//   - on a 2xx it cannot parse, or one without access_token, x/oauth2 returns a plain error
//     that has lost the status, headers and body, so the answer could not be classified; and it
//     reads up to 1 MiB where this package stops at MaxBodyBytes with a clear ErrBodyTooLarge;
//   - RetrieveError.Error() prints the whole response body, which must never reach a log;
//   - Pipedrive's error shape ({"success":false,"message":…}) is not RFC 6749's, so
//     classification needs the raw status, headers and body of every answer anyway.
//
// The two behaviours worth keeping from x/oauth2 are kept: a refresh answer without a
// refresh_token keeps the old one, and Basic credentials are form-encoded.
package pdoauth
