package refresh

import (
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Lead is how long before its access token expires an installation is due for a refresh. It is
// installation.RefreshLead: the store's refresh-due index is written with the same constant
// (installation.RefreshDueAt), so an installation listed as due is also Due here.
const Lead = installation.RefreshLead

// Due reports whether in is due for a refresh at now by the due rule, installation.NextRefresh:
// a warm installation (in use, or flagged always warm) when its access token expires within
// Lead; an idle one when its refresh token has not been used for installation.KeepAlive.
// Without force, Refresh refreshes only installations that are Due (one listed as due whose
// tokens another process has just refreshed is not, and is left alone as fresh).
func Due(in installation.Installation, now time.Time) bool {
	return !installation.NextRefresh(in).After(now)
}
