// Package opscli is the on-call engineer's command line (cmd/pdctl): look at installations
// without ever reading a token (projections), see what the refresher will pick up next,
// refresh one installation now, inspect and redrive the jobs dead-letter queue, and, audited,
// decrypt one installation's tokens (decrypt, the only command that prints one).
package opscli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
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
}

// RefreshFunc refreshes one installation now: (*refresh.Refresher).Refresh, the refresher's
// own logic, wired by cmd/pdctl.
type RefreshFunc func(ctx context.Context, id installation.ID, force bool) (refresh.Result, error)

// CLI runs one command. Fields a command does not use may be nil; a command whose dependency
// is missing says which environment variable to set.
type CLI struct {
	Store     Store
	Inventory Lister
	SQS       Queues
	// JobsQueueURL and DeadLetterURL are the jobs queue and its dead-letter queue.
	JobsQueueURL  string
	DeadLetterURL string
	Refresh       RefreshFunc
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
	// Migrator runs `migrate`; In is where it and `setup` read secrets (standard input).
	Migrator *Migrator
	In       io.Reader
	Out      io.Writer
	// TokensOut is where decrypt prints the tokens it read; Out when nil. Everything else
	// goes to Out, so a caller can keep the tokens apart from the rest (tests check Out, and
	// every log, for secrets).
	TokensOut io.Writer
	Now       func() time.Time
}

// ErrUsage marks a command line the CLI cannot run; the message says why.
var ErrUsage = errors.New("usage")

// Usage is the help text.
const Usage = `pdctl: on-call commands for the Pipedrive Lambda kit (tokens are never read, but by decrypt)

  pdctl setup -client-id ID < secret   after the first deploy: the app's client id and secret (from
                                       Developer Hub; the secret on standard input) into the stack's secret
  pdctl show COMPANY:USER              one installation: status, expiry, due time, lease, failures
  pdctl list [-status S] [-limit N]    installations (scans the table; S: active, needs_reauthorization, uninstalled)
  pdctl due [-within D] [-limit N]     installations the refresher picks up within D (default 0: due now)
  pdctl refresh [-force] COMPANY:USER  refresh one installation now (-force even if its token is fresh)
  pdctl warm COMPANY:USER on|off       keep its access token warm even when idle (on), or adaptive (off)
  pdctl decrypt COMPANY:USER -reason "…" [-refresh-token]
                                       print the access token (and the refresh token only when
                                       asked), after logging who, when and why and alerting
  pdctl uninstall COMPANY:USER -reason "…" [-force]
                                       end an installation: revoke its tokens at Pipedrive, then mark
                                       it uninstalled (-force: even if the revoke fails); audited
  pdctl pause show COMPANY             a company's pause of Pipedrive calls (daily budget spent, 402,
                                       feature capping, 415), its next probe, its tokens' burst holds
  pdctl pause lift COMPANY             end the pause now (after the account was fixed)
  pdctl webhooks register COMPANY:USER|-all
                                       queue a register_webhooks job for one installation or every
                                       active one (after an upgrade: replaces v1 and old-Basic-user
                                       webhooks); says which it skipped (not active); audited
  pdctl dlq peek [-max N]              dead-lettered jobs with their reason (hidden from other readers for 30 s)
  pdctl dlq redrive [-max N]           move dead-lettered jobs back to the jobs queue
  pdctl migrate < tokens.txt           exchange customers' API tokens (one per line on standard input,
                                       never as arguments) for OAuth installations, stored as installs are

Add -json after the command for JSON output. Configuration comes from the functions' variables:
TOKENS_TABLE, JOBS_QUEUE_URL, JOBS_DLQ_URL, CLIENT_SECRET_ID, PIPEDRIVE_OAUTH_URL, and the AWS
SDK's usual ones (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).`

// Run runs the command in args (without the program name).
func (c *CLI) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n\n%s", ErrUsage, Usage)
	}
	switch args[0] {
	case "show":
		return c.show(ctx, args[1:])
	case "list":
		return c.list(ctx, args[1:])
	case "due":
		return c.due(ctx, args[1:])
	case "refresh":
		return c.refresh(ctx, args[1:])
	case "warm":
		return c.warm(ctx, args[1:])
	case "decrypt":
		return c.decrypt(ctx, args[1:])
	case "migrate":
		return c.migrate(ctx, args[1:])
	case "uninstall":
		return c.uninstall(ctx, args[1:])
	case "pause":
		return c.pause(ctx, args[1:])
	case "webhooks":
		return c.webhooks(ctx, args[1:])
	case "setup":
		return c.setup(ctx, args[1:])
	case "dlq":
		if len(args) < 2 {
			return fmt.Errorf("%w: dlq needs peek or redrive", ErrUsage)
		}
		switch args[1] {
		case "peek":
			return c.dlqPeek(ctx, args[2:])
		case "redrive":
			return c.dlqRedrive(ctx, args[2:])
		}
		return fmt.Errorf("%w: unknown dlq command %q", ErrUsage, args[1])
	case "help", "-h", "-help", "--help":
		fmt.Fprintln(c.Out, Usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q\n\n%s", ErrUsage, args[0], Usage)
}

func (c *CLI) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// flags parses a command's flags; positional arguments are returned.
func flags(name string, args []string, define func(*flag.FlagSet)) (positional []string, asJSON bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&asJSON, "json", false, "JSON output")
	if define != nil {
		define(fs)
	}
	// Flags may follow the positional argument ("show 1:2 -json").
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrUsage, name, err)
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, asJSON, nil
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

