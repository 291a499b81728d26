package installation

import "time"

// RefreshLead is how long before its access token expires an installation is due for a
// refresh. The refresh logic (internal/refresh re-exports it as refresh.Lead and decides with
// it) and the store's refresh-due index (internal/tokenstore writes RefreshDueAt with it) read
// this one constant; it lives in the domain package so the DynamoDB adapter need not import
// the refresh logic.
const RefreshLead = 10 * time.Minute

// RefreshDueAt is when an installation whose access token expires at expiresAt becomes due
// for a refresh: RefreshLead before expiresAt.
func RefreshDueAt(expiresAt time.Time) time.Time { return expiresAt.Add(-RefreshLead) }
