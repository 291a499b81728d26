package opscli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/deadline"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdapi"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

// APITokenExchanger trades a personal API token for OAuth tokens (grant_type=
// exchange_api_token); *pdoauth.Client satisfies it. Errors carry a pderrors.Decision.
type APITokenExchanger interface {
	ExchangeAPIToken(ctx context.Context, apiToken string) (*pdoauth.Token, error)
}

// Users identifies the user of a fresh access token; *pdapi.Client satisfies it.
type Users interface {
	Me(ctx context.Context, apiDomain, accessToken string) (pdapi.Me, error)
}

// Installs stores an installation (new, or a re-install over an earlier one) and returns it
// with its stored Version; *tokenstore.Store satisfies it.
type Installs interface {
	Install(ctx context.Context, in installation.Installation) (installation.Installation, error)
}

// Enqueuer queues a job; *jobs.Enqueuer satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, j jobs.Job) error
}

// Migrator is what `pdctl migrate` uses: the OAuth client, users/me, the tokens table and,
// optionally, the jobs queue for the new installation's register_webhooks job.
type Migrator struct {
	OAuth    APITokenExchanger
	Users    Users
	Installs Installs
	// Jobs may be nil: the installation is stored, no webhooks are registered.
	Jobs Enqueuer
	// RateLimitWait caps the wait for a 429's Retry-After before the one retry; 429 is the only
	// answer retried, because only it says for sure that the single-use API token was not spent.
	RateLimitWait time.Duration
}

// MigrateOutcome is what one API token came to.
type MigrateOutcome string

// The outcomes, one per kind of answer of the token endpoint and of what follows it.
const (
	// MigrateInstalled: exchanged, identified, stored (and register_webhooks queued).
	MigrateInstalled MigrateOutcome = "installed"
	// MigrateInvalidToken: Pipedrive does not accept the API token (mistyped, revoked, or
	// already exchanged). Nothing was stored; the token was not spent by us.
	MigrateInvalidToken MigrateOutcome = "invalid_api_token"
	// MigrateUnavailable: Pipedrive did not answer usefully (5xx, 429 twice, timeout). Nothing
	// was stored; whether the token was spent is unknown, so run again: "invalid" then means
	// it was spent and the user must install from the install link.
	MigrateUnavailable MigrateOutcome = "pipedrive_unavailable"
	// MigrateConfigError: Pipedrive rejected the app (client id or secret, grant type) or the
	// request; nothing was stored, the token was not spent; fix the configuration and rerun.
	MigrateConfigError MigrateOutcome = "config_error"
	// MigrateNotInstallable: the app cannot be installed for the user's company.
	MigrateNotInstallable MigrateOutcome = "not_installable"
	// MigrateIdentityFailed: tokens were issued but could not be used or tied to a user
	// (untrusted or missing api_domain, users/me failed); nothing was stored and the API token
	// is spent: the user must install from the install link.
	MigrateIdentityFailed MigrateOutcome = "identity_failed"
	// MigrateStoreFailed: the tokens table refused the write; the API token is spent.
	MigrateStoreFailed MigrateOutcome = "store_failed"
)

// MigrateResult is the result for one API token. It never holds the token.
type MigrateResult struct {
	// Line is the input line the token was on (1-based).
	Line    int            `json:"line"`
	Outcome MigrateOutcome `json:"outcome"`
	// Reason is the pderrors reason or our own ("installed", "missing_api_domain", …).
	Reason string `json:"reason"`
	// ID and Version are the stored installation (MigrateInstalled), or the user when known.
	CompanyID int64 `json:"company_id,omitempty"`
	UserID    int64 `json:"user_id,omitempty"`
	Version   int64 `json:"version,omitempty"`
	// Status is Pipedrive's HTTP status for a failed call, 0 if none.
	Status int `json:"status,omitempty"`
	// WebhooksQueued says a register_webhooks job was queued.
	WebhooksQueued bool `json:"webhooks_queued"`
	// Message says what to do, in words for the operator.
	Message string `json:"message"`
}

