package pdwork_test

import (
	"slices"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
)

func TestParseWebhookEvents(t *testing.T) {
	ev := func(o, a string) pdwork.WebhookEvent { return pdwork.WebhookEvent{Object: o, Action: a} }
	tests := []struct {
		in   string
		want []pdwork.WebhookEvent
		ok   bool
	}{
		{"deal.*,person.added", []pdwork.WebhookEvent{ev("deal", "*"), ev("person", "create")}, true},
		{"deal.updated,deal.change,lead.deleted", []pdwork.WebhookEvent{ev("deal", "change"), ev("lead", "delete")}, true},
		{"deal_product.*,project.create,task.change,board.*,phase.*,deal_installment.delete",
			[]pdwork.WebhookEvent{ev("deal_product", "*"), ev("project", "create"), ev("task", "change"), ev("board", "*"), ev("phase", "*"), ev("deal_installment", "delete")}, true},
		{"deal.merged", nil, false},
		{" deal.create , , person.* ", []pdwork.WebhookEvent{ev("deal", "create"), ev("person", "*")}, true},
		{"*.*", []pdwork.WebhookEvent{ev("*", "*")}, true},
		{"deal.*,deal.*", []pdwork.WebhookEvent{ev("deal", "*")}, true},
		{"", nil, false},
		{" , ", nil, false},
		{"deal", nil, false},
		{"deal.", nil, false},
		{"invoice.*", nil, false},
		{"deal.exploded", nil, false},
		{"Deal.*", nil, false},
	}
	for _, tt := range tests {
		got, err := pdwork.ParseWebhookEvents(tt.in)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("ParseWebhookEvents(%q) = %v, %v; want %v (ok %t)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestValidateWebhookURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://app.example/pipedrive/webhooks": true,
		"http://127.0.0.1:9000/hooks":            true,
		"":                                       false,
		"app.example/hooks":                      false,
		"ftp://app.example/hooks":                false,
		"https:///hooks":                         false,
	} {
		if err := pdwork.ValidateWebhookURL(u); (err == nil) != ok {
			t.Errorf("ValidateWebhookURL(%q) = %v, want ok %t", u, err, ok)
		}
	}
}
