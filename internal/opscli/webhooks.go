package opscli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
)

// WebhooksResult is `pdctl webhooks register|check|catch-up --json`: the run's job id suffix,
// how many jobs were enqueued and the installations skipped because they are not active.
type WebhooksResult struct {
	Run      string            `json:"run"`
	Enqueued int               `json:"enqueued"`
	Skipped  []WebhooksSkipped `json:"skipped"`
}

// WebhooksSkipped is an installation a `webhooks` command did not enqueue a job for.
type WebhooksSkipped struct {
	CompanyID int64  `json:"company_id"`
	UserID    int64  `json:"user_id"`
	Status    string `json:"status"`
}

// webhooksPage is how many installations a `webhooks … --all` lists per page.
const webhooksPage = 100

func (c *CLI) webhooksCommand() *cobra.Command {
	var all, checkAll, catchAll bool
	var since string
	register := &cobra.Command{
		Use:   "register (COMPANY:USER | --all)",
		Short: "queue a register_webhooks job for one installation or every active one",
		Long: `Queue a register_webhooks job for one installation, or with --all for every active one: after
an upgrade, this replaces v1 and old-Basic-user webhooks on installations made before it. Says
which installations it skipped (not active). Audited (who, when) on standard error.`,
		Example: "  pdctl webhooks register 3408256:5206648\n  pdctl webhooks register --all --json",
		RunE: c.run(func(ctx context.Context, args []string) error {
			return c.webhooksQueue(ctx, args, all, webhookRun{verb: "register", kind: jobs.KindRegisterWebhooks, job: jobs.RegisterWebhooks})
		}),
	}
	register.Flags().BoolVar(&all, "all", false, "every active installation")
	check := &cobra.Command{
		Use:   "check (COMPANY:USER | --all)",
		Short: "queue the webhook health check now for one installation or every active one",
		Long: `Queue a check_webhooks job now (the refresher queues one per installation and day): it lists the
installation's webhooks and re-creates missing, inactive, banned, v1 or foreign-credential ones,
and when events were missed queues a catch-up. Audited (who, when) on standard error.`,
		Example: "  pdctl webhooks check 3408256:5206648",
		RunE: c.run(func(ctx context.Context, args []string) error {
			return c.webhooksQueue(ctx, args, checkAll, webhookRun{verb: "check", kind: jobs.KindCheckWebhooks, job: jobs.CheckWebhooks})
		}),
	}
	check.Flags().BoolVar(&checkAll, "all", false, "every active installation")
	catchUp := &cobra.Command{
		Use:   "catch-up (COMPANY:USER | --all) [--since TIME]",
		Short: "queue a catch-up of the events missed since the last one processed",
		Long: `Queue a catch_up job for one installation, or with --all for every active one: the worker lists
the subscribed entity types changed since the installation's last processed event (or --since:
an RFC 3339 time, or a duration such as 72h before now) until now, with Pipedrive's v2 lists,
and runs each change through the webhook_event path: the app's handler sees CatchUp true, and
a change already processed is skipped. Audited (who, when) on standard error.`,
		Example: "  pdctl webhooks catch-up 3408256:5206648\n  pdctl webhooks catch-up --all --since 72h",
		RunE: c.run(func(ctx context.Context, args []string) error {
			from, err := parseSince(since, c.now())
			if err != nil {
				return err
			}
			until := c.now().UTC()
			if !from.IsZero() && !from.Before(until) {
				return fmt.Errorf("%w: --since must be before now", ErrUsage)
			}
			return c.webhooksQueue(ctx, args, catchAll, webhookRun{verb: "catch-up", kind: jobs.KindCatchUp,
				job: func(id installation.ID, run string) jobs.Job {
					return jobs.CatchUpJob(id, run, jobs.CatchUp{Since: from, Until: until, Reason: "operator"})
				}})
		}),
	}
	catchUp.Flags().BoolVar(&catchAll, "all", false, "every active installation")
	catchUp.Flags().StringVar(&since, "since", "", "start of the window: RFC 3339 time or a duration before now (default: the last processed event)")
	return group("webhooks", "the app's Pipedrive webhooks: register, check, catch-up",
		`The app's webhooks at Pipedrive, registered per installation by the register_webhooks job,
checked daily by check_webhooks, and caught up by catch_up after they missed events.`,
		register, check, catchUp)
}

