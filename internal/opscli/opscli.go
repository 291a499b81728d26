// Package opscli is the on-call engineer's command line (cmd/pdctl): look at installations
// without ever reading a token (projections), see what the refresher will pick up next,
// refresh one installation now, inspect and redrive the jobs dead-letter queue, and, audited,
// decrypt one installation's tokens (decrypt, the only command that prints one).
package opscli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// Store is what the CLI reads from the tokens table; *tokenstore.Store satisfies it. Describe
// returns an installation without its tokens (it never reads the token attributes), or an
// error wrapping installation.ErrNotFound for an unknown id; Due lists up to limit
// installations due at or before before, oldest first.
type Store interface {
	Describe(ctx context.Context, id installation.ID) (installation.Installation, error)
	Due(ctx context.Context, before time.Time, limit int) ([]installation.ID, error)
}

// Lister pages through installations; *tokenstore.Inventory satisfies it.
type Lister interface {
	List(ctx context.Context, status installation.Status, limit int, cursor string) ([]installation.Installation, string, error)
}

// Queues is the part of SQS the dead-letter commands use; *sqs.Client satisfies it.
type Queues interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// RefreshFunc refreshes one installation now: (*refresh.Refresher).Refresh, the refresher's
// own logic, wired by cmd/pdctl.
type RefreshFunc func(ctx context.Context, id installation.ID, force bool) (refresh.Result, error)

// CLI runs pdctl's commands (Run). Fields a command does not use may be nil; a command whose
// dependency is missing says which environment variable (or --stack) to set.
type CLI struct {
	Store     Store
	Inventory Lister
	SQS       Queues
	// JobsQueueURL and DeadLetterURL are the jobs queue and its dead-letter queue.
	JobsQueueURL  string
	DeadLetterURL string
	// Claims serves `dlq redrive --id` of an outcome_unknown job (the tokens table).
	Claims  Claims
	Refresh RefreshFunc
	// Warm serves `warm` (the always-warm flag).
	Warm WarmFunc
	// Uninstall serves `uninstall`: revoke at Pipedrive, then mark uninstalled.
	Uninstall *Uninstaller
	// Tokens and Audit serve `decrypt`, the only command that reads a token.
	Tokens TokenReader
	Audit  *Auditor
	// Pauses serves `pause show` and `pause lift` (a company's pause of Pipedrive calls).
	Pauses Pauses
	// Jobs serves `webhooks register`: the jobs queue (*jobs.Enqueuer).
	Jobs Enqueuer
	// Setup serves `setup`: the client id and secret into the stack's secret.
	Setup *Setup
	// Seal serves `tokens seal` (tokens still in clear, sealed).
	Seal SealFunc
	// Migrator runs `migrate`; In is where it and `setup` read secrets (standard input).
	Migrator *Migrator
	In       io.Reader
	Out      io.Writer
	// TokensOut is where decrypt prints the tokens it read; Out when nil. Everything else
	// goes to Out, so a caller can keep the tokens apart from the rest (tests check Out, and
	// every log, for secrets).
	TokensOut io.Writer
	Now       func() time.Time

	// JSON is --json: every command prints JSON instead of text.
	JSON bool
	// Stack is --stack: the CloudFormation stack Connect reads the configuration from.
	Stack string
	// Connect, when set, fills the fields above before the first command runs (never for help
	// or completion): cmd/pdctl reads the environment, or the outputs of Stack.
	Connect func(ctx context.Context, c *CLI) error

	connected bool
}

// ErrUsage marks a command line the CLI cannot run; the message says why.
var ErrUsage = errors.New("usage")

