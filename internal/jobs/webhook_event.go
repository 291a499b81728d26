package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
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

// WebhookEvent is the webhook_event job for ev, of ev's installation, with ID ev.Key(). The
// event is encoded without HTML escaping and measured as the queue message it becomes (Encode):
// when that is over MaxMessageBytes, the job carries the event without Data and Previous and
// with DataOmitted set, and the worker fetches the entity before the app's handler runs. The
// error is Validate's (an event without its installation, say).
func WebhookEvent(ev webhook.Event) (Job, error) {
	j, err := webhookEventJob(ev)
	if err != nil {
		return Job{}, err
	}
	body, err := Encode(j)
	if err != nil {
		return Job{}, err
	}
	if len(body) <= MaxMessageBytes {
		return j, nil
	}
	ev.Data, ev.Previous, ev.DataOmitted = nil, nil, true
	return webhookEventJob(ev)
}

func webhookEventJob(ev webhook.Event) (Job, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return Job{}, fmt.Errorf("%w %q: encode event: %v", ErrInvalidJob, ev.Key(), err)
	}
	j := Job{ID: ev.Key(), Kind: KindWebhookEvent, CompanyID: ev.CompanyID, UserID: ev.UserID, Body: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))}
	return j, j.Validate()
}
