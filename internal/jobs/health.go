package jobs

import (
	"encoding/json"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// The health check's kinds.
const (
	// KindCheckWebhooks asks the worker to list an installation's webhooks and re-create the
	// missing, inactive, banned, v1 or foreign-credential ones; when events may have been
	// missed it enqueues a KindCatchUp job. No Method, Path or Body.
	KindCheckWebhooks = "check_webhooks"
	// KindCatchUp asks the worker to list the entities the installation's webhooks subscribe
	// to that changed in a window and run each as a webhook_event. Body is a CatchUp as JSON.
	KindCatchUp = "catch_up"
)

// Background reports whether a job of kind is the kit's own background work rather than a
// use of the installation: the health check's kinds (KindCheckWebhooks, KindCatchUp), which
// run for every installation, idle or not. The worker makes their access token usable
// without recording a use, so they never keep an idle installation's token warm (see
// internal/refresh, adaptive refresh).
func Background(kind string) bool {
	return kind == KindCheckWebhooks || kind == KindCatchUp
}

// CatchUp is the body of a KindCatchUp job.
type CatchUp struct {
	// Since is the start of the window; zero means "the last event processed for the
	// installation" (or its install time when none was), read when the job first runs.
	Since time.Time `json:"since,omitzero"`
	// Until is the end of the window (exclusive): when the webhooks delivered again. Required.
	Until time.Time `json:"until"`
	// Reason says why: "webhook_missing", "webhook_inactive", "webhook_credentials",
	// "operator".
	Reason string `json:"reason"`
	// Entity and Cursor continue a catch-up that had more pages than one run reads: the
	// entity type being listed and the next page's cursor.
	Entity string `json:"entity,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// CheckCatchUp is the KindCheck of KindCatchUp: Body must be a CatchUp with Until set, and
// Since, when set, before Until.
func CheckCatchUp(j Job) []string {
	var c CatchUp
	if err := json.Unmarshal(j.Body, &c); err != nil || c.Until.IsZero() {
		return []string{"catch_up needs a body with until"}
	}
	if !c.Since.IsZero() && !c.Since.Before(c.Until) {
		return []string{"catch_up's since must be before its until"}
	}
	return nil
}

// CheckWebhooks is the check_webhooks job of installation id for run: the day (YYYY-MM-DD,
// UTC) for the daily check, whose id "check_webhooks:<company>:<user>:<day>" makes the worker
// run one check per installation and day however often it is queued, or an operator's run id.
func CheckWebhooks(id installation.ID, run string) Job {
	return Job{ID: KindCheckWebhooks + ":" + id.String() + ":" + run, Kind: KindCheckWebhooks,
		CompanyID: id.CompanyID, UserID: id.UserID}
}

// CatchUpJob is the catch_up job of installation id for c; run tells one request from another
// (the check's id, an operator's run id): the id is "catch_up:<company>:<user>:<run>".
func CatchUpJob(id installation.ID, run string, c CatchUp) Job {
	body, _ := json.Marshal(c) // times and strings: cannot fail
	return Job{ID: KindCatchUp + ":" + id.String() + ":" + run, Kind: KindCatchUp,
		CompanyID: id.CompanyID, UserID: id.UserID, Body: body}
}
