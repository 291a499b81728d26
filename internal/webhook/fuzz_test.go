package webhook_test

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
)

// FuzzParse: any bytes give an Event or one of Parse's errors, never a panic; an accepted
// event has an identity, a known action, positive ids and keys without separators smuggled in.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"v2_deal_create.json", "v1_deal_updated.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"meta":{"id":"1","action":"change","entity":"lead","entity_id":"9a8b","company_id":"1","user_id":2.0,"timestamp":1}}`))
	f.Add([]byte(`{"v":1,"meta":{"action":"merged","object":"person","id":"5","company_id":1,"user_id":1,"timestamp":"2026-01-01 10:00:00"}}`))
	f.Add([]byte(`{"meta":{"id":"e","action":"delete","entity":"deal","entity_id":"7","company_id":"1","user_id":"2","webhook_owner_id":"3","merged_to_id":"8","timestamp":1796040001000}}`))
	f.Add([]byte(`{"meta":{"id":"e","action":"change","entity":"lead","entity_id":"adf21080-f3d9-11ed-9b8f-1b4e5e5a7e1a","company_id":1,"webhook_owner_id":3,"merged_from_id":9,"timestamp":"9999-12-31T23:59:59Z"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := webhook.Parse(body)
		if err != nil {
			if !errors.Is(err, webhook.ErrMalformed) && !errors.Is(err, webhook.ErrTooLarge) {
				t.Fatalf("Parse error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		if e.ID == "" || e.EntityID == "" || e.Entity == "" || e.CompanyID <= 0 || e.UserID < 0 || e.ActorUserID < 0 || e.Timestamp.IsZero() {
			t.Fatalf("accepted an incomplete event %+v", e)
		}
		// Owner ids, entity ids and merge fields are ids: digits or a UUID, nothing else.
		for _, id := range []string{e.EntityID, e.MergedToID, e.MergedFromID} {
			if id != "" && !webhook.ValidEntityID(id) {
				t.Fatalf("accepted entity id %q", id)
			}
		}
		// However the timestamp was written, after ClampFuture it blocks nothing for long.
		now := time.Now()
		e.ClampFuture(now)
		if e.Timestamp.After(now.Add(webhook.MaxClockSkew)) {
			t.Fatalf("ClampFuture left %v, more than %v after %v", e.Timestamp, webhook.MaxClockSkew, now)
		}
		switch e.Action {
		case webhook.ActionCreate, webhook.ActionChange, webhook.ActionDelete:
		default:
			t.Fatalf("accepted action %q", e.Action)
		}
		if strings.Count(e.Key(), "#") != 2 && e.Version == "2.0" {
			t.Fatalf("key %q has a smuggled separator", e.Key())
		}
	})
}

// FuzzAuthorized: any header, never a panic; only the exact credentials pass.
func FuzzAuthorized(f *testing.F) {
	c := webhook.Credentials{User: "pipedrive", Password: "pw"}
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("pipedrive:pw")))
	f.Add("Basic cGlwZWRyaXZlOnB3")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, header string) {
		if c.Authorized(header) {
			_, enc, _ := strings.Cut(strings.TrimSpace(header), " ")
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
			if string(raw) != "pipedrive:pw" {
				t.Fatalf("Authorized(%q) = true for %q", header, raw)
			}
		}
	})
}
