// Package refresh refreshes the OAuth tokens of one Pipedrive installation safely: at most one
// refresh of an installation runs at a time across every Lambda instance, the refresh token
// Pipedrive returns is never dropped, and every failure ends in a recorded decision. The
// scheduled refresher (functions/refresher) and the API worker (after a 401) share it.
//
// # One refresh
//
// Refresher.Refresh goes:
//
//  1. Lease the installation in the store under a lease owner unique to this call
//     (Refresher.Owner plus a random suffix). Another owner's live lease: OutcomeLeaseHeld.
//     Uninstalled or needing reauthorization: OutcomeNotActive. Absent: OutcomeNotFound.
//  2. Unless forced, an installation that is not Due (its access token lives beyond now+Lead)
//     was refreshed by another process a moment ago: release the lease, OutcomeFresh, and the
//     caller uses Result.Installation.
//  3. Call Pipedrive's refresh_token grant with the stored refresh token, under a deadline that
//     leaves SaveTimeout before both the caller's deadline and the lease's end, so the lease
//     cannot expire while the call is in flight (a second owner would then spend the same
//     refresh token) and the store write after it has time to finish.
//  4. Record the outcome with a write that does not depend on the caller's context
//     (context.WithoutCancel with SaveTimeout): a token answer already received must not be
//     lost because the Lambda's context ends.
//     Success: SaveRefreshed at the leased version (an answer without a refresh token, api_domain
//     or scope keeps the stored one). Pipedrive's Decision Reauthorize (refresh token invalid):
//     MarkNeedsReauth and an alert, the user must install again. Retry (5xx, 429, timeouts,
//     network): RecordFailure, due again at now + max(RetryAfter, Backoff(failures+1)).
//     DeadLetter (invalid client and other configuration errors): RecordFailure with the
//     backoff and an app-wide alert.
//
// # The window a refresh cannot close
//
// With refresh-token rotation Pipedrive invalidates the old refresh token the moment it answers.
// Two cases can then lose the only valid refresh token, and both end in OutcomeFailed with an
// error wrapping ErrTokensNotSaved and an alert ("refresh_tokens_not_saved"):
//   - the save after a successful answer fails: the store is unreachable past SaveTimeout, or
//     the conditional write finds another owner's lease or a newer version (which the deadline
//     in step 3 makes possible only when the process was paused longer than the lease);
//   - the answer itself is lost (timeout, dropped connection) after Pipedrive processed it.
//     That is recorded as a Retry; the next attempt gets "refresh token is invalid" and marks
//     the installation for reauthorization.
//
// Without rotation the old refresh token keeps working and the next run repairs both cases.
//
// # Adaptive refresh
//
// Only installations in use are kept warm. installation.NextRefresh is the due rule: an
// installation used since its tokens were last refreshed (WarmUntil, recorded by jobs), or
// flagged AlwaysWarm by an operator, is due Lead before its access token expires; an idle one
// is let expire and is due installation.KeepAlive (30 days) after its refresh token was last
// used, well inside Pipedrive's 60 days. Use is the worker's entry point: a Usable token is
// returned as is (recording the use at most once per installation.UseMarkEvery), one that is
// not is refreshed under the lease and the save records the use, so a job never adds a store
// write of its own beyond that. Ensure is its counterpart for the kit's own background work
// (the daily webhook health check, a catch-up): it refreshes a token that is not Usable but
// records no use (and RefreshRejectedQuietly after a 401), so such work never keeps an idle
// installation warm. An operator still forces a refresh with Refresh(force).
//
// # The due rule, in one place
//
// Lead, NextRefresh and Due decide when an installation is due; Usable (UseSkew) decides
// whether its access token can still be used for a call. The lead itself is installation.RefreshLead, with
// installation.RefreshDueAt: the DynamoDB adapter writes each installation's refresh_due_at
// with it, so the list the scheduled run reads and the check under the lease agree, and
// neither copies the other. It lives in the domain package, not here, because the adapter
// must not import this package (that would link the OAuth client into the store) and this
// package must not import the adapter.
//
// # Scheduled runs
//
// Run is the refresher function's use case: claim the shards of the due list (ShardLeases,
// so concurrent runs split them instead of racing), list what is due (Lister), refresh it
// with bounded concurrency (One) until a reserve before the deadline, with no other ceiling,
// and return a Report (the outcomes and the backlog's oldest due time). With more due than
// RunConfig.FanOutAbove, a run over every shard hands each shard to its own invocation
// (FanOut) instead. functions/refresher maps the Lambda event to it.
//
// # Dependencies
//
// This package depends on the domain types (internal/installation), the OAuth client's Token,
// pderrors' classification and the SDK-free alert vocabulary (internal/oncall); never on an AWS
// SDK or on internal/tokenstore. Store is declared here in domain types and returns the
// domain's errors (installation.ErrLeaseHeld, ErrNotActive, ErrNotFound, ErrConflict,
// ErrLeaseLost); *tokenstore.Store satisfies it in production and refreshtest.Store (memory)
// in tests.
//
// # Logs
//
// One slog event per decision, with company_id, user_id, action (the Outcome), reason,
// status (Pipedrive's HTTP status, 0 without one) and version. Never a token: errors from this
// project's packages carry none, and Installation and Tokens redact themselves.
package refresh
