package opscli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// SealFunc seals every token the table still holds in clear and says how many items it
// sealed: (*tokenstore.Store).SealPlaintext with the table's client, wired by cmd/pdctl when
// TOKENS_KEY_ID is set.
type SealFunc func(ctx context.Context) (int, error)

func (c *CLI) tokensCommand() *cobra.Command {
	return group("tokens", "the tokens as stored: seal a table from before encryption",
		`Work on how the tokens are stored, never printing one.`,
		c.tokensSealCommand())
}

func (c *CLI) tokensSealCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "seal",
		Short: "seal every token still stored in clear (before turning RefusePlaintextTokens on)",
		Long: `Seal, under the tokens key, every access and refresh token the table still holds as a plain
string (items written before token encryption). Deployments of this template refuse such
tokens (parameter RefusePlaintextTokens, "true" by default), so a table from an older version
is sealed first: deploy with RefusePlaintextTokens=false, run this, deploy with "true". Safe to
run again (it seals nothing the second time) and alongside the functions (each write is
conditioned on the plain value). Needs TOKENS_KEY_ID and a role allowed kms:GenerateDataKey
(the break-glass role).`,
		Example: "  pdctl --stack pdkit-prod tokens seal",
		Args:    noArgs,
		RunE: c.run(func(ctx context.Context, _ []string) error {
			if c.Seal == nil {
				return errors.New("tokens seal: TOKENS_TABLE and TOKENS_KEY_ID must be set (and the role allowed kms:GenerateDataKey)")
			}
			n, err := c.Seal(ctx)
			if err != nil {
				return fmt.Errorf("tokens seal: %w (sealed %d before)", err, n)
			}
			if c.JSON {
				return writeJSON(c.Out, map[string]int{"sealed": n})
			}
			fmt.Fprintf(c.Out, "sealed the tokens of %d installation(s) that held them in clear\n", n)
			return nil
		}),
	}
}