func (c *CLI) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ParseID reads "COMPANY:USER" (the form every log line and alert uses) with
// installation.ParseID; its error wraps ErrUsage.
func ParseID(s string) (installation.ID, error) {
	id, err := installation.ParseID(s)
	if err != nil {
		return installation.ID{}, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return id, nil
}

// View is what the CLI shows of an installation: everything but the tokens, whose presence is
// all an operator needs.
type View struct {
	CompanyID       int64     `json:"company_id"`
	UserID          int64     `json:"user_id"`
	Status          string    `json:"status"`
	Version         int64     `json:"version"`
	APIDomain       string    `json:"api_domain,omitempty"`
	Scopes          []string  `json:"scopes,omitempty"`
	HasAccessToken  bool      `json:"has_access_token"`
	HasRefreshToken bool      `json:"has_refresh_token"`
	ExpiresAt       time.Time `json:"access_expires_at,omitzero"`
	RefreshDueAt    time.Time `json:"refresh_due_at,omitzero"`
	LeaseOwner      string    `json:"lease_owner,omitempty"`
	LeaseUntil      time.Time `json:"lease_until,omitzero"`
	FailureCount    int       `json:"failure_count"`
	LastFailure     string    `json:"last_failure,omitempty"`
	InstalledAt     time.Time `json:"installed_at,omitzero"`
	RefreshedAt     time.Time `json:"refreshed_at,omitzero"`
	UpdatedAt       time.Time `json:"updated_at,omitzero"`
}

// ViewOf copies the fields of in that are safe to show. in is usually read without its tokens
// (Store.Describe): the store holds both tokens exactly while an installation is active
// (Install requires both, uninstall and reauthorization delete them), so that is their
// presence.
func ViewOf(in installation.Installation) View {
	active := in.Status == installation.StatusActive
	return View{
		CompanyID: in.ID.CompanyID, UserID: in.ID.UserID, Status: string(in.Status), Version: in.Version,
		APIDomain: in.APIDomain, Scopes: in.Scopes,
		HasAccessToken: active || in.AccessToken != "", HasRefreshToken: active || in.RefreshToken != "",
		ExpiresAt: in.ExpiresAt, RefreshDueAt: in.RefreshDueAt,
		LeaseOwner: in.LeaseOwner, LeaseUntil: in.LeaseUntil,
		FailureCount: in.FailureCount, LastFailure: in.LastFailure,
		InstalledAt: in.InstalledAt, RefreshedAt: in.RefreshedAt, UpdatedAt: in.UpdatedAt,
	}
}

func (c *CLI) showCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show COMPANY:USER",
		Short: "one installation: status, expiry, due time, lease, failures",
		Long: `Show one installation as the tokens table holds it: status, version, API domain, scopes,
whether each token is present (never the token), when the access token expires and the
refresher will take it, who holds its lease, and its failures. Reads no token.`,
		Example: "  pdctl show 3408256:5206648\n  pdctl show 3408256:5206648 --json",
		Args:    exactArgs(1),
		RunE:    c.run(func(ctx context.Context, args []string) error { return c.show(ctx, args[0]) }),
	}
}

func (c *CLI) show(ctx context.Context, arg string) error {
	id, err := ParseID(arg)
	if err != nil {
		return err
	}
	if c.Store == nil {
		return errors.New("show: TOKENS_TABLE is not set")
	}
	in, err := c.Store.Describe(ctx, id)
	if errors.Is(err, installation.ErrNotFound) {
		return fmt.Errorf("show: no installation %s", id)
	}
	if err != nil {
		return fmt.Errorf("show %s: %w", id, err)
	}
	v := ViewOf(in)
	if c.JSON {
		return writeJSON(c.Out, v)
	}
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	now := c.now()
	row("installation", id)
	row("status", v.Status)
	row("version", v.Version)
	row("api_domain", v.APIDomain)
	row("scopes", strings.Join(v.Scopes, ","))
	row("access token", presence(v.HasAccessToken))
	row("refresh token", presence(v.HasRefreshToken))
	row("access expires", when(v.ExpiresAt, now))
	row("refresh due", when(v.RefreshDueAt, now))
	if v.LeaseOwner != "" {
		row("lease", fmt.Sprintf("%s until %s", v.LeaseOwner, when(v.LeaseUntil, now)))
	}
	row("failures", fmt.Sprintf("%d %s", v.FailureCount, v.LastFailure))
	row("installed", when(v.InstalledAt, now))
	row("refreshed", when(v.RefreshedAt, now))
	row("updated", when(v.UpdatedAt, now))
	return w.Flush()
}

// statuses are the values of list --status.
var statuses = []string{string(installation.StatusActive), string(installation.StatusNeedsReauth), string(installation.StatusUninstalled)}