// Migrate exchanges one API token for an OAuth installation and stores it as an install
// does. It never returns the token or puts it in an error.
func (m *Migrator) Migrate(ctx context.Context, apiToken string) MigrateResult {
	tok, err := m.OAuth.ExchangeAPIToken(ctx, apiToken)
	if d := pderrors.DecisionOf(err); err != nil && d.Status == 429 && d.Action == pderrors.Retry && d.Reason != pderrors.ReasonDailyBudget {
		// A 429 is answered before the grant is looked at: the token is still unspent.
		if deadline.Sleep(ctx, min(max(d.RetryAfter, time.Second), m.rateLimitWait())) == nil {
			tok, err = m.OAuth.ExchangeAPIToken(ctx, apiToken)
		}
	}
	if err != nil {
		return exchangeFailed(err)
	}
	if tok.APIDomain == "" {
		return MigrateResult{Outcome: MigrateIdentityFailed, Reason: "missing_api_domain",
			Message: "Pipedrive's answer had no api_domain; nothing stored. The API token is spent: the user must install the app from the install link."}
	}
	me, err := m.Users.Me(ctx, tok.APIDomain, tok.AccessToken)
	if err != nil {
		d := pderrors.DecisionOf(err)
		return MigrateResult{Outcome: MigrateIdentityFailed, Reason: "users_me_failed", Status: d.Status,
			Message: "tokens issued, but users/me failed (" + errText(err) + "); nothing stored. The API token is spent: the user must install the app from the install link."}
	}
	id := installation.ID{CompanyID: me.CompanyID, UserID: me.ID}
	stored, err := m.Installs.Install(ctx, installation.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		APIDomain: tok.APIDomain, Scopes: tok.Scopes, ExpiresAt: tok.ExpiresAt,
	})
	if err != nil {
		return MigrateResult{Outcome: MigrateStoreFailed, Reason: "store_failed", CompanyID: id.CompanyID, UserID: id.UserID,
			Message: "tokens issued for " + id.String() + ", but storing them failed (" + errText(err) + "). The API token is spent: the user must install the app from the install link."}
	}
	r := MigrateResult{Outcome: MigrateInstalled, Reason: "installed", CompanyID: id.CompanyID, UserID: id.UserID, Version: stored.Version,
		Message: "installed " + id.String() + " (" + me.CompanyDomain + ")"}
	if m.Jobs != nil {
		// The install use case's job id: one per install version, so a rerun registers again.
		err := m.Jobs.Enqueue(ctx, jobs.RegisterWebhooks(id, "v"+strconv.FormatInt(stored.Version, 10)))
		if err != nil {
			r.Message += "; webhook registration could not be queued (" + errText(err) + ")"
		} else {
			r.WebhooksQueued = true
			r.Message += "; webhook registration queued"
		}
	}
	return r
}

