package apicall

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pdkit/pipedrive-lambda-kit/internal/alerts"
	"github.com/pdkit/pipedrive-lambda-kit/internal/app"
	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/metrics"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// name names the function in claim keys, errors and alerts.
const name = jobs.Engine

// Handler maps the Lambda event to the job engine: an SQS batch from the jobs queue, or one
// job given by a direct invocation when DirectInvoke allows it.
type Handler struct {
	Engine *worker.Engine
	// DirectInvoke lets a direct invocation run one job (config.DirectInvoke). Off, such an
	// invocation is a *DirectInvokeOffError: a job run that way acts with a customer's token,
	// so the right to invoke the function must not be the right to act as any customer.
	DirectInvoke bool
}

// DirectInvokeOffError answers a direct invocation while direct invocation is off. Lambda
// reports its type name as errorType.
type DirectInvokeOffError struct{}

// Error says what to do instead.
func (*DirectInvokeOffError) Error() string {
	return name + ": direct invocation is off (template parameter WorkerDirectInvoke); send the job through the jobs queue"
}

// Handle is the Lambda entry point. A payload with "Records" is an SQS event: its jobs run and
// the answer is an events.SQSEventResponse naming the messages to retry. Any other payload is
// one job, run synchronously when DirectInvoke is on: the answer is a worker.Result (the
// outcome, never Pipedrive's body), or a *worker.InvalidJobError when it is not a valid job.
// With DirectInvoke off it is a *DirectInvokeOffError and nothing runs.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) == nil {
		if _, ok := probe["Records"]; ok {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("%s: malformed SQS event: %w", name, err)
			}
			return h.Engine.RunBatch(ctx, ev), nil
		}
	}
	if !h.DirectInvoke {
		if h.Engine.Log != nil {
			h.Engine.Log.LogAttrs(ctx, slog.LevelWarn, "direct invocation refused", slog.String("action", "rejected"), slog.String("reason", "direct_invoke_off"))
		}
		return nil, &DirectInvokeOffError{}
	}
	res, err := h.Engine.RunJob(ctx, raw)
	if err != nil {
		return nil, err // *worker.InvalidJobError: Lambda reports its type name
	}
	return res, nil
}

// config is the function's behaviour, from its environment (template.yaml's ApiCallFunction).
type config struct {
	Engine   worker.Config
	Webhooks pdwork.WebhookConfig
	// DirectInvoke lets a direct invocation run a job (DIRECT_INVOKE, template parameter
	// WorkerDirectInvoke); off, only the jobs queue's events run jobs.
	DirectInvoke bool
	// PathPrefixes limits api_call jobs to these API paths (API_PATH_PREFIXES, template
	// parameter ApiCallPathPrefixes); empty: any.
	PathPrefixes []string
	// BudgetReserve is the share of a company's daily budget left to the customer
	// (BUDGET_RESERVE_PERCENT / 100; pdwork.Limits.BudgetReserve).
	BudgetReserve float64
}

// The variables configFromEnv reads besides wire's.
const (
	envDLQURL        = "JOBS_DLQ_URL"
	envMaxReceives   = "JOBS_MAX_RECEIVES"
	envWebhookURL    = "WEBHOOK_URL"
	envWebhookEvents = "WEBHOOK_EVENTS"
	envDirectInvoke  = "DIRECT_INVOKE"
	envPathPrefixes  = "API_PATH_PREFIXES"
	envBudgetReserve = "BUDGET_RESERVE_PERCENT"
)

// configFromEnv reads JOBS_QUEUE_URL, JOBS_DLQ_URL and JOBS_MAX_RECEIVES (all required; the
// last is the jobs queue's maxReceiveCount, a positive integer), WEBHOOK_URL and WEBHOOK_EVENTS
// (read only when WEBHOOK_URL is set) and BUDGET_RESERVE_PERCENT (0 to 90; empty: no reserve).
// The webhooks' Basic credentials are not configuration: they come from the secret
// (deps.Creds).
func configFromEnv(getenv func(string) string) (config, error) {
	c := config{Engine: worker.Config{JobsQueueURL: getenv(wire.EnvJobsQueueURL), DeadLetterQueueURL: getenv(envDLQURL)}}
	if c.Engine.JobsQueueURL == "" || c.Engine.DeadLetterQueueURL == "" {
		return config{}, fmt.Errorf("%s: %s and %s must be set", name, wire.EnvJobsQueueURL, envDLQURL)
	}
	n, err := strconv.Atoi(getenv(envMaxReceives))
	if err != nil || n < 1 {
		return config{}, fmt.Errorf("%s: %s = %q, want the jobs queue's maxReceiveCount (a positive integer)", name, envMaxReceives, getenv(envMaxReceives))
	}
	c.Engine.MaxReceives = n
	switch v := getenv(envDirectInvoke); v {
	case "", "false":
	case "true":
		c.DirectInvoke = true
	default:
		return config{}, fmt.Errorf("%s: %s = %q, want true or false", name, envDirectInvoke, v)
	}
	if c.PathPrefixes, err = pdwork.ParsePathPrefixes(getenv(envPathPrefixes)); err != nil {
		return config{}, fmt.Errorf("%s: %s: %w", name, envPathPrefixes, err)
	}
	if v := getenv(envBudgetReserve); v != "" {
		pct, err := strconv.ParseFloat(v, 64)
		if err != nil || pct < 0 || pct > 90 {
			return config{}, fmt.Errorf("%s: %s = %q, want a percentage from 0 to 90 (the template's BudgetReservePercent)", name, envBudgetReserve, v)
		}
		c.BudgetReserve = pct / 100
	}
	c.Webhooks = pdwork.WebhookConfig{URL: getenv(envWebhookURL)}
	if c.Webhooks.URL != "" {
		if err := pdwork.ValidateWebhookURL(c.Webhooks.URL); err != nil {
			return config{}, fmt.Errorf("%s: %s: %w", name, envWebhookURL, err)
		}
		if c.Webhooks.Events, err = pdwork.ParseWebhookEvents(getenv(envWebhookEvents)); err != nil {
			return config{}, fmt.Errorf("%s: %s: %w", name, envWebhookEvents, err)
		}
	}
	return c, nil
}