func (c *CLI) listCommand() *cobra.Command {
	var status string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "installations, without their tokens (scans the table)",
		Long: `List installations page by page, optionally only those of one status. It scans the tokens
table (projections only, no token is read): keep --limit small on a large table.`,
		Example: "  pdctl list --status needs_reauthorization --limit 20",
		Args:    noArgs,
		RunE:    c.run(func(ctx context.Context, _ []string) error { return c.list(ctx, status, limit) }),
	}
	cmd.Flags().StringVar(&status, "status", "", "only this status: "+strings.Join(statuses, ", "))
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (c *CLI) list(ctx context.Context, status string, limit int) error {
	switch installation.Status(status) {
	case "", installation.StatusActive, installation.StatusNeedsReauth, installation.StatusUninstalled:
	default:
		return fmt.Errorf("%w: --status %q is not %s", ErrUsage, status, strings.Join(statuses, ", "))
	}
	if limit <= 0 {
		return fmt.Errorf("%w: --limit must be positive", ErrUsage)
	}
	if c.Inventory == nil {
		return errors.New("list: TOKENS_TABLE is not set")
	}
	var views []View
	cursor := ""
	for len(views) < limit {
		page, next, err := c.Inventory.List(ctx, installation.Status(status), limit-len(views), cursor)
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		for _, in := range page {
			views = append(views, ViewOf(in))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if c.JSON {
		return writeJSON(c.Out, views)
	}
	return c.table(views)
}

func (c *CLI) dueCommand() *cobra.Command {
	var within time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "due",
		Short: "installations the refresher picks up within a time (default: due now)",
		Long: `List the installations whose refresh is due now, or within --within, oldest first: what the
refresher will take on its next runs. Reads no token.`,
		Example: "  pdctl due\n  pdctl due --within 30m --limit 20 --json",
		Args:    noArgs,
		RunE:    c.run(func(ctx context.Context, _ []string) error { return c.due(ctx, within, limit) }),
	}
	cmd.Flags().DurationVar(&within, "within", 0, "include installations due within this time (0: due now)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return cmd
}

func (c *CLI) due(ctx context.Context, within time.Duration, limit int) error {
	if within < 0 || limit <= 0 {
		return fmt.Errorf("%w: due [--within DURATION>=0] [--limit N>0]", ErrUsage)
	}
	if c.Store == nil {
		return errors.New("due: TOKENS_TABLE is not set")
	}
	ids, err := c.Store.Due(ctx, c.now().Add(within), limit)
	if err != nil {
		return fmt.Errorf("due: %w", err)
	}
	views := make([]View, 0, len(ids))
	for _, id := range ids {
		in, err := c.Store.Describe(ctx, id)
		if errors.Is(err, installation.ErrNotFound) {
			continue // the index is eventually consistent
		}
		if err != nil {
			return fmt.Errorf("due: %s: %w", id, err)
		}
		views = append(views, ViewOf(in))
	}
	if c.JSON {
		return writeJSON(c.Out, views)
	}
	return c.table(views)
}

func (c *CLI) refreshCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "refresh COMPANY:USER",
		Short: "refresh one installation's access token now",
		Long: `Refresh one installation now with the refresher's own logic (its lease and its writes, so it
never races the scheduled function). A token that is still fresh is left alone unless --force.
Prints the outcome, never the token.`,
		Example: "  pdctl refresh 3408256:5206648\n  pdctl refresh 3408256:5206648 --force --json",
		Args:    exactArgs(1),
		RunE:    c.run(func(ctx context.Context, args []string) error { return c.refresh(ctx, args[0], force) }),
	}
	cmd.Flags().BoolVar(&force, "force", false, "refresh even if the access token is fresh")
	return cmd
}

