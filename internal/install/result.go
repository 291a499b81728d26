package install

import "github.com/pdkit/pipedrive-lambda-kit/internal/installation"

// Outcome is what an install attempt came to, for the caller to answer the user.
type Outcome int

// The outcomes. The zero Outcome is not one of them.
const (
	// Installed: the code was exchanged and the installation stored (Result.ID, Version).
	Installed Outcome = iota + 1
	// AlreadyInstalled: an earlier request installed with this code (a reload); nothing was
	// exchanged again. Result.ID is the installation.
	AlreadyInstalled
	// InProgress: another request is exchanging this code and did not finish within
	// ClaimWait; the user should reload in a few seconds.
	InProgress
	// CodeExpired: Pipedrive says the code expired; the user must start the install again.
	CodeExpired
	// Restart: the code is unknown, used, or its earlier exchange was abandoned by a request
	// that died; the user must start the install again.
	Restart
	// NotInstallable: Pipedrive does not allow the app for the user's company.
	NotInstallable
	// Outage: Pipedrive kept failing (5xx, timeouts) through the bounded retries; the user
	// may retry in a minute. The claim was released, so the same code may work then.
	Outage
	// IdentityFailed: the tokens came, but whom they belong to could not be read (users/me
	// failed or no api_domain); nothing was stored.
	IdentityFailed
	// ConfigError: Pipedrive rejected our client, redirect URI or request; a person was
	// alerted and must fix the configuration.
	ConfigError
	// Failed: our own storage failed; the detail is in Result.Err.
	Failed
	// The Flow's outcomes around Install:
	//
	// Authorize: Begin issued a state; redirect the browser to Pipedrive's consent page.
	Authorize
	// NotConfigured: the app's client id and secret are still the deploy's placeholders.
	NotConfigured
	// InvalidState: the state is forged, expired, malformed, another browser's, or missing
	// where RequireState wants one (Reason says which); the user must start again.
	InvalidState
	// TooManyAttempts: a cap on callbacks per client IP or per state refused this one.
	TooManyAttempts
)

var outcomeNames = [...]string{
	Installed:        "installed",
	AlreadyInstalled: "already_installed",
	InProgress:       "in_progress",
	CodeExpired:      "code_expired",
	Restart:          "restart",
	NotInstallable:   "not_installable",
	Outage:           "outage",
	IdentityFailed:   "identity_failed",
	ConfigError:      "config_error",
	Failed:           "failed",
	Authorize:        "authorize",
	NotConfigured:    "not_configured",
	InvalidState:     "invalid_state",
	TooManyAttempts:  "too_many_attempts",
}

// String is the outcome's snake_case name; "unknown" for a value not listed above.
func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Result is what Install did. Its fields are safe to log: no token, code or body.
type Result struct {
	Outcome Outcome
	// Reason names the decision for the log: "installed", "code_already_used",
	// "code_exchanging", "code_claim_abandoned", "missing_api_domain", "users_me_failed",
	// "store_failed", or Pipedrive's pderrors.Reason for a failed exchange.
	Reason string
	// ID is the installation, when known.
	ID installation.ID
	// Version is the stored installation's version (Installed only).
	Version int64
	// PipedriveStatus is Pipedrive's HTTP status for a failed call, 0 if none.
	PipedriveStatus int
	// Err is the failure's detail, from this project's packages (it carries no token, code
	// or body); nil on success.
	Err error
}
