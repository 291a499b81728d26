// Package tokenstore keeps Pipedrive installations and their OAuth tokens in DynamoDB, and
// guards the refresh of each installation with a lease, so that one refresh runs at a time
// across every Lambda instance and a refresh token is never lost to a race.
//
// A refresh goes: Due lists installations due for refresh; Lease takes one (ErrLeaseHeld if
// another owner has it, and the returned Installation shows whether someone else has just
// refreshed it); the caller exchanges the refresh token; then exactly one of SaveRefreshed
// (conditional on the leased Version and on still holding the lease), RecordFailure (retry
// later), MarkNeedsReauth (Pipedrive rejected the refresh token) or Release. Install stores a
// new installation or a re-install; Uninstall deletes its tokens. Every write is a conditional
// write, and every write to an installation increments its Version.
//
// The callback uses ClaimCode, CompleteCode, RetireCode and ReleaseCode so that a single-use
// authorization code is exchanged once even when the callback is delivered twice, and any function uses Once
// for idempotency and alert de-duplication.
//
// # Table
//
// One table, TokensTable in template.yaml: partition key pk (S), no sort key, TTL on
// expires_at, and the global secondary index refresh-due. Ten kinds of item share it, told
// apart by the pk prefix (MethodKeyPrefixes maps each Store method to the prefixes it
// reaches; TestDocNamesEveryKind keeps this list complete): installations (inst#), code claims
// (code#), work claims (work#), once records, webhook event records, entity records and
// webhook owner records (all once#), shard claims (shard#), attempt counters (attempt#) and
// company gates (gate#). Attribute names in expressions always go through #name
// placeholders (status, state and many others are reserved words).
//
// Installation, pk "inst#<company_id>#<user_id>", one per Pipedrive user that installed the app:
//
//	pk                 S   "inst#<company_id>#<user_id>"                        always
//	company_id         N   Pipedrive company id                                  always
//	user_id            N   Pipedrive user id                                     always
//	status             S   active | needs_reauthorization | uninstalled          always
//	version            N   1 after the first install, +1 on every write          always
//	access_token       B   current access token, sealed (Store.Cipher; S: a      removed by Uninstall,
//	                       plain string written before encryption; sealed in     MarkNeedsReauth;
//	                       place by SealPlaintext)                               sealed by SealPlaintext
//	refresh_token      B   current refresh token, sealed (as access_token);      removed by Uninstall,
//	                       kept when a refresh returns none                      MarkNeedsReauth
//	api_domain         S   base URL for API calls, from the latest exchange      Install, SaveRefreshed
//	scopes             L   of S, the granted scopes                              when non-empty
//	access_expires_at  N   access token expiry, Unix seconds                     Install, SaveRefreshed
//	due_shard          S   "0".."Shards-1", the index partition key              active only
//	refresh_due_at     N   Unix seconds: the due rule, installation.NextRefresh  active only
//	                       (warm: 10 min before the access token expires;
//	                       idle: 30 days after the refresh token's last use),
//	                       or the retry time after RecordFailure
//	lease_owner        S   who holds the refresh lease                           Lease; removed when released
//	lease_until        N   lease expiry, Unix seconds (rounded up)               with lease_owner
//	failure_count      N   refresh failures since the last install or refresh    always (0 after success)
//	last_failure       S   pderrors reason or short text of the last failure     RecordFailure, MarkNeedsReauth
//	code_hash          S   hex SHA-256 of the authorization code installed from  Install (when given)
//	installed_at       S   RFC 3339, first install; kept by re-installs          always
//	last_installed_at  N   Unix seconds, the latest Install (first or re-)       Install; UninstallAsOf
//	                                                                             compares with it
//	updated_at         S   RFC 3339, last write                                  always
//	refreshed_at       S   RFC 3339, last successful refresh                     SaveRefreshed
//	warm_until         N   Unix seconds: in use until then (last recorded use    Install, MarkUse, a
//	                       + installation.InUseFor + UseMarkEvery); absent in    SaveRefreshed a job
//	                       items written before the adaptive refresh (idle)      asked for
//	always_warm        BOOL the operator's keep-warm flag (pdctl warm); kept     SetAlwaysWarm; absent
//	                       by re-installs                                        when never set
//
// The adaptive refresh reads warm_until and always_warm: an installation used since its
// tokens were last refreshed (warm_until after refreshed_at or installed_at) or flagged
// always_warm is due before its access token expires; any other is idle, its access token is
// let expire and its refresh token is used every installation.KeepAlive (30 days; Pipedrive's
// window is 60). Jobs record use without a write per job: the worker's refresh of an expired
// token sets warm_until in the same SaveRefreshed, and otherwise MarkUse writes it at most
// once per installation.UseMarkEvery. MarkUse and SetAlwaysWarm are conditional on the version
// read and on no lease: they never move the version under a refresh in flight. An item whose
// refresh_due_at predates the rule is moved to it by the refresher (Reschedule) when listed.
//
// The tokens are sealed with envelope encryption under the stack's KMS key, the item's pk as
// encryption context (internal/tokencrypt): Get, Lease and SaveRefreshed open them; Describe,
// Inventory and every other read ask only for the other attributes (ProjectionExpression), so
// they need no kms:Decrypt. A token stored in clear (an item from before encryption, or one
// planted without the key) is refused with RefusePlaintext; SealPlaintext seals such items.
// Installations never carry expires_at: TTL must not delete them. Times that conditions or
// the index compare are Unix seconds (N); times only people read are RFC 3339 text (S).
//
// Code claim, pk "code#<sha256 hex of the authorization code>" (never the code itself; a
// claim whose exchange was abandoned is retired: done without an installation):
//
//	state         S  exchanging | done
//	company_id    N  installation the code produced            done only
//	user_id       N                                            done only
//	expires_at    N  Unix seconds; TTL deletes it afterwards
//	claimed_at    S  RFC 3339
//	completed_at  S  RFC 3339                                  done only
//
// Work claim, pk "work#<key>" (ClaimWork, CompleteWork, ReleaseWork, MarkWorkCalling before a
// call that must not be repeated, ForgetWork for an operator's named redrive; the API worker's
// per-job idempotency), schema on WorkClaim:
//
//	state         S  in_progress | done
//	owner         S  who claimed it (kept when done)
//	lease_until   N  Unix seconds; in_progress only. Past it, another owner may take over
//	expires_at    N  Unix seconds; TTL deletes the record afterwards
//	claimed_at    S  RFC 3339
//	completed_at  S  RFC 3339; done only
//
// Once record, pk "once#<key>" (Once; idempotency and alert de-duplication): expires_at N
// (TTL), created_at S (RFC 3339).
//
// Webhook event record, pk "once#<event key>" (AcceptEvent, ConfirmEvent, ForgetEvent; the
// receiver's de-duplication of Pipedrive's deliveries, written in one transaction with a check
// that the installation is active):
//
//	state         S  pending (being enqueued) | queued; absent in older records: queued
//	lease_until   N  Unix milliseconds; a pending record past it may be taken over
//	nonce         S  the writer's random id, so an SDK retry recognises its own record
//	created_at    S  RFC 3339
//	expires_at    N  Unix seconds; TTL (a day after it is queued)
//
// Entity record, pk "once#<entity key>" (AdvanceEntity, EntityTime; the worker skips a change
// older than one already processed): changed_at N (Pipedrive's change time, Unix
// microseconds), expires_at N (TTL).
//
// Webhook owner record, pk "once#webhook-owner#<company_id>#<webhook id>" (RecordWebhookOwner,
// WebhookOwner; v1 payloads name no user, so the receiver looks up who registered the
// webhook): company_id N, user_id N, created_at S. No expiry.
//
// Attempt counter, pk "attempt#<name>#<window start, Unix seconds>" (CountAttempt; the
// callback's caps on token-endpoint calls per client IP and per state): attempts N (counted up
// to the limit), expires_at N (TTL, the window's end).
//
// Company gate, pk "gate#<company_id>" (Gate, PauseCompany, ClaimProbe, LiftPause, HoldToken;
// what stops or slows a company's Pipedrive calls, read by every worker):
//
//	pause_reason        S  why the company is paused (pderrors reason)     while paused
//	pause_since         N  Unix milliseconds                                while paused
//	probe_at            N  Unix milliseconds: the next probe call           while paused
//	hold_<user_id>      N  Unix milliseconds: no call with that user's      a 429's hold
//	hold_<user_id>_search  token before then (its search window)
//	expires_at          N  Unix seconds; TTL, GateTTL after the last write
//
// Shard claim, pk "shard#<n>" (LeaseShard, ReleaseShard; one refresher run per shard of the
// refresh-due index at a time): owner S, lease_until N (Unix seconds), expires_at N (TTL, a
// day after the claim), claimed_at S (RFC 3339). Deleted on release.
//
// DynamoDB's TTL deletes expired items up to a few days late (and moto never does), so code
// claims and once records count as absent once expires_at <= now: conditions compare it.
//
// # Index
//
// refresh-due: partition key due_shard (S), sort key refresh_due_at (N), projection KEYS_ONLY
// (pk, due_shard, refresh_due_at). It is sparse: only active installations carry due_shard and
// refresh_due_at, so needs-reauthorization and uninstalled installations, claims and once
// records are not in it. Due runs one Query per shard ("due_shard = :s AND refresh_due_at <=
// :before", ascending, paged) in parallel and merges the results oldest first; nothing scans
// the table.
//
// The shard is FNV-1a(pk) mod Shards (default 8). Every refresh moves an installation's index
// entry; with one partition key value all those writes would land on one index partition,
// whose throttling back-pressures writes to the table itself. Eight values spread them while
// keeping Due at eight small queries. Shards may grow but must not shrink (Due queries
// 0..Shards-1; items move to their new shard at their next write).
package tokenstore