// RefreshView is `pdctl refresh --json`: the refresher's outcome, never a token.
type RefreshView struct {
	CompanyID int64     `json:"company_id"`
	UserID    int64     `json:"user_id"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason,omitempty"`
	Version   int64     `json:"version,omitempty"`
	ExpiresAt time.Time `json:"access_expires_at,omitzero"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
}

func (c *CLI) refresh(ctx context.Context, arg string, force bool) error {
	id, err := ParseID(arg)
	if err != nil {
		return err
	}
	if c.Refresh == nil {
		return errors.New("refresh: TOKENS_TABLE and CLIENT_SECRET_ID must be set")
	}
	res, err := c.Refresh(ctx, id, force)
	if err != nil {
		return fmt.Errorf("refresh %s: %s: %w", id, res.Outcome, err)
	}
	if c.JSON {
		v := RefreshView{CompanyID: id.CompanyID, UserID: id.UserID, Outcome: string(res.Outcome), Reason: res.Reason, RetryAt: res.RetryAt}
		if res.Outcome == refresh.OutcomeRefreshed || res.Outcome == refresh.OutcomeFresh {
			v.Version, v.ExpiresAt = res.Installation.Version, res.Installation.ExpiresAt
		}
		return writeJSON(c.Out, v)
	}
	line := fmt.Sprintf("%s: %s", id, res.Outcome)
	if res.Reason != "" {
		line += " (" + res.Reason + ")"
	}
	switch res.Outcome {
	case refresh.OutcomeRefreshed, refresh.OutcomeFresh:
		line += fmt.Sprintf("; version %d, access token expires %s", res.Installation.Version, when(res.Installation.ExpiresAt, c.now()))
	case refresh.OutcomeRetryLater:
		line += "; next try " + when(res.RetryAt, c.now())
	}
	fmt.Fprintln(c.Out, line)
	return nil
}

// table prints installations one per line.
func (c *CLI) table(views []View) error {
	now := c.now()
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INSTALLATION\tSTATUS\tVERSION\tACCESS EXPIRES\tREFRESH DUE\tFAILURES\tLAST FAILURE")
	for _, v := range views {
		fmt.Fprintf(w, "%d:%d\t%s\t%d\t%s\t%s\t%d\t%s\n", v.CompanyID, v.UserID, v.Status, v.Version,
			when(v.ExpiresAt, now), when(v.RefreshDueAt, now), v.FailureCount, v.LastFailure)
	}
	fmt.Fprintf(w, "(%d)\n", len(views))
	return w.Flush()
}

// DeadLetter is one dead-lettered job as peek shows it: the job's identity and the reason the
// worker gave (its attributes, as jobs.DeadLetter defines them), not its body (which may hold
// customer data).
type DeadLetter struct {
	MessageID    string            `json:"message_id"`
	SentAt       time.Time         `json:"sent_at,omitzero"`
	ReceiveCount int               `json:"receive_count"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	// Reason, Error and Status are the worker's verdict (empty when SQS's own redrive moved
	// the message).
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
	Status    int    `json:"status,omitempty"`
	JobID     string `json:"job_id,omitempty"`
	Kind      string `json:"kind,omitempty"`
	CompanyID int64  `json:"company_id,omitempty"`
	UserID    int64  `json:"user_id,omitempty"`
	Method    string `json:"method,omitempty"`
	Path      string `json:"path,omitempty"`
	// Invalid says why the body is not a valid job, when it is not.
	Invalid string `json:"invalid,omitempty"`
}

// peekVisibility hides peeked messages from other readers briefly; they come back afterwards.
const peekVisibility = 30

func (c *CLI) dlqCommand() *cobra.Command {
	return group("dlq", "the jobs dead-letter queue: peek, redrive",
		`Inspect the jobs that the worker gave up on (the dead-letter queue, JOBS_DLQ_URL) and move
them back to the jobs queue once the cause is fixed.`,
		c.dlqPeekCommand(), c.dlqRedriveCommand())
}

func (c *CLI) dlqPeekCommand() *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "peek",
		Short: "dead-lettered jobs with the worker's reason",
		Long: fmt.Sprintf(`Show dead-lettered jobs: message id, when it was sent, receives, the job's id, kind,
installation and call, and the reason the worker gave (its attributes, not the body, which may
hold customer data). Peeked messages are hidden from other readers for %d s, then come back.`, peekVisibility),
		Example: "  pdctl dlq peek --max 5 --json",
		Args:    noArgs,
		RunE:    c.run(func(ctx context.Context, _ []string) error { return c.dlqPeek(ctx, max) }),
	}
	cmd.Flags().IntVar(&max, "max", 10, "at most this many")
	return cmd
}

