package opscli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Revoker revokes a token at Pipedrive's /oauth/revoke; *pdoauth.Client satisfies it. hint is
// "refresh_token" or "access_token"; revoking the refresh token revokes all of the user's
// tokens and ends the app's installation at Pipedrive.
type Revoker interface {
	Revoke(ctx context.Context, token, hint string) error
}

// Remover marks an installation uninstalled and deletes its tokens; *tokenstore.Store
// satisfies it (an error wrapping installation.ErrNotFound for an unknown id; uninstalling
// again is not an error).
type Remover interface {
	Uninstall(ctx context.Context, id installation.ID) (installation.Installation, error)
}

// Uninstaller serves `pdctl uninstall`: the vendor ends an installation. It reads the tokens
// (never printing them), revokes them at Pipedrive and marks the installation uninstalled,
// after an audit line naming who and why. Tokens, OAuth, Store and Log are required.
type Uninstaller struct {
	// Tokens reads the installation with its tokens opened ((*tokenstore.Store).Get).
	Tokens interface {
		Get(ctx context.Context, id installation.ID) (installation.Installation, error)
	}
	OAuth Revoker
	Store Remover
	// Log receives the audit line (pdctl: JSON on stderr).
	Log *slog.Logger
	// Who names the operator; "unknown" if nil.
	Who func(ctx context.Context) string
}

func (c *CLI) uninstallCommand() *cobra.Command {
	var reason string
	var force bool
	cmd := &cobra.Command{
		Use:   "uninstall COMPANY:USER --reason \"…\"",
		Short: "end an installation: revoke its tokens at Pipedrive, then mark it uninstalled",
		Long: `End one installation as the vendor: revoke its refresh token at Pipedrive (which ends the
app's installation there and every token of the user), then mark it uninstalled and delete its
tokens. Audited like decrypt (who, when, --reason). A failed revoke changes nothing unless
--force, which marks it uninstalled all the same (for a grant Pipedrive no longer knows).`,
		Example: "  pdctl uninstall 3408256:5206648 --reason \"customer asked by ticket 4711\"",
		Args:    exactArgs(1),
		RunE:    c.run(func(ctx context.Context, args []string) error { return c.uninstall(ctx, args[0], reason, force) }),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the installation is ended (audited; required)")
	cmd.Flags().BoolVar(&force, "force", false, "mark it uninstalled even if Pipedrive's revoke fails")
	return cmd
}

// uninstall revokes an installation's tokens at Pipedrive and marks it uninstalled. A failed
// revoke changes nothing unless -force: then the installation is marked uninstalled all the
// same (its tokens deleted here), for a grant Pipedrive no longer knows.
func (c *CLI) uninstall(ctx context.Context, arg, reason string, force bool) error {
	id, reason, err := auditedTarget("uninstall", arg, reason)
	if err != nil {
		return err
	}
	u := c.Uninstall
	if u == nil || u.Tokens == nil || u.OAuth == nil || u.Store == nil || u.Log == nil {
		return errors.New("uninstall: TOKENS_TABLE, TOKENS_KEY_ID and CLIENT_SECRET_ID must be set (and the role allowed kms:Decrypt)")
	}
	who := "unknown"
	if u.Who != nil {
		who = u.Who(ctx)
	}
	u.Log.LogAttrs(ctx, slog.LevelWarn, "installation ended by an operator",
		slog.String("action", "uninstall"), slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
		slog.String("operator", who), slog.String("reason", reason), slog.Bool("force", force), slog.Time("at", c.now().UTC()))

	in, err := u.Tokens.Get(ctx, id)
	if errors.Is(err, installation.ErrNotFound) {
		return fmt.Errorf("uninstall: no installation %s", id)
	}
	if err != nil {
		return fmt.Errorf("uninstall %s: read: %w", id, err)
	}
	revoked := "no tokens stored"
	token, hint := in.RefreshToken, "refresh_token" // revokes every token of the user
	if token == "" {
		token, hint = in.AccessToken, "access_token"
	}
	if token != "" {
		if err := u.OAuth.Revoke(ctx, token, hint); err != nil {
			if !force {
				return fmt.Errorf("uninstall %s: revoke at Pipedrive failed, nothing changed (--force marks it uninstalled anyway): %w", id, err)
			}
			revoked = "revoke failed (forced): " + shorten(err.Error(), 120)
		} else {
			revoked = hint + " revoked at Pipedrive"
		}
	}
	out, err := u.Store.Uninstall(ctx, id)
	if err != nil {
		return fmt.Errorf("uninstall %s: %s, but marking it uninstalled failed: %w", id, revoked, err)
	}
	u.Log.LogAttrs(ctx, slog.LevelInfo, "installation uninstalled",
		slog.String("action", "uninstall"), slog.Int64("company_id", id.CompanyID), slog.Int64("user_id", id.UserID),
		slog.String("revoke", revoked), slog.Int64("version", out.Version))
	if c.JSON {
		return writeJSON(c.Out, struct {
			CompanyID int64               `json:"company_id"`
			UserID    int64               `json:"user_id"`
			Status    installation.Status `json:"status"`
			Version   int64               `json:"version"`
			Revoke    string              `json:"revoke"`
		}{id.CompanyID, id.UserID, out.Status, out.Version, revoked})
	}
	fmt.Fprintf(c.Out, "%s: %s; status %s (version %d)\n", id, revoked, out.Status, out.Version)
	return nil
}