// parseSince reads --since: "" (the last processed event: zero), an RFC 3339 time, or a
// positive duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%w: --since %q: want an RFC 3339 time or a duration such as 72h", ErrUsage, s)
}

// webhookRun is one `pdctl webhooks` command that queues a job per installation: its verb
// (in messages), the job's kind and the job for an installation and the run's id.
type webhookRun struct {
	verb, kind string
	job        func(id installation.ID, run string) jobs.Job
}

// webhooksQueue serves `pdctl webhooks VERB (COMPANY:USER | --all)`: one job of w for the
// installation, or for every active one (a deployment's upgrade reaching installations made
// before it, a check or catch-up after an outage). It reads no token: the installations come
// from Describe and the inventory's projection, as show and list read them.
func (c *CLI) webhooksQueue(ctx context.Context, args []string, all bool, w webhookRun) error {
	if all == (len(args) == 1) || len(args) > 1 {
		return fmt.Errorf("%w: webhooks %s (COMPANY:USER | --all): one installation or --all", ErrUsage, w.verb)
	}
	var id installation.ID
	var err error
	if !all {
		if id, err = ParseID(args[0]); err != nil {
			return err
		}
	}
	if c.Jobs == nil {
		return fmt.Errorf("webhooks %s: JOBS_QUEUE_URL is not set", w.verb)
	}
	if (all && c.Inventory == nil) || (!all && c.Store == nil) {
		return fmt.Errorf("webhooks %s: TOKENS_TABLE is not set", w.verb)
	}
	var single installation.Installation
	if !all {
		// Before anything is logged or queued: an unknown installation is a mistyped id.
		if single, err = c.Store.Describe(ctx, id); errors.Is(err, installation.ErrNotFound) {
			return fmt.Errorf("webhooks %s: no installation %s", w.verb, id)
		} else if err != nil {
			return fmt.Errorf("webhooks %s %s: %w", w.verb, id, err)
		}
	}

	res := WebhooksResult{Run: runID(c.now()), Skipped: []WebhooksSkipped{}}
	scope := "all"
	if !all {
		scope = id.String()
	}
	if c.Audit != nil && c.Audit.Log != nil {
		who := "unknown"
		if c.Audit.Who != nil {
			who = c.Audit.Who(ctx)
		}
		c.Audit.Log.LogAttrs(ctx, slog.LevelInfo, "webhook "+w.verb+" queued by an operator",
			slog.String("action", w.kind), slog.String("installations", scope),
			slog.String("run", res.Run), slog.String("operator", who), slog.Time("at", c.now().UTC()))
	}

	each := func(in installation.Installation) error {
		if in.Status != installation.StatusActive {
			res.Skipped = append(res.Skipped, WebhooksSkipped{CompanyID: in.ID.CompanyID, UserID: in.ID.UserID, Status: string(in.Status)})
			return nil
		}
		// A new id per run: the worker's claim is per installation and job id, so the
		// install's id (or an earlier run's) would be acknowledged as done and never run.
		err := c.Jobs.Enqueue(ctx, w.job(in.ID, res.Run))
		if err != nil {
			return fmt.Errorf("webhooks %s: enqueue for %s: %w (%d job(s) enqueued before it)", w.verb, in.ID, err, res.Enqueued)
		}
		res.Enqueued++
		return nil
	}
	if !all {
		err = each(single)
	} else {
		err = c.eachInstallation(ctx, each)
	}
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(c.Out, res)
	}
	fmt.Fprintf(c.Out, "enqueued %d %s job(s) (job ids end in %s)\n", res.Enqueued, w.kind, res.Run)
	for _, s := range res.Skipped {
		fmt.Fprintf(c.Out, "skipped %d:%d (%s, not active)\n", s.CompanyID, s.UserID, s.Status)
	}
	return nil
}

// eachInstallation calls fn for every installation the inventory lists (every status, without
// tokens), page by page; it stops at fn's first error.
func (c *CLI) eachInstallation(ctx context.Context, fn func(installation.Installation) error) error {
	cursor := ""
	for {
		page, next, err := c.Inventory.List(ctx, "", webhooksPage, cursor)
		if err != nil {
			return fmt.Errorf("list installations: %w", err)
		}
		for _, in := range page {
			if err := fn(in); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// runID names one run of a `webhooks` command in its job ids: "op-" and the UTC time, then a
// random suffix, so two runs within one second (or under a fixed test clock) differ too.
func runID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "op-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