// exchangeFailed maps a failed exchange_api_token to its outcome, row by row of the seed's
// OAuth answers.
func exchangeFailed(err error) MigrateResult {
	d := pderrors.DecisionOf(err)
	r := MigrateResult{Reason: string(d.Reason), Status: d.Status}
	switch {
	case errors.Is(err, pdoauth.ErrUntrustedAPIDomain):
		r.Outcome, r.Reason = MigrateIdentityFailed, "untrusted_api_domain"
		r.Message = "Pipedrive's answer named an api_domain tokens must not be sent to; nothing stored. The API token is spent: the user must install the app from the install link."
	case errors.Is(err, pdoauth.ErrNoCredentials):
		r.Outcome, r.Reason = MigrateConfigError, "no_credentials"
		r.Message = "the app's client id and secret could not be read (" + errText(err) + "): check the secret CLIENT_SECRET_ID names; nothing sent to Pipedrive."
	case d.Reason == pderrors.ReasonUnknownError && !errors.As(err, new(*pderrors.Error)):
		// Not an answer of Pipedrive's: the request was never sent (the secret unreadable).
		r.Outcome = MigrateConfigError
		r.Message = "the exchange could not be sent (" + errText(err) + "); nothing stored, the API token is unspent."
	case d.Reason == pderrors.ReasonClientInvalid || d.Reason == pderrors.ReasonClientCredentialsMissing:
		r.Outcome = MigrateConfigError
		r.Message = "Pipedrive rejected the app's client id or secret (" + r.Reason + "): check the secret CLIENT_SECRET_ID names; nothing stored, the API token is unspent."
	case d.Reason == pderrors.ReasonAPITokenInvalid || d.Reason == pderrors.ReasonInvalidGrant:
		r.Outcome = MigrateInvalidToken
		r.Message = "Pipedrive does not accept this API token (mistyped, revoked, or already exchanged); nothing stored. Ask the user for their current API token, or to install the app from the install link."
	case d.Reason == pderrors.ReasonAppNotInstallable:
		r.Outcome = MigrateNotInstallable
		r.Message = "Pipedrive does not allow this app for the user's company; nothing stored."
	case d.Action == pderrors.Retry:
		r.Outcome = MigrateUnavailable
		r.Message = "Pipedrive did not answer (" + string(d.Reason) + "); nothing stored. Run again later; if it then says the token is invalid, this attempt spent it and the user must install from the install link."
	default:
		// Grant type, content type and any other 4xx: our request or Pipedrive's rules for
		// this app. The token endpoint refused before spending the token.
		r.Outcome = MigrateConfigError
		r.Message = "Pipedrive refused the exchange (" + string(d.Reason) + ": " + d.Message + "); nothing stored, the API token is unspent."
	}
	return r
}

func (m *Migrator) rateLimitWait() time.Duration {
	if m.RateLimitWait > 0 {
		return m.RateLimitWait
	}
	return 30 * time.Second
}

// errText is an error of this project's packages (no token, no body) for a message.
func errText(err error) string { return err.Error() }

// ErrMigrateFailed is returned by `migrate` when any API token was not migrated.
var ErrMigrateFailed = errors.New("migrate: not every API token was migrated")

// migrate reads API tokens from c.In, one per line (never from the command line, where
// `ps` and shell history would show them), and migrates each in turn.
func (c *CLI) migrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate < tokens.txt",
		Short: "exchange customers' API tokens for OAuth installations",
		Long: `Exchange customers' personal API tokens (one per line on standard input, never as arguments;
blank lines and # comments are skipped) for OAuth installations, stored sealed as installs are,
each with its register_webhooks job. Prints one outcome per line; exits 1 if any failed. An
exchanged API token is spent: rerun only the lines whose outcome says so.`,
		Example: "  pdctl migrate < tokens.txt\n  pdctl migrate --json < tokens.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("%w: migrate reads API tokens from standard input, one per line, never from arguments", ErrUsage)
			}
			return nil
		},
		RunE: c.run(func(ctx context.Context, _ []string) error { return c.migrate(ctx) }),
	}
}

func (c *CLI) migrate(ctx context.Context) error {
	if c.Migrator == nil {
		return errors.New("migrate: TOKENS_TABLE, CLIENT_SECRET_ID and TOKENS_KEY_ID must be set (tokens are stored sealed)")
	}
	in := c.In
	if in == nil {
		return fmt.Errorf("%w: migrate needs API tokens on standard input", ErrUsage)
	}
	sc := bufio.NewScanner(in)
	var results []MigrateResult
	failed, line := 0, 0
	for sc.Scan() {
		line++
		tok := strings.TrimSpace(sc.Text())
		if tok == "" || strings.HasPrefix(tok, "#") {
			continue
		}
		r := c.Migrator.Migrate(ctx, tok)
		r.Line = line
		if r.Outcome != MigrateInstalled {
			failed++
		}
		results = append(results, r)
		if !c.JSON {
			fmt.Fprintf(c.Out, "line %d: %s: %s\n", r.Line, r.Outcome, r.Message)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("migrate: read standard input: %w", err)
	}
	if len(results) == 0 {
		return fmt.Errorf("%w: no API token on standard input", ErrUsage)
	}
	if c.JSON {
		if err := writeJSON(c.Out, results); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", ErrMigrateFailed, failed, len(results))
	}
	return nil
}
