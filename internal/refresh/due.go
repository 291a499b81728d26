package refresh

import (
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Lead is how long before its access token expires an installation is due for a refresh. It is
// installation.RefreshLead: the store's refresh-due index is written with the same constant
// (installation.RefreshDueAt), so an installation listed as due is also Due here.
const Lead = installation.RefreshLead

// Due reports whether in is due for a refresh at now: its access token expires within Lead.
// Without force, Refresh refreshes only installations that are Due (one listed as due whose
// tokens another process has just refreshed is not, and is left alone as fresh).
func Due(in installation.Installation, now time.Time) bool {
	return !installation.RefreshDueAt(in.ExpiresAt).After(now)
}