// store is what the handler needs of the tokens table; *tokenstore.Store satisfies it.
type store interface {
	pdwork.Installations
	pdwork.EntityClock
	pdwork.EventMarks
	pdwork.WebhookOwners
	pdwork.Gates
	worker.Claims
}

// credentials reads the secret; *clientcreds.Source satisfies it.
type credentials interface {
	Get(ctx context.Context) (clientcreds.Credentials, error)
}

// pipedrive is the Pipedrive REST client; *pdapi.Client satisfies it.
type pipedrive interface {
	pdwork.API
	pdwork.WebhookAPI
}

// deps are the handler's collaborators: main.go takes them from wire.Load, the tests from moto
// and the simulator.
type deps struct {
	Store     store
	Refresher pdwork.Refresher
	Pipedrive pipedrive
	// Creds gives the webhooks' Basic pair (the one the receiver checks).
	Creds  credentials
	Queue  worker.Queue
	Alerts alerts.Notifier
	// CheckAlerts is Alerts for the daily webhook check, de-duplicated for
	// pdwork.CheckAlertWindow (wire.App.NotifierWithin); Alerts when zero.
	CheckAlerts alerts.Notifier
	Log         *slog.Logger
	// Metrics receives the engine's EMF lines (jobs, 429s, pauses); nil writes none.
	Metrics *metrics.Emitter
}

// newHandler builds the engine with the Pipedrive runners: api_call, register_webhooks,
// webhook_event (the app's event handler), the webhook health check (check_webhooks,
// catch_up) and the app's own work (a.Runners: its job kinds and hooks). The app's code queues
// jobs on the jobs queue through an enqueuer that knows its kinds.
func newHandler(d deps, c config, a app.App) *Handler {
	sessions := &pdwork.Sessions{Installations: d.Store, Refresher: d.Refresher, API: d.Pipedrive, Alerts: d.Alerts, Now: c.Engine.Now,
		// Pipedrive's limits: a paused company's jobs wait, every call is paced to its window.
		Limits: &pdwork.Limits{Gates: d.Store, Alerts: d.Alerts, Log: d.Log, Now: c.Engine.Now, BudgetReserve: c.BudgetReserve}}
	register := &pdwork.RegisterWebhooks{Sessions: sessions, Webhooks: d.Pipedrive, Config: c.Webhooks,
		Credentials: func(ctx context.Context) (webhook.Credentials, error) {
			cc, err := d.Creds.Get(ctx)
			return cc.Webhook, err
		}, Owners: d.Store}
	// The daily check alerts (a 422 webhook limit) once per CheckAlertWindow, not every day.
	checkSessions := *sessions
	if d.CheckAlerts.Sender != nil || d.CheckAlerts.Log != nil {
		checkSessions.Alerts = d.CheckAlerts
	}
	followUps := &jobs.Enqueuer{SQS: d.Queue, QueueURL: c.Engine.JobsQueueURL, Now: c.Engine.Now, Kinds: a.Kinds()}
	runners := a.Runners(sessions, followUps)
	maps.Copy(runners, map[string]worker.Runner{
		jobs.KindAPICall:          &pdwork.APICall{Sessions: sessions, PathPrefixes: c.PathPrefixes},
		jobs.KindRegisterWebhooks: register,
		jobs.KindWebhookEvent:     &pdwork.WebhookEvents{Sessions: sessions, Entities: d.Store, Handler: a.EventHandler(), Jobs: followUps, Log: d.Log},
		jobs.KindCheckWebhooks:    &pdwork.CheckWebhooks{Register: register, Sessions: &checkSessions, Jobs: followUps, Now: c.Engine.Now},
		jobs.KindCatchUp:          &pdwork.CatchUp{Sessions: sessions, Marks: d.Store, Config: c.Webhooks, Jobs: followUps, Log: d.Log},
	})
	return &Handler{DirectInvoke: c.DirectInvoke, Engine: &worker.Engine{
		Name:    name,
		Runners: runners,
		Claims:  d.Store,
		Queue:   d.Queue,
		Alerts:  d.Alerts,
		Log:     d.Log,
		Metrics: d.Metrics,
		Config:  c.Engine,
	}}
}
