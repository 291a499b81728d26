package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// pdctl builds this command once per test binary and returns its path.
func pdctl(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pdctl-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "pdctl")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/pdctl: %v", buildErr)
	}
	return binary
}

// result is one run of the pdctl binary.
type result struct {
	code           int
	stdout, stderr string
}

// exec runs pdctl with args, the environment env (nothing of the caller's but PATH and HOME)
// and stdin.
func run(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pdctl(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("pdctl %q: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// TestHelpExitsZero: help for the root, a command and a subcommand, in every spelling, exits 0
// with the command's explanation on stdout; a wrong command line exits 2 and says why. No AWS
// configuration at all: help never connects.
func TestHelpExitsZero(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-h"}, []string{"on-call commands", "--stack", "--json", "show", "dlq", "completion"}},
		{[]string{"--help"}, []string{"on-call commands"}},
		{[]string{"help"}, []string{"on-call commands"}},
		{[]string{"show", "-h"}, []string{"pdctl show COMPANY:USER", "never the token", "--json", "--stack"}},
		{[]string{"help", "show"}, []string{"pdctl show COMPANY:USER"}},
		{[]string{"show", "-help"}, []string{"pdctl show COMPANY:USER"}},
		{[]string{"dlq", "redrive", "-h"}, []string{"pdctl dlq redrive", "--max", "back to the jobs queue"}},
		{[]string{"dlq", "-h"}, []string{"peek", "redrive"}},
		{[]string{"--json", "decrypt", "--help"}, []string{"--reason", "audited"}},
	} {
		r := run(t, nil, "", tt.args...)
		if r.code != 0 {
			t.Errorf("pdctl %q exit %d (stderr %q), want 0", tt.args, r.code, r.stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("pdctl %q printed no %q:\n%s", tt.args, w, r.stdout)
			}
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "needs a command"},
		{[]string{"shw", "1:2"}, "did you mean show"},
		{[]string{"show"}, "takes COMPANY:USER"},
		{[]string{"show", "1:2", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"dlq"}, "peek, redrive"},
		{[]string{"dlq", "redrive", "--max", "x"}, "invalid argument"},
	} {
		r := run(t, nil, "", tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
			t.Errorf("pdctl %q = exit %d, stderr %q, stdout %q; want exit 2 saying %q", tt.args, r.code, r.stderr, r.stdout, tt.want)
		}
	}
}

// TestCompletion: pdctl writes shell completion scripts, and completes commands and values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := run(t, nil, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "pdctl") {
			t.Errorf("pdctl completion %s = exit %d, %d bytes; want a script", shell, r.code, len(r.stdout))
		}
	}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "d"}, []string{"decrypt", "dlq", "due"}},
		{[]string{"__complete", "dlq", ""}, []string{"peek", "redrive"}},
		{[]string{"__complete", "warm", "1:2", ""}, []string{"on", "off"}},
		{[]string{"__complete", "list", "--status", ""}, []string{"active", "needs_reauthorization", "uninstalled"}},
	} {
		r := run(t, nil, "", tt.args...)
		var offered []string // "name\tdescription" lines, then ":directive"
		for _, line := range strings.Split(r.stdout, "\n") {
			name, _, _ := strings.Cut(line, "\t")
			offered = append(offered, name)
		}
		for _, w := range tt.want {
			if r.code != 0 || !slices.Contains(offered, w) {
				t.Errorf("pdctl %q = exit %d, %q; want %q offered", tt.args, r.code, r.stdout, w)
			}
		}
	}
}

// stackOutputs is the stand-in for the deployed stack: moto's CloudFormation cannot run the
// SAM transform, so the test provisions template.yaml's resources with internal/infra (as
// every AWS test does) and creates a stack in moto's CloudFormation whose Outputs carry the
// same keys as template.yaml's, with the values the template's !Ref would give them.
// pdctl --stack then reads them through CloudFormation's DescribeStacks like any stack.
func stackOutputs(t *testing.T, r *infra.Resources, oauthURL string) map[string]string {
	t.Helper()
	var tpl struct {
		Outputs map[string]struct {
			Value yaml.Node `yaml:"Value"`
		} `yaml:"Outputs"`
	}
	if err := yaml.Unmarshal(pdkit.Template, &tpl); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for key := range wire.StackOutputs {
		o, ok := tpl.Outputs[key]
		if !ok {
			t.Fatalf("template.yaml has no output %s, which pdctl --stack reads (wire.StackOutputs)", key)
		}
		if o.Value.Tag != "!Ref" {
			t.Fatalf("template.yaml output %s = %s %q, want a !Ref", key, o.Value.Tag, o.Value.Value)
		}
		if v, ok := r.Ref(o.Value.Value); ok {
			out[key] = v
		} else if o.Value.Value == "PipedriveOAuthURL" {
			out[key] = oauthURL
		} else {
			t.Fatalf("template.yaml output %s: !Ref %s is neither a provisioned resource nor PipedriveOAuthURL", key, o.Value.Value)
		}
	}
	return out
}

// createStack creates the stand-in stack in moto's CloudFormation and returns its name.
func createStack(t *testing.T, outputs map[string]string) string {
	t.Helper()
	type output struct {
		Value string `json:"Value"`
	}
	body := map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Resources":                map[string]any{"Placeholder": map[string]any{"Type": "AWS::SQS::Queue"}},
		"Outputs":                  map[string]output{},
	}
	for k, v := range outputs {
		body["Outputs"].(map[string]output)[k] = output{v}
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSuffix(testenv.Prefix(t), "-")
	name = strings.ReplaceAll(name, "_", "-")
	cfn := cloudformation.NewFromConfig(testenv.AWS(t))
	if _, err := cfn.CreateStack(t.Context(), &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(b))}); err != nil {
		t.Fatalf("CreateStack: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cfn.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
	})
	got, err := cfn.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil || len(got.Stacks) != 1 || got.Stacks[0].StackStatus != cfntypes.StackStatusCreateComplete {
		t.Fatalf("DescribeStacks(%s) = %+v, %v; want one stack created", name, got, err)
	}
	return name
}

