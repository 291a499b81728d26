package opscli

import (
	"context"
	"errors"
	"fmt"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// WarmFunc sets or clears an installation's always-warm flag and returns it as stored:
// (*tokenstore.Store).SetAlwaysWarm, wired by cmd/pdctl.
type WarmFunc func(ctx context.Context, id installation.ID, on bool) (installation.Installation, error)

// warm runs `pdctl warm COMPANY:USER on|off`: on keeps the installation's access token warm
// whether it is used or not; off lets the adaptive refresh decide again.
func (c *CLI) warm(ctx context.Context, args []string) error {
	pos, asJSON, err := flags("warm", args, nil)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		return fmt.Errorf("%w: warm takes COMPANY:USER and on or off", ErrUsage)
	}
	id, err := ParseID(pos[0])
	if err != nil {
		return err
	}
	if c.Warm == nil {
		return errors.New("warm: TOKENS_TABLE must be set")
	}
	in, err := c.Warm(ctx, id, pos[1] == "on")
	if err != nil {
		return fmt.Errorf("warm %s: %w", id, err)
	}
	if asJSON {
		return writeJSON(c.Out, map[string]any{"company_id": id.CompanyID, "user_id": id.UserID, "always_warm": in.AlwaysWarm, "refresh_due_at": in.RefreshDueAt})
	}
	fmt.Fprintf(c.Out, "%s: always warm %s; next refresh %s\n", id, pos[1], when(in.RefreshDueAt, c.now()))
	return nil
}
