package opscli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// WarmFunc sets or clears an installation's always-warm flag and returns it as stored:
// (*tokenstore.Store).SetAlwaysWarm, wired by cmd/pdctl.
type WarmFunc func(ctx context.Context, id installation.ID, on bool) (installation.Installation, error)

func (c *CLI) warmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "warm COMPANY:USER on|off",
		Short: "keep an installation's access token warm even when idle (on), or adaptive (off)",
		Long: `Set an installation's always-warm flag. on: the refresher keeps its access token fresh whether
the app uses it or not (for an installation whose first call must not wait for a refresh).
off: the adaptive refresh decides again from the installation's use.`,
		Example: "  pdctl warm 3408256:5206648 on",
		Args:    exactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: c.run(func(ctx context.Context, args []string) error { return c.warm(ctx, args[0], args[1]) }),
	}
}

// warm runs `pdctl warm COMPANY:USER on|off`: on keeps the installation's access token warm
// whether it is used or not; off lets the adaptive refresh decide again.
func (c *CLI) warm(ctx context.Context, arg, onOff string) error {
	if onOff != "on" && onOff != "off" {
		return fmt.Errorf("%w: warm takes COMPANY:USER and on or off, not %q", ErrUsage, onOff)
	}
	id, err := ParseID(arg)
	if err != nil {
		return err
	}
	if c.Warm == nil {
		return errors.New("warm: TOKENS_TABLE must be set")
	}
	in, err := c.Warm(ctx, id, onOff == "on")
	if err != nil {
		return fmt.Errorf("warm %s: %w", id, err)
	}
	if c.JSON {
		return writeJSON(c.Out, map[string]any{"company_id": id.CompanyID, "user_id": id.UserID, "always_warm": in.AlwaysWarm, "refresh_due_at": in.RefreshDueAt})
	}
	fmt.Fprintf(c.Out, "%s: always warm %s; next refresh %s\n", id, onOff, when(in.RefreshDueAt, c.now()))
	return nil
}
