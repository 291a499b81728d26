package pdkit

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// Installation names one installation of the app: a Pipedrive user of a company who installed
// it. The kit keeps its tokens; a [Client] acts as it.
type Installation struct {
	CompanyID int64
	UserID    int64
}

// String is "company:user".
func (in Installation) String() string {
	return strconv.FormatInt(in.CompanyID, 10) + ":" + strconv.FormatInt(in.UserID, 10)
}

func installationOf(id installation.ID) Installation {
	return Installation{CompanyID: id.CompanyID, UserID: id.UserID}
}

// Event actions (Pipedrive's webhooks v2 event_action; v1 deliveries arrive in the same shape).
const (
	ActionCreate = "create"
	ActionChange = "change"
	ActionDelete = "delete"
)

// Event is one Pipedrive webhook event, as the kit received, authenticated and de-duplicated
// it.
type Event struct {
	// ID is the event's identity across Pipedrive's repeated deliveries.
	ID string
	// Entity is the object type: "deal", "person", "organization", "activity", "note", "lead", …
	Entity string
	// Action is ActionCreate, ActionChange or ActionDelete.
	Action string
	// EntityID is the entity's id as text (digits for most entities, a UUID for leads).
	EntityID string
	// Installation is the installation the event belongs to (the webhook's owner): the one the
	// handler's Client acts for.
	Installation Installation
	// ActorUserID is the Pipedrive user who made the change (often a colleague of the
	// installing user); 0 when the delivery does not say.
	ActorUserID int64
	// Timestamp is when the change happened at Pipedrive.
	Timestamp time.Time
	// Data is the entity after the change, Previous the changed fields before it (Pipedrive's
	// JSON, as delivered; Previous is empty for a create). For an event too large to queue,
	// Data is the entity as the API returns it when the handler runs, and Previous is empty.
	Data, Previous json.RawMessage
	// MergedToID is set on the delete of an entity merged into another (the survivor's id);
	// MergedFromID on the change of the surviving entity (the merged-away entity's id). Both
	// are "" when the event is not part of a merge.
	MergedToID, MergedFromID string
	// CatchUp is true for an event the kit made up while catching up on changes it missed
	// (after a webhook was banned or deleted), false for one Pipedrive delivered.
	CatchUp bool
}

// EntityIDInt is EntityID as a positive integer, or 0 when it is not one (a lead's UUID).
func (e Event) EntityIDInt() int64 {
	n, err := strconv.ParseInt(e.EntityID, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// eventOf is the public view of a received event: the one mapping from the receiver's parse.
func eventOf(ev webhook.Event) Event {
	return Event{
		ID: ev.ID, Entity: ev.Entity, Action: ev.Action, EntityID: ev.EntityID,
		Installation: installationOf(ev.Installation()), ActorUserID: ev.ActorUserID,
		Timestamp: ev.Timestamp, Data: ev.Data, Previous: ev.Previous,
		MergedToID: ev.MergedToID, MergedFromID: ev.MergedFromID, CatchUp: ev.CatchUp,
	}
}
