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

// WebhooksResult is `pdctl webhooks register -json`: the run's job id suffix, how many
// register_webhooks jobs were enqueued and the installations skipped because they are not
// active.
type WebhooksResult struct {
	Run      string            `json:"run"`
	Enqueued int               `json:"enqueued"`
	Skipped  []WebhooksSkipped `json:"skipped"`
}

// WebhooksSkipped is an installation `webhooks register` did not enqueue a job for.
type WebhooksSkipped struct {
	CompanyID int64  `json:"company_id"`
	UserID    int64  `json:"user_id"`
	Status    string `json:"status"`
}

// webhooksPage is how many installations `webhooks register -all` lists per page.
const webhooksPage = 100

func (c *CLI) webhooksCommand() *cobra.Command {
	var all bool
	register := &cobra.Command{
		Use:   "register (COMPANY:USER | --all)",
		Short: "queue a register_webhooks job for one installation or every active one",
		Long: `Queue a register_webhooks job for one installation, or with --all for every active one: after
an upgrade, this replaces v1 and old-Basic-user webhooks on installations made before it. Says
which installations it skipped (not active). Audited (who, when) on standard error.`,
		Example: "  pdctl webhooks register 3408256:5206648\n  pdctl webhooks register --all --json",
		RunE:    c.run(func(ctx context.Context, args []string) error { return c.webhooksRegister(ctx, args, all) }),
	}
	register.Flags().BoolVar(&all, "all", false, "every active installation")
	return group("webhooks", "the app's Pipedrive webhooks: register",
		`The app's webhooks at Pipedrive, registered per installation by the register_webhooks job.`,
		register)
}

// webhooksRegister serves `pdctl webhooks register (COMPANY:USER | --all)`: one register_webhooks job
// for the installation, or for every active one, so a deployment's upgrade (v2 webhooks, a new
// Basic user) reaches installations made before it. It reads no token: the installations come
// from Describe and the inventory's projection, as show and list read them.
func (c *CLI) webhooksRegister(ctx context.Context, args []string, all bool) error {
	if all == (len(args) == 1) || len(args) > 1 {
		return fmt.Errorf("%w: webhooks register (COMPANY:USER | --all): one installation or --all", ErrUsage)
	}
	var id installation.ID
	var err error
	if !all {
		if id, err = ParseID(args[0]); err != nil {
			return err
		}
	}
	if c.Jobs == nil {
		return errors.New("webhooks register: JOBS_QUEUE_URL is not set")
	}
	if (all && c.Inventory == nil) || (!all && c.Store == nil) {
		return errors.New("webhooks register: TOKENS_TABLE is not set")
	}
	var single installation.Installation
	if !all {
		// Before anything is logged or queued: an unknown installation is a mistyped id.
		if single, err = c.Store.Describe(ctx, id); errors.Is(err, installation.ErrNotFound) {
			return fmt.Errorf("webhooks register: no installation %s", id)
		} else if err != nil {
			return fmt.Errorf("webhooks register %s: %w", id, err)
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
		c.Audit.Log.LogAttrs(ctx, slog.LevelInfo, "webhook registration queued by an operator",
			slog.String("action", "register_webhooks"), slog.String("installations", scope),
			slog.String("run", res.Run), slog.String("operator", who), slog.Time("at", c.now().UTC()))
	}

	each := func(in installation.Installation) error {
		if in.Status != installation.StatusActive {
			res.Skipped = append(res.Skipped, WebhooksSkipped{CompanyID: in.ID.CompanyID, UserID: in.ID.UserID, Status: string(in.Status)})
			return nil
		}
		// A new id per run: the worker's claim is per installation and job id, so the
		// install's id (or an earlier run's) would be acknowledged as done and never run.
		err := c.Jobs.Enqueue(ctx, jobs.RegisterWebhooks(in.ID, res.Run))
		if err != nil {
			return fmt.Errorf("webhooks register: enqueue for %s: %w (%d job(s) enqueued before it)", in.ID, err, res.Enqueued)
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
	fmt.Fprintf(c.Out, "enqueued %d register_webhooks job(s) (job ids end in %s)\n", res.Enqueued, res.Run)
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
			return fmt.Errorf("webhooks register: list installations: %w", err)
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

// runID names one run of `webhooks register` in its job ids: "op-" and the UTC time, then a
// random suffix, so two runs within one second (or under a fixed test clock) differ too.
func runID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "op-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
