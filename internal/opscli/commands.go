package opscli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commands lists pdctl's commands in the order `pdctl -h` shows them. To add one: write
// `func (c *CLI) xCommand() *cobra.Command` beside its logic (Use, Short, Long, Example, Args
// from exactArgs or noArgs, flags on cmd.Flags(), RunE: c.run(...), output through c.JSON and
// writeJSON), and list it here (a group such as dlq lists its subcommands in group(...)).
// --json, --stack, -h and shell completion come with the root; TestEveryCommandHasHelp and
// TestEveryCommandWritesJSON cover a new command once it is listed.
func (c *CLI) commands() []*cobra.Command {
	return []*cobra.Command{
		c.setupCommand(),
		c.showCommand(),
		c.listCommand(),
		c.dueCommand(),
		c.refreshCommand(),
		c.warmCommand(),
		c.decryptCommand(),
		c.uninstallCommand(),
		c.pauseCommand(),
		c.webhooksCommand(),
		c.dlqCommand(),
		c.migrateCommand(),
		c.tokensCommand(),
	}
}

// rootLong is the root command's help: what pdctl is and where its configuration comes from.
const rootLong = `pdctl: on-call commands for the Pipedrive Lambda kit. Tokens are never read, but by decrypt
and uninstall, which are audited.

Configuration: --stack NAME reads the deployed stack's outputs (TokensTableName, TokensKeyID,
ClientSecretARN, PipedriveOAuthURL, JobsQueueURL, JobsDeadLetterQueueURL, AlertsTopicARN), so
nothing needs exporting; the AWS SDK's usual variables (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL) choose the account and region. Without --stack it reads the functions'
variables: TOKENS_TABLE, TOKENS_KEY_ID, CLIENT_SECRET_ID, PIPEDRIVE_OAUTH_URL, JOBS_QUEUE_URL,
JOBS_DLQ_URL, ALERTS_TOPIC_ARN. A command whose configuration is missing says which.

--json (before or after the command) prints JSON for every command. Flags may also be written
with one dash (-json, -max 5), as before.
Exit status: 0 done, 1 failed, 2 the command line was wrong.`

// Root builds pdctl's command tree on c. Run is the usual entry point; Root is for callers
// that need the tree itself (documentation, completion scripts).
func (c *CLI) Root() *cobra.Command {
	root := &cobra.Command{
		Use:   "pdctl",
		Short: "on-call commands for the Pipedrive Lambda kit",
		Long:  rootLong,
		Example: `  pdctl --stack pdkit-prod show 3408256:5206648
  pdctl --stack pdkit-prod due --within 1h --json
  pdctl dlq peek --max 5
  source <(pdctl completion bash)`,
		Args: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
		// pdctl prints the error once, itself (cmd/pdctl); help on an error would bury it.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().BoolVar(&c.JSON, "json", false, "print JSON (every command)")
	root.PersistentFlags().StringVar(&c.Stack, "stack", "", "read the configuration from this CloudFormation stack's outputs")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w: %s: %v (see %s -h)", ErrUsage, cmd.CommandPath(), err, cmd.CommandPath())
	})
	root.AddCommand(c.commands()...)
	root.SetOut(c.Out)
	root.SetErr(c.Out)
	if c.In != nil {
		root.SetIn(c.In)
	}
	return root
}

// Run runs the command line args (without the program name): help (-h, help) is not an
// error; a command line pdctl cannot run is an error wrapping ErrUsage.
func (c *CLI) Run(ctx context.Context, args []string) error {
	root := c.Root()
	root.SetArgs(doubleDash(root, args))
	return root.ExecuteContext(ctx)
}

// run is a command's RunE: it connects (Connect, once) and runs fn with the command's
// context, so help and completion never need AWS.
func (c *CLI) run(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if c.Connect != nil && !c.connected {
			if err := c.Connect(ctx, c); err != nil {
				return err
			}
			c.connected = true
		}
		return fn(ctx, args)
	}
}

// group is a command that only holds subcommands (dlq, pause, webhooks): run alone or with an
// unknown subcommand, it is a usage error listing them.
func group(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	g := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
		RunE: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
	}
	g.AddCommand(subs...)
	return g
}

// unknownCommand is the usage error of a command line that names no command of cmd.
func unknownCommand(cmd *cobra.Command, args []string) error {
	var names []string
	for _, s := range cmd.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: %s needs a command: %s (see %s -h)", ErrUsage, cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
	}
	hint := ""
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return fmt.Errorf("%w: unknown command %q for %s%s (commands: %s)", ErrUsage, args[0], cmd.CommandPath(), hint, strings.Join(names, ", "))
}

// exactArgs accepts exactly n positional arguments, named in the command's Use.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s takes %s (got %d argument(s); see %s -h)", ErrUsage, cmd.CommandPath(), argsOf(cmd), len(args), cmd.CommandPath())
		}
		return nil
	}
}

// noArgs accepts no positional argument.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: %s takes no arguments, got %q (see %s -h)", ErrUsage, cmd.CommandPath(), args, cmd.CommandPath())
	}
	return nil
}

// argsOf is the positional part of a command's Use ("COMPANY:USER on|off").
func argsOf(cmd *cobra.Command) string {
	_, rest, _ := strings.Cut(cmd.Use, " ")
	return rest
}

// doubleDash rewrites the one-dash long flags of pdctl's earlier parser (-json, -max 5,
// -reason=…) to the two-dash form, for the flag names the command tree defines; "-h", "-1m"
// (a value) and everything after "--" stay as they are.
func doubleDash(root *cobra.Command, args []string) []string {
	names := map[string]bool{"help": true} // cobra adds -h/--help when it runs
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		add := func(f *pflag.Flag) { names[f.Name] = true }
		cmd.LocalFlags().VisitAll(add)
		cmd.PersistentFlags().VisitAll(add)
		for _, s := range cmd.Commands() {
			walk(s)
		}
	}
	walk(root)
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if names[name] {
			out[i] = "-" + a
		}
	}
	return out
}
