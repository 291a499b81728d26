// Package pdsim is a Pipedrive simulator for tests and local runs: one http.Handler that plays
// both the OAuth server (oauth.pipedrive.com: /oauth/authorize, /oauth/token, /oauth/revoke)
// and a company API domain (/api/v1/…, /api/v2/…), with the status codes and the exact messages
// of Pipedrive's "Marketplace OAuth and API proxy status codes" page.
//
// The api_domain in every token response points back at the simulator's own base URL (see
// (*Server).SetBaseURL), so a client that follows api_domain, as it must, stays on the simulator.
//
// What it simulates:
//   - installations: a user directory (AddUser), the acting user who approves the next
//     authorization (SetActingUser), and tokens bound to one user and one company;
//   - the three grants (authorization_code, refresh_token, exchange_api_token), HTTP Basic client
//     authentication, single-use codes that expire after Config.CodeTTL on the simulated clock,
//     refresh-token rotation on or off (Config.RotateRefreshTokens), RFC 7009 revocation;
//   - /api/v1/users/me, deals, persons, organizations and activities (v2 with PATCH, cursor
//     pages and v2 validation errors; the v1 ones, out of support since 2026-08-01, still with
//     PUT, or 410 with Config.V1Retired), the v2 searches (/api/v2/deals/search,
//     persons/search, organizations/search, itemSearch), notes (v1 only), webhooks with the
//     40-per-user limit, scopes checked per path, retired paths answering 410;
//   - webhook deliveries: every create, change and delete (through the API or ActAsUser) is an
//     Event POSTed to each matching webhook in its version's shape (v2 meta/data/previous, or
//     v1), with HTTP Basic, retries after 3, 30 and 150 s on the simulated clock (DeliverDue),
//     the 30-minute ban after 10 failed first attempts (reset only by the ban's end), deletion after
//     3 days without a successful delivery, and Redeliver for duplicates;
//   - per-token burst limits in rolling 2-second windows (search has its own), a cost-weighted
//     daily token budget per company reset at the server's midnight, Cloudflare's block after
//     sustained 429s, and the account states 402, feature capping 403 and 415;
//   - fault injection (status, latency, hang, dropped connection) from Go (Inject) or from the
//     admin HTTP API under /_sim/ (Config.AdminEnabled);
//   - the uninstall request Pipedrive sends to an app's callback URL (Uninstall);
//   - counters that tests assert on (Counters).
//
// A Server is safe for concurrent use. All expiry and rate-limit decisions read Config.Now plus
// the offset added by AdvanceClock, so tests using a Clock are deterministic. Latency and hang
// faults and the webhook timeout use real time, because they exist to exercise a client's or
// receiver's own timing.
//
// The simulator never logs a token, secret, code or body.
package pdsim
