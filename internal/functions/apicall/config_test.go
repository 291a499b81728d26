package apicall

import (
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	base := map[string]string{"JOBS_QUEUE_URL": "https://sqs/jobs", "JOBS_DLQ_URL": "https://sqs/dlq", "JOBS_MAX_RECEIVES": "5"}
	tests := []struct {
		name    string
		set     map[string]string
		wantErr string
	}{
		{"template values", nil, ""},
		{"no max receives", map[string]string{"JOBS_MAX_RECEIVES": ""}, "JOBS_MAX_RECEIVES"},
		{"max receives zero", map[string]string{"JOBS_MAX_RECEIVES": "0"}, "JOBS_MAX_RECEIVES"},
		{"max receives not a number", map[string]string{"JOBS_MAX_RECEIVES": "five"}, "JOBS_MAX_RECEIVES"},
		{"no dead-letter queue", map[string]string{"JOBS_DLQ_URL": ""}, "JOBS_DLQ_URL"},
		{"no jobs queue", map[string]string{"JOBS_QUEUE_URL": ""}, "JOBS_QUEUE_URL"},
		{"webhook URL not absolute", map[string]string{"WEBHOOK_URL": "app.example/hooks", "WEBHOOK_EVENTS": "deal.*"}, "WEBHOOK_URL"},
		{"webhook events unknown", map[string]string{"WEBHOOK_URL": "https://app.example/hooks", "WEBHOOK_EVENTS": "invoice.*"}, "WEBHOOK_EVENTS"},
		{"webhook events ignored without URL", map[string]string{"WEBHOOK_EVENTS": "invoice.*"}, ""},
		{"budget reserve not a number", map[string]string{"BUDGET_RESERVE_PERCENT": "twenty"}, "BUDGET_RESERVE_PERCENT"},
		{"budget reserve above 90", map[string]string{"BUDGET_RESERVE_PERCENT": "95"}, "BUDGET_RESERVE_PERCENT"},
		{"budget reserve negative", map[string]string{"BUDGET_RESERVE_PERCENT": "-1"}, "BUDGET_RESERVE_PERCENT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			c, err := configFromEnv(func(k string) string { return env[k] })
			if tt.wantErr == "" {
				if err != nil || c.Engine.MaxReceives != 5 || c.Engine.JobsQueueURL != "https://sqs/jobs" || c.Engine.DeadLetterQueueURL != "https://sqs/dlq" {
					t.Errorf("configFromEnv = %+v, %v; want the queues and MaxReceives 5", c.Engine, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("configFromEnv = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
	c, err := configFromEnv(func(k string) string {
		return map[string]string{"JOBS_QUEUE_URL": "q", "JOBS_DLQ_URL": "d", "JOBS_MAX_RECEIVES": "3",
			"WEBHOOK_URL": "https://app.example/hooks", "WEBHOOK_EVENTS": "deal.*,person.added", "BUDGET_RESERVE_PERCENT": "20"}[k]
	})
	if err != nil || len(c.Webhooks.Events) != 2 || c.Webhooks.Events[1].Action != "create" || c.Engine.MaxReceives != 3 {
		t.Errorf("configFromEnv(webhooks) = %+v, %v; want two events (v1 added read as create)", c.Webhooks.Events, err)
	}
	if c.BudgetReserve != 0.2 {
		t.Errorf("configFromEnv(BUDGET_RESERVE_PERCENT=20).BudgetReserve = %v, want 0.2", c.BudgetReserve)
	}
}