func (c *CLI) dlqPeek(ctx context.Context, max int) error {
	if max <= 0 {
		return fmt.Errorf("%w: dlq peek [--max N>0]", ErrUsage)
	}
	if c.SQS == nil || c.DeadLetterURL == "" {
		return errors.New("dlq: JOBS_DLQ_URL is not set")
	}
	msgs, err := c.receive(ctx, c.DeadLetterURL, max, peekVisibility)
	if err != nil {
		return err
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, deadLetterOf(m))
	}
	if c.JSON {
		return writeJSON(c.Out, out)
	}
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MESSAGE\tSENT\tRECEIVES\tJOB\tKIND\tINSTALLATION\tCALL\tREASON")
	now := c.now()
	for _, d := range out {
		reason := d.Reason
		if d.Invalid != "" {
			reason = "invalid job: " + d.Invalid
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d:%d\t%s %s\t%s\n", d.MessageID, when(d.SentAt, now), d.ReceiveCount,
			d.JobID, d.Kind, d.CompanyID, d.UserID, d.Method, d.Path, reason)
	}
	fmt.Fprintf(w, "(%d shown; hidden from other readers for %d s)\n", len(out), peekVisibility)
	return w.Flush()
}

func (c *CLI) dlqRedriveCommand() *cobra.Command {
	var max int
	var ids []string
	cmd := &cobra.Command{
		Use:   "redrive",
		Short: "move dead-lettered jobs back to the jobs queue (never outcome_unknown unless named)",
		Long: `Move up to --max dead-lettered jobs back to the jobs queue (JOBS_QUEUE_URL), each with its own
attributes and without the dead-letter verdict, once the cause (dlq peek) is fixed. The worker
is idempotent per job id, so a job moved twice after an interruption runs once.

Jobs dead-lettered as outcome_unknown are skipped (the count is reported): their call may have
been carried out, and sending it again could, for example, create a second deal. Check
Pipedrive first; if the call did not happen, name the message with --id (repeatable): only the
named messages are moved then, and for an outcome_unknown one the worker's record of the job
is cleared so that it runs again.`,
		Example: "  pdctl dlq redrive --max 10\n  pdctl dlq redrive --id 8f0c6a1e-… \n  pdctl --json dlq redrive",
		Args:    noArgs,
		RunE:    c.run(func(ctx context.Context, _ []string) error { return c.dlqRedrive(ctx, max, ids) }),
	}
	cmd.Flags().IntVar(&max, "max", 100, "at most this many")
	cmd.Flags().StringSliceVar(&ids, "id", nil, "move only this dead letter (message id from dlq peek), outcome_unknown included; repeatable")
	return cmd
}

// Redrive is what one dlq redrive did.
type Redrive struct {
	// Moved counts the jobs moved back to the jobs queue.
	Moved int `json:"moved"`
	// SkippedUnknown counts outcome_unknown jobs left in the dead-letter queue (not named).
	SkippedUnknown int `json:"skipped_outcome_unknown"`
	// NotFound lists the named message ids not seen in the dead-letter queue.
	NotFound []string `json:"not_found,omitempty"`
}

// Claims forgets a job's claim so that a named outcome_unknown job runs again;
// *tokenstore.Store satisfies it.
type Claims interface {
	ForgetWork(ctx context.Context, workKey string) error
}