// leaves lists every runnable command path of pdctl ("show", "dlq redrive"), without cobra's
// own (help, completion).
func leaves(cmd *cobra.Command) []string {
	var out []string
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.HasSubCommands() {
			out = append(out, leaves(c)...)
			continue
		}
		out = append(out, strings.TrimPrefix(c.CommandPath(), "pdctl "))
	}
	return out
}

// TestStackAndJSONForEveryCommand runs every pdctl command as an operator would: the binary,
// configured only by --stack (no TOKENS_TABLE or other variable exported, just the AWS SDK's
// endpoint and credentials), against moto and the Pipedrive simulator, with --json before or
// after the command. Each exits 0 and prints JSON. A new command must add its row: the test
// fails for a command of the tree it does not run.
func TestStackAndJSONForEveryCommand(t *testing.T) {
	res := testenv.Provision(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	stack := createStack(t, stackOutputs(t, res, sim.URL))
	env := append(testenv.Env(t, &infra.Resources{}), pdoauth.EnvAllowLoopback+"=true")
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); slices.Contains(slices.Collect(maps.Values(wire.StackOutputs)), k) {
			t.Fatalf("the test environment sets %s: --stack would not be what configures pdctl", k)
		}
	}

	// One installation the simulator knows, sealed as the callback stores it.
	store := &tokenstore.Store{DB: dynamodb.NewFromConfig(testenv.AWS(t)), Table: res.TableName, Cipher: testenv.Cipher(t, res)}
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	id := installation.ID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	if _, err := store.Install(t.Context(), installation.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: sim.URL,
		Scopes: []string{"base"}, ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	company := strings.Split(id.String(), ":")[0]

	rows := []struct {
		command string // the command path, as leaves names it
		args    []string
		stdin   string
		want    string // in the JSON
	}{
		// The secret's own values again: the rows below still run with them.
		{"setup", []string{"setup", "--client-id", testenv.ClientID, "--json"}, testenv.ClientSecret + "\n", `"client_id": "` + testenv.ClientID + `"`},
		{"show", []string{"--json", "show", id.String()}, "", `"status": "active"`},
		{"list", []string{"list", "--json"}, "", `"company_id": ` + company},
		{"due", []string{"due", "--within", "2h", "-json"}, "", `"company_id": ` + company},
		{"warm", []string{"--json", "warm", id.String(), "on"}, "", `"always_warm": true`},
		{"pause show", []string{"pause", "show", company, "--json"}, "", `"paused": false`},
		{"pause lift", []string{"--json", "pause", "lift", company}, "", `"lifted": false`},
		{"webhooks register", []string{"webhooks", "register", id.String(), "--json"}, "", `"enqueued": 1`},
		{"webhooks check", []string{"webhooks", "check", id.String(), "--json"}, "", `"enqueued": 1`},
		{"webhooks catch-up", []string{"--json", "webhooks", "catch-up", id.String(), "--since", "24h"}, "", `"enqueued": 1`},
		{"webhooks rotate-key", []string{"webhooks", "rotate-key", "--json"}, "", `"previous_key_id": "` + webhook.KeyID([]byte(testenv.WebhookKey)) + `"`},
		{"dlq peek", []string{"--json", "dlq", "peek"}, "", `[]`},
		{"dlq redrive", []string{"dlq", "redrive", "--json"}, "", `"moved": 0`},
		{"tokens seal", []string{"tokens", "seal", "--json"}, "", `"sealed": 0`},
		{"refresh", []string{"--json", "refresh", "--force", id.String()}, "", `"outcome": "refreshed"`},
		{"decrypt", []string{"decrypt", id.String(), "--reason", "prove --stack and --json", "--json"}, "", `"access_token": "`},
		{"migrate", []string{"--json", "migrate"}, sim.AddAPIToken(pdsim.DefaultUserID) + "\n", `"outcome": "installed"`},
		{"uninstall", []string{"uninstall", id.String(), "--reason", "prove --stack and --json", "--json"}, "", `"status": "uninstalled"`},
	}
	var ran []string
	for _, row := range rows {
		ran = append(ran, row.command)
		r := run(t, env, row.stdin, append([]string{"--stack", stack}, row.args...)...)
		if r.code != 0 {
			t.Errorf("pdctl --stack %s %q = exit %d, stderr %q", stack, row.args, r.code, r.stderr)
			continue
		}
		if !json.Valid([]byte(r.stdout)) || !strings.Contains(r.stdout, row.want) {
			t.Errorf("pdctl %q printed %q, want JSON with %s", row.args, r.stdout, row.want)
		}
	}
	for _, c := range leaves((&opscli.CLI{}).Root()) {
		if !slices.Contains(ran, c) {
			t.Errorf("pdctl %s is not run with --json here: add its row", c)
		}
	}

	// A stack that does not exist: a clear error naming it, exit 1.
	r := run(t, env, "", "--stack", "no-such-stack", "show", id.String())
	if r.code != 1 || !strings.Contains(r.stderr, "no-such-stack") {
		t.Errorf("pdctl --stack no-such-stack show = exit %d, stderr %q; want exit 1 naming the stack", r.code, r.stderr)
	}
}
