package installation

import "time"

// RefreshLead is how long before its access token expires an installation in use is due for a
// refresh. The refresh logic (internal/refresh re-exports it as refresh.Lead and decides with
// it) and the store's refresh-due index (internal/tokenstore writes NextRefresh, built on it)
// read this one constant; it lives in the domain package so the DynamoDB adapter need not
// import the refresh logic.
const RefreshLead = 10 * time.Minute

// The adaptive refresh policy: an installation's access token is kept warm only while the
// installation is in use; an idle one's access token is let expire, and its refresh token is
// used once every KeepAlive so that Pipedrive's 60-day window never closes.
const (
	// InUseFor is how long after its last use (a job, a webhook event, an install, an
	// on-demand refresh) an installation counts as in use: until then it never serves a job
	// with an expired access token.
	InUseFor = time.Hour
	// UseMarkEvery is how often, at most, the worker records a use of an installation whose
	// access token is still valid (one conditional write; the on-demand refresh of an expired
	// token records it in the refresh's own save). A use is recorded as WarmUntil = now +
	// InUseFor + UseMarkEvery, so WarmUntil stays at least InUseFor after the last use.
	UseMarkEvery = 15 * time.Minute
	// KeepAlive is how often an idle installation's refresh token is used. Pipedrive expires a
	// refresh token unused for 60 days; half of that leaves a month for retries and outages.
	KeepAlive = 30 * 24 * time.Hour
)

// RefreshDueAt is when an installation in use whose access token expires at expiresAt becomes
// due for a refresh: RefreshLead before expiresAt.
func RefreshDueAt(expiresAt time.Time) time.Time { return expiresAt.Add(-RefreshLead) }

// Warm reports whether in's access token is kept warm: it is flagged AlwaysWarm, or it was
// used since its tokens were last refreshed (or installed), i.e. WarmUntil lies after that.
func Warm(in Installation) bool {
	return in.AlwaysWarm || in.WarmUntil.After(lastGrant(in))
}

// NextRefresh is the due rule: when in should next be refreshed by the scheduled refresher.
// Warm installations are due RefreshLead before their access token expires. Idle ones are
// due KeepAlive after their refresh token was last used (the later of RefreshedAt and
// InstalledAt), and never before a warm one would be. The store writes it as the refresh-due
// index entry; the refresher checks it again under the lease.
//
// Using an idle installation makes it warm: the refresh of its expired token, or the worker's
// use mark (MarkUse) while its token is still valid, sets WarmUntil after the last grant.
func NextRefresh(in Installation) time.Time {
	warm := RefreshDueAt(in.ExpiresAt)
	if Warm(in) {
		return warm
	}
	if keep := lastGrant(in).Add(KeepAlive); keep.After(warm) {
		return keep
	}
	return warm
}

// NeedsUseMark reports whether a use of in at now should be recorded: in is not AlwaysWarm and
// its WarmUntil would fall short of now+InUseFor within UseMarkEvery. Recording sets
// WarmUntil to UseMarkUntil(now).
func NeedsUseMark(in Installation, now time.Time) bool {
	return !in.AlwaysWarm && in.WarmUntil.Before(now.Add(InUseFor))
}

// UseMarkUntil is the WarmUntil a use at now records: InUseFor after now, plus UseMarkEvery so
// that the next UseMarkEvery of uses need no write.
func UseMarkUntil(now time.Time) time.Time { return now.Add(InUseFor + UseMarkEvery) }

// lastGrant is when in's refresh token was last used or issued.
func lastGrant(in Installation) time.Time {
	if in.RefreshedAt.After(in.InstalledAt) {
		return in.RefreshedAt
	}
	return in.InstalledAt
}

// DueEntry is one installation listed as due for a refresh, and when it became due (its
// refresh-due index entry).
type DueEntry struct {
	ID    ID
	DueAt time.Time
}
