package opscli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
)

// TokenReader reads one installation with its tokens opened: (*tokenstore.Store).Get, which
// needs kms:Decrypt on the tokens key. cmd/pdctl wires it only for the decrypt command.
type TokenReader interface {
	Get(ctx context.Context, id installation.ID) (installation.Installation, error)
}

// Auditor records a decryption before any token is shown; its Log and Who also record
// `webhooks register`.
type Auditor struct {
	// Log receives the structured audit line (pdctl: JSON on stderr). Required.
	Log *slog.Logger
	// Alerts publishes the "tokens_decrypted" alert for every decryption; it must not
	// de-duplicate (pdctl wires the alerts publisher without its dedupe marks). A failed
	// publish refuses the decryption (no token is shown without the audit trail); without
	// Alerts decrypt refuses unless told --no-audit, which is logged.
	Alerts oncall.Sender
	// Who names the operator (the AWS caller identity and the local user); "unknown" if nil.
	Who func(ctx context.Context) string
}

// AlertTokensDecrypted is the alert reason of a decryption.
const AlertTokensDecrypted = "tokens_decrypted"

// minReason keeps an audited reason a sentence, not "x".
const minReason = 10

// auditedTarget reads the one COMPANY:USER and the --reason of an audited command (decrypt,
// uninstall).
func auditedTarget(cmd string, arg string, reason string) (installation.ID, string, error) {
	id, err := ParseID(arg)
	if err != nil {
		return installation.ID{}, "", err
	}
	reason = strings.TrimSpace(reason)
	if len(reason) < minReason {
		return installation.ID{}, "", fmt.Errorf("%w: %s needs --reason \"…\" (at least %d characters): it is audited", ErrUsage, cmd, minReason)
	}
	return id, reason, nil
}

func (c *CLI) decryptCommand() *cobra.Command {
	var reason string
	var withRefresh, noAudit bool
	cmd := &cobra.Command{
		Use:   "decrypt COMPANY:USER --reason \"…\"",
		Short: "print an installation's access token, audited and alerted",
		Long: fmt.Sprintf(`Print one installation's access token (and its refresh token only with --refresh-token), for
reproducing a customer's problem by hand. The only command that prints a token: before it reads
one it logs who (the AWS caller identity and the local user), when and why (--reason, at least
%d characters) to standard error and publishes the %q alert, every time (never
de-duplicated); a failed alert decrypts nothing, and without an alerts topic (ALERTS_TOPIC_ARN)
decrypt refuses unless told --no-audit, which the audit line records. Needs TOKENS_KEY_ID and
a role allowed kms:Decrypt (the stack's BreakGlassRoleARN).`, minReason, AlertTokensDecrypted),
		Example: "  pdctl decrypt 3408256:5206648 --reason \"ticket 4711: reproduce a 403\"",
		Args:    exactArgs(1),
		RunE: c.run(func(ctx context.Context, args []string) error {
			return c.decrypt(ctx, args[0], reason, withRefresh, noAudit)
		}),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the token is needed (audited; required)")
	cmd.Flags().BoolVar(&withRefresh, "refresh-token", false, "also print the refresh token")
	cmd.Flags().BoolVar(&noAudit, "no-audit", false, "decrypt without an alerts topic (only the audit log line records it)")
	return cmd
}

// decrypt prints an installation's access token (and its refresh token with --refresh-token),
// after recording who, when and why.
func (c *CLI) decrypt(ctx context.Context, arg, reason string, withRefresh, noAudit bool) error {
	id, reason, err := auditedTarget("decrypt", arg, reason)
	if err != nil {
		return err
	}
	if c.Tokens == nil || c.Audit == nil || c.Audit.Log == nil {
		return errors.New("decrypt: TOKENS_TABLE and TOKENS_KEY_ID must be set (and the role allowed kms:Decrypt)")
	}
	if c.Audit.Alerts == nil && !noAudit {
		return errors.New("decrypt: no alerts topic (ALERTS_TOPIC_ARN or --stack) for the audit alert: nothing decrypted; --no-audit decrypts with the audit log line only")
	}
	fields := "access_token"
	if withRefresh {
		fields += ",refresh_token"
	}
	who := "unknown"
	if c.Audit.Who != nil {
		who = c.Audit.Who(ctx)
	}
	// The audit comes first: a token is shown only once its reading is on record.
	c.Audit.Log.LogAttrs(ctx, slog.LevelWarn, "tokens decrypted by an operator",
		slog.String("action", "decrypt_tokens"), slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
		slog.String("operator", who), slog.String("reason", reason), slog.String("fields", fields),
		slog.Time("at", c.now().UTC()), slog.Bool("audit_alert", c.Audit.Alerts != nil))
	if c.Audit.Alerts != nil {
		err := c.Audit.Alerts.Alert(ctx, oncall.Alert{
			Reason: AlertTokensDecrypted, Severity: oncall.SeverityWarning, CompanyID: id.CompanyID, UserID: id.UserID,
			Summary: "An operator decrypted an installation's tokens",
			Detail:  shorten(fmt.Sprintf("operator %s, fields %s, reason: %s", who, fields, reason), 280),
		})
		if err != nil {
			return fmt.Errorf("decrypt %s: audit alert not published, nothing decrypted: %w", id, err)
		}
	}
	in, err := c.Tokens.Get(ctx, id)
	if errors.Is(err, installation.ErrNotFound) {
		return fmt.Errorf("decrypt: no installation %s", id)
	}
	if err != nil {
		return fmt.Errorf("decrypt %s: %w", id, err)
	}
	if in.AccessToken == "" {
		return fmt.Errorf("decrypt %s: no tokens stored (status %s)", id, in.Status)
	}
	out := struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token,omitempty"`
		APIDomain    string `json:"api_domain,omitempty"`
	}{AccessToken: in.AccessToken, APIDomain: in.APIDomain}
	if withRefresh {
		out.RefreshToken = in.RefreshToken
	}
	w := c.TokensOut
	if w == nil {
		w = c.Out
	}
	if c.JSON {
		return writeJSON(w, out)
	}
	fmt.Fprintf(w, "access_token\t%s\n", out.AccessToken)
	if withRefresh {
		fmt.Fprintf(w, "refresh_token\t%s\n", out.RefreshToken)
	}
	return nil
}
