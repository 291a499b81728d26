package opscli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// Pauses reads and lifts companies' pauses; *tokenstore.Store satisfies it. Gate returns the
// company's gate record (the zero Gate when there is none); LiftPause reports whether a pause
// was in force.
type Pauses interface {
	Gate(ctx context.Context, companyID int64) (tokenstore.Gate, error)
	LiftPause(ctx context.Context, companyID int64) (bool, error)
}

// PauseView is `pdctl pause show`'s JSON: the company's pause and its tokens' burst holds.
type PauseView struct {
	CompanyID int64                `json:"company_id"`
	Paused    bool                 `json:"paused"`
	Reason    string               `json:"reason,omitempty"`
	Since     time.Time            `json:"since,omitzero"`
	ProbeAt   time.Time            `json:"probe_at,omitzero"`
	Holds     map[string]time.Time `json:"holds,omitempty"`
}

func (c *CLI) pauseCommand() *cobra.Command {
	sub := func(verb, short, long string) *cobra.Command {
		return &cobra.Command{
			Use: verb + " COMPANY", Short: short, Long: long,
			Example: "  pdctl pause " + verb + " 3408256",
			Args:    exactArgs(1),
			RunE:    c.run(func(ctx context.Context, args []string) error { return c.pause(ctx, verb, args[0]) }),
		}
	}
	return group("pause", "a company's pause of Pipedrive calls: show, lift",
		`A company's pause of Pipedrive calls: the kit stops calling Pipedrive for a company whose daily
budget is spent, whose account answers 402 (payment), feature capping or 415, and probes again
later.`,
		sub("show", "the company's pause, its next probe and its tokens' burst holds",
			`Show whether the company's Pipedrive calls are paused, why and since when, when the next probe
runs, and its tokens' burst holds.`),
		sub("lift", "end the company's pause now (after its account was fixed)",
			`End the company's pause now, once its account was fixed: its jobs run when they next come back
(within 15 minutes).`))
}

// pause serves `pdctl pause show COMPANY` and `pdctl pause lift COMPANY`.
func (c *CLI) pause(ctx context.Context, verb, arg string) error {
	companyID, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || companyID <= 0 {
		return fmt.Errorf("%w: pause %s: %q is not a company id", ErrUsage, verb, arg)
	}
	if c.Pauses == nil {
		return errors.New("pause: TOKENS_TABLE is not set")
	}
	if verb == "lift" {
		lifted, err := c.Pauses.LiftPause(ctx, companyID)
		if err != nil {
			return fmt.Errorf("pause lift %d: %w", companyID, err)
		}
		if c.JSON {
			return writeJSON(c.Out, map[string]any{"company_id": companyID, "lifted": lifted})
		}
		if !lifted {
			fmt.Fprintf(c.Out, "company %d was not paused\n", companyID)
			return nil
		}
		fmt.Fprintf(c.Out, "company %d: pause lifted; its jobs run when they next come back (within 15 minutes)\n", companyID)
		return nil
	}
	g, err := c.Pauses.Gate(ctx, companyID)
	if err != nil {
		return fmt.Errorf("pause show %d: %w", companyID, err)
	}
	v := PauseView{CompanyID: companyID, Paused: g.Paused, Reason: g.Reason, Since: g.Since, ProbeAt: g.ProbeAt, Holds: g.Holds}
	if c.JSON {
		return writeJSON(c.Out, v)
	}
	now := c.now()
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "company\t%d\n", companyID)
	if !g.Paused {
		fmt.Fprintf(w, "paused\tno\n")
	} else {
		fmt.Fprintf(w, "paused\t%s\n", g.Reason)
		fmt.Fprintf(w, "since\t%s\n", when(g.Since, now))
		fmt.Fprintf(w, "next probe\t%s\n", when(g.ProbeAt, now))
	}
	keys := make([]string, 0, len(g.Holds))
	for k := range g.Holds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "hold %s\t%s\n", k, when(g.Holds[k], now))
	}
	return w.Flush()
}
