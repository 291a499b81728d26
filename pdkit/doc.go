// Package pdkit is the public API of the Pipedrive Lambda kit: what a Pipedrive Marketplace
// app built on the kit writes and imports. Everything else of the kit is internal and may
// change between versions.
//
// An app is a value, an [App]: handlers for webhook events (usually an [EventMux] routing by
// entity and action, as net/http's ServeMux routes by path), install and uninstall hooks, and
// the app's own job kinds. Each of the kit's four Lambda functions is started with it, one
// call per function's main:
//
//	func main() { pdkit.StartWorker(myapp.New()) }
//
// [StartCallback] (OAuth install and uninstall), [StartRefresher] (token refresh),
// [StartWebhooks] (webhook receiver) and [StartWorker] (the jobs queue) read their
// configuration from the environment template.yaml gives each function. The app's code runs in
// the worker only: events, hooks and jobs are jobs on the jobs queue, each run once per
// identity, retried at Pipedrive's time or with backoff, and dead-lettered with a reason when
// retrying cannot help.
//
// Every handler gets a [Client] for the installation it acts for. Its calls carry the worker's
// safety: the access token refreshed before it expires (under the installation's lease) and
// once after a 401, calls paced to Pipedrive's rate windows, a company whose daily budget is
// spent paused, a 429 retried at the time Pipedrive asks for, a POST whose outcome is unknown
// dead-lettered as outcome_unknown instead of repeated (unless marked [RetrySafe]), dead
// letters with reasons, and alerts when a person must act. A handler returns the Client's
// error (wrapped with %w) and the kit decides.
//
// The package pdkittest runs an app against the kit's Pipedrive simulator and a local AWS
// (moto) in the app's own tests.
//
// # Versions
//
// The kit is at v0 until this API settles: a minor version (v0.x.0) may break it, a patch
// version (v0.x.y) does not. CHANGELOG.md names every change an app must act on. A breaking
// change is one that stops an app that built and passed its tests from doing so, or changes
// what the kit does for it without a change in the app: a removed or renamed exported name, a
// changed signature or field type, a changed default (say, which calls are retried), a new
// required environment variable or template parameter without a default, or a changed job or
// event wire format that jobs already on a queue would not survive. Adding names, fields with
// a zero value that keeps today's behaviour, or template resources with defaults is not.
package pdkit
