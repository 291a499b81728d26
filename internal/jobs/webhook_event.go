package jobs

import (
	"bytes"
	"encoding/json"
)

// KindWebhookEvent carries one Pipedrive webhook event (a webhook.Event as JSON in Body) from
// the webhook receiver to the app's event handler in the worker. Its ID is the event's identity
// (webhook.Event.Key), so a retried delivery that slipped past the receiver's dedupe is still
// run once.
const KindWebhookEvent = "webhook_event"

// CheckWebhookEvent is the KindCheck of KindWebhookEvent: Body must be a JSON object.
func CheckWebhookEvent(j Job) []string {
	b := bytes.TrimSpace(j.Body)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return []string{"webhook_event needs the event as a JSON object in body"}
	}
	return nil
}
