package webhooks

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
)

// TestDeliveriesWriteEMF: every delivery is counted by action and reason, duplicates once
// more on their own, read back from the EMF lines; no id becomes a dimension.
func TestDeliveriesWriteEMF(t *testing.T) {
	e := newEnv(t)
	e.install(acme)
	var out bytes.Buffer
	e.h.metrics = &metrics.Emitter{Out: &out, Function: "webhooks"}
	good := basic(creds.User, creds.Password)

	e.deliver(good, v2("ev-m", "create", 1))
	e.deliver(good, v2("ev-m", "create", 2)) // Pipedrive's retry
	e.deliver(good, v2("ev-m", "create", 3))
	e.deliver(basic("intruder", "guess"), v2("ev-x", "create", 1))

	pts, err := metrics.Parse(&out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out.String())
	}
	for _, c := range []struct {
		name string
		dims []metrics.Dim
		want float64
	}{
		{metrics.WebhookDeliveries, nil, 4},
		{metrics.WebhookDeliveries, []metrics.Dim{metrics.Outcome("accepted"), metrics.Reason("enqueued")}, 1},
		{metrics.WebhookDeliveries, []metrics.Dim{metrics.Outcome("duplicate")}, 2},
		{metrics.WebhookDeliveries, []metrics.Dim{metrics.Outcome("rejected"), metrics.Reason("unauthorized")}, 1},
		{metrics.WebhookDuplicates, nil, 2},
		{metrics.ServerErrors, nil, 0}, // 200s and a 401: nothing for the 5xx alarm
	} {
		if got := metrics.Sum(pts, c.name, c.dims...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.dims, got, c.want)
		}
	}
	if s := out.String(); strings.Contains(s, "3408256") || strings.Contains(s, "5206648") || strings.Contains(s, "ev-m") {
		t.Errorf("EMF lines carry company, user or event ids:\n%s", s)
	}
}
