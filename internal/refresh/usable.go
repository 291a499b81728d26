package refresh

import (
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// UseSkew is the least life an access token must have left to be used for a call: one that
// expires sooner is refreshed first (a call and its retry take about that long).
const UseSkew = 30 * time.Second

// Usable reports whether in's access token can be used for a call at now: present and not
// expiring within UseSkew. Every caller that uses tokens (the worker's runners, pdctl) asks
// here, so the rule lives in one place.
func Usable(in installation.Installation, now time.Time) bool {
	return in.AccessToken != "" && in.ExpiresAt.After(now.Add(UseSkew))
}