func (c *CLI) dlqRedrive(ctx context.Context, max int, ids []string) error {
	if max <= 0 {
		return fmt.Errorf("%w: dlq redrive [--max N>0] [--id MESSAGE_ID ...]", ErrUsage)
	}
	if c.SQS == nil || c.DeadLetterURL == "" || c.JobsQueueURL == "" {
		return errors.New("dlq redrive: JOBS_DLQ_URL and JOBS_QUEUE_URL must be set")
	}
	named, found := map[string]bool{}, map[string]bool{}
	for _, id := range ids {
		named[id] = true
	}
	var r Redrive
	var left []sqstypes.Message
	defer func() { c.showAgain(ctx, left) }()
	for r.Moved < max {
		// Visibility long enough to send and delete; a crash in between redelivers (the
		// worker is idempotent per job ID, so a duplicate is harmless). Messages left alone
		// stay hidden until the end, so the loop sees each once, and then come back.
		msgs, err := c.receive(ctx, c.DeadLetterURL, min(10, max-r.Moved), 60)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			id, dl := aws.ToString(m.MessageId), deadLetterOf(m)
			switch {
			case len(named) > 0 && !named[id]:
				left = append(left, m)
				continue
			case len(named) == 0 && dl.Reason == worker.ReasonOutcomeUnknown:
				r.SkippedUnknown++
				left = append(left, m)
				continue
			case dl.Reason == worker.ReasonOutcomeUnknown:
				// Named after a check at Pipedrive: the worker recorded the job as done so
				// that no copy of it runs again; forget that, or the job is a duplicate.
				if c.Claims == nil {
					return errors.New("dlq redrive: an outcome_unknown job needs TOKENS_TABLE to clear its record")
				}
				key := worker.ClaimKey(jobs.Engine, jobs.Job{ID: dl.JobID, CompanyID: dl.CompanyID, UserID: dl.UserID})
				if err := c.Claims.ForgetWork(ctx, key); err != nil {
					return fmt.Errorf("dlq redrive: clear the record of job %s: %w (moved %d so far)", dl.JobID, err, r.Moved)
				}
			}
			found[id] = true
			// The job goes back with its own attributes, without the dead-letter verdict.
			if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: aws.String(c.JobsQueueURL), MessageBody: m.Body, MessageAttributes: jobs.RedriveAttributes(m.MessageAttributes),
			}); err != nil {
				return fmt.Errorf("dlq redrive: send %s: %w (moved %d so far)", id, err, r.Moved)
			}
			if _, err := c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(c.DeadLetterURL), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				return fmt.Errorf("dlq redrive: delete %s after sending it: %w (moved %d so far)", id, err, r.Moved)
			}
			r.Moved++
		}
	}
	for _, id := range ids {
		if !found[id] {
			r.NotFound = append(r.NotFound, id)
		}
	}
	if c.JSON {
		return writeJSON(c.Out, r)
	}
	fmt.Fprintf(c.Out, "moved %d job(s) from the dead-letter queue back to the jobs queue\n", r.Moved)
	if r.SkippedUnknown > 0 {
		fmt.Fprintf(c.Out, "skipped %d outcome_unknown job(s): their call may have been carried out at Pipedrive, and sending it again could repeat it (a second deal). Check Pipedrive; then redrive one that did not happen with --id MESSAGE_ID (dlq peek lists them), or leave it\n", r.SkippedUnknown)
	}
	if len(r.NotFound) > 0 {
		fmt.Fprintf(c.Out, "not in the dead-letter queue (or hidden by another reader): %s\n", strings.Join(r.NotFound, ", "))
	}
	return nil
}

// showAgain makes messages a redrive left in the dead-letter queue visible again at once.
// Best effort: otherwise they come back when their visibility ends.
func (c *CLI) showAgain(ctx context.Context, msgs []sqstypes.Message) {
	for _, m := range msgs {
		_, _ = c.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(c.DeadLetterURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0,
		})
	}
}

func (c *CLI) receive(ctx context.Context, queueURL string, max int, visibility int32) ([]sqstypes.Message, error) {
	var out []sqstypes.Message
	for len(out) < max {
		resp, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(queueURL),
			MaxNumberOfMessages:         int32(min(10, max-len(out))),
			VisibilityTimeout:           visibility,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return nil, fmt.Errorf("dlq: receive: %w", err)
		}
		if len(resp.Messages) == 0 {
			break
		}
		out = append(out, resp.Messages...)
	}
	return out, nil
}

func deadLetterOf(m sqstypes.Message) DeadLetter {
	d := DeadLetter{MessageID: aws.ToString(m.MessageId), Attributes: map[string]string{}}
	for k, v := range m.MessageAttributes {
		d.Attributes[k] = aws.ToString(v.StringValue)
	}
	if n, err := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		d.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		d.SentAt = time.UnixMilli(ms).UTC()
	}
	dl := jobs.DeadLetterOf(m.MessageAttributes)
	d.Reason, d.Error, d.Status = dl.Reason, dl.Error, dl.Status
	j, err := jobs.Parse(aws.ToString(m.Body))
	if err != nil {
		// What the worker could read of the body when it dead-lettered the message.
		d.JobID, d.Kind, d.CompanyID, d.UserID = dl.JobID, dl.Kind, dl.CompanyID, dl.UserID
		d.Invalid = shorten(err.Error(), 120)
		return d
	}
	d.JobID, d.Kind, d.CompanyID, d.UserID, d.Method, d.Path = j.ID, j.Kind, j.CompanyID, j.UserID, j.Method, j.Path
	return d
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func presence(ok bool) string {
	if ok {
		return "present"
	}
	return "none"
}

// when prints a time with its distance from now ("2026-11-27T14:05:00Z (in 12m)").
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	rel := "in " + d.String()
	if d < 0 {
		rel = (-d).String() + " ago"
	}
	return t.UTC().Format(time.RFC3339) + " (" + rel + ")"
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