func (c *CLI) show(ctx context.Context, args []string) error {
	pos, asJSON, err := flags("show", args, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: show takes one COMPANY:USER", ErrUsage)
	}
	id, err := ParseID(pos[0])
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
	if asJSON {
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

func (c *CLI) list(ctx context.Context, args []string) error {
	var status string
	var limit int
	pos, asJSON, err := flags("list", args, func(fs *flag.FlagSet) {
		fs.StringVar(&status, "status", "", "only this status")
		fs.IntVar(&limit, "limit", 100, "at most this many")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: list takes no arguments", ErrUsage)
	}
	switch installation.Status(status) {
	case "", installation.StatusActive, installation.StatusNeedsReauth, installation.StatusUninstalled:
	default:
		return fmt.Errorf("%w: -status %q is not active, needs_reauthorization or uninstalled", ErrUsage, status)
	}
	if limit <= 0 {
		return fmt.Errorf("%w: -limit must be positive", ErrUsage)
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
	if asJSON {
		return writeJSON(c.Out, views)
	}
	return c.table(views)
}

func (c *CLI) due(ctx context.Context, args []string) error {
	var within time.Duration
	var limit int
	pos, asJSON, err := flags("due", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&within, "within", 0, "include installations due within this time")
		fs.IntVar(&limit, "limit", 100, "at most this many")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 || within < 0 || limit <= 0 {
		return fmt.Errorf("%w: due [-within DURATION>=0] [-limit N>0]", ErrUsage)
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
	if asJSON {
		return writeJSON(c.Out, views)
	}
	return c.table(views)
}

func (c *CLI) refresh(ctx context.Context, args []string) error {
	var force bool
	pos, _, err := flags("refresh", args, func(fs *flag.FlagSet) { fs.BoolVar(&force, "force", false, "refresh even if fresh") })
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: refresh takes one COMPANY:USER", ErrUsage)
	}
	id, err := ParseID(pos[0])
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

func (c *CLI) dlqPeek(ctx context.Context, args []string) error {
	var max int
	pos, asJSON, err := flags("dlq peek", args, func(fs *flag.FlagSet) { fs.IntVar(&max, "max", 10, "at most this many") })
	if err != nil {
		return err
	}
	if len(pos) != 0 || max <= 0 {
		return fmt.Errorf("%w: dlq peek [-max N>0]", ErrUsage)
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
	if asJSON {
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

func (c *CLI) dlqRedrive(ctx context.Context, args []string) error {
	var max int
	pos, _, err := flags("dlq redrive", args, func(fs *flag.FlagSet) { fs.IntVar(&max, "max", 100, "at most this many") })
	if err != nil {
		return err
	}
	if len(pos) != 0 || max <= 0 {
		return fmt.Errorf("%w: dlq redrive [-max N>0]", ErrUsage)
	}
	if c.SQS == nil || c.DeadLetterURL == "" || c.JobsQueueURL == "" {
		return errors.New("dlq redrive: JOBS_DLQ_URL and JOBS_QUEUE_URL must be set")
	}
	moved := 0
	for moved < max {
		// Visibility long enough to send and delete; a crash in between redelivers (the
		// worker is idempotent per job ID, so a duplicate is harmless).
		msgs, err := c.receive(ctx, c.DeadLetterURL, min(10, max-moved), 60)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			// The job goes back with its own attributes, without the dead-letter verdict.
			if _, err := c.SQS.SendMessage(ctx, &sqs.SendMessageInput{
				QueueUrl: aws.String(c.JobsQueueURL), MessageBody: m.Body, MessageAttributes: jobs.RedriveAttributes(m.MessageAttributes),
			}); err != nil {
				return fmt.Errorf("dlq redrive: send %s: %w (moved %d so far)", aws.ToString(m.MessageId), err, moved)
			}
			if _, err := c.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{
				QueueUrl: aws.String(c.DeadLetterURL), ReceiptHandle: m.ReceiptHandle,
			}); err != nil {
				return fmt.Errorf("dlq redrive: delete %s after sending it: %w (moved %d so far)", aws.ToString(m.MessageId), err, moved)
			}
			moved++
		}
	}
	fmt.Fprintf(c.Out, "moved %d job(s) from the dead-letter queue back to the jobs queue\n", moved)
	return nil
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
