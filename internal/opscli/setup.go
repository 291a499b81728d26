package opscli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
)

// SecretStore is the part of Secrets Manager `setup` uses; *secretsmanager.Client satisfies it.
type SecretStore interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Setup writes the app's client id and secret (from Developer Hub) into the stack's client
// secret (CLIENT_SECRET_ID), keeping every other field (the generated state_key, a webhook
// pair), and reads the result back as the functions will.
type Setup struct {
	Secrets  SecretStore
	SecretID string
}

// SetupResult is what Set changed; it holds no secret.
type SetupResult struct {
	SecretID  string `json:"secret_id"`
	VersionID string `json:"version_id"`
	ClientID  string `json:"client_id"`
	// WasConfigured is false when the secret still held the deploy's placeholders.
	WasConfigured bool `json:"was_configured"`
}

// Set stores clientID and clientSecret. It refuses empty values, values with whitespace
// inside and the placeholder, and a secret whose current value is not a JSON object; errors
// never quote a value.
func (s *Setup) Set(ctx context.Context, clientID, clientSecret string) (SetupResult, error) {
	clientID, clientSecret = strings.TrimSpace(clientID), strings.TrimSpace(clientSecret)
	for _, f := range []struct{ name, v string }{{"client id", clientID}, {"client secret", clientSecret}} {
		switch {
		case f.v == "":
			return SetupResult{}, fmt.Errorf("setup: the %s is empty", f.name)
		case strings.ContainsAny(f.v, " \t\r\n"):
			return SetupResult{}, fmt.Errorf("setup: the %s contains whitespace: copy it again from Developer Hub", f.name)
		case strings.EqualFold(f.v, clientcreds.Placeholder):
			return SetupResult{}, fmt.Errorf("setup: the %s is the %s placeholder", f.name, clientcreds.Placeholder)
		}
	}
	cur, err := s.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID)})
	if err != nil {
		return SetupResult{}, fmt.Errorf("setup: read secret %s: %w", s.SecretID, err)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(cur.SecretString)), &fields); err != nil || fields == nil {
		return SetupResult{}, fmt.Errorf("setup: secret %s is not a JSON object; expected the stack's {\"client_id\",\"client_secret\",\"state_key\"}", s.SecretID)
	}
	oldID, _ := fields["client_id"].(string)
	res := SetupResult{SecretID: s.SecretID, ClientID: clientID, WasConfigured: oldID != "" && !strings.EqualFold(oldID, clientcreds.Placeholder)}
	fields["client_id"], fields["client_secret"] = clientID, clientSecret
	body, err := json.Marshal(fields)
	if err != nil {
		return SetupResult{}, fmt.Errorf("setup: encode secret: %w", err)
	}
	if _, err := s.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(s.SecretID), SecretString: aws.String(string(body))}); err != nil {
		return SetupResult{}, fmt.Errorf("setup: write secret %s: %w", s.SecretID, err)
	}
	// Read back through the functions' own reader: what they will accept.
	got, err := (&clientcreds.Source{Client: s.Secrets, SecretID: s.SecretID}).Load(ctx)
	if err != nil {
		return res, fmt.Errorf("setup: the secret was written but the functions would not accept it: %w", err)
	}
	res.VersionID = got.VersionID
	return res, nil
}

func (c *CLI) setupCommand() *cobra.Command {
	var clientID string
	cmd := &cobra.Command{
		Use:   "setup --client-id ID < client-secret.txt",
		Short: "after the first deploy: store the app's client id and secret in the stack's secret",
		Long: `Store the app's Client ID and Client secret, from its OAuth settings in Pipedrive's Developer
Hub, in the stack's client secret (ClientSecretARN), keeping the generated state_key. The
client secret is read from the first line of standard input, never from an argument (which ps
and shell history would show). Until this is done the functions answer "not configured"; they
pick the new value up at the next request, without a redeploy.`,
		Example: "  read -rs PD_SECRET && printf '%s\\n' \"$PD_SECRET\" | pdctl --stack pdkit-prod setup --client-id 1a2b3c4d5e\n  pdctl setup --client-id 1a2b3c4d5e < client-secret.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 {
				return fmt.Errorf("%w: setup reads the client secret from standard input, never from arguments", ErrUsage)
			}
			return nil
		},
		RunE: c.run(func(ctx context.Context, _ []string) error { return c.setup(ctx, clientID) }),
	}
	cmd.Flags().StringVar(&clientID, "client-id", "", "the app's Client ID from Developer Hub (required)")
	return cmd
}

// setup runs `pdctl setup --client-id ID`, reading the client secret from the first line of
// standard input.
func (c *CLI) setup(ctx context.Context, clientID string) error {
	if clientID == "" {
		return fmt.Errorf("%w: setup needs --client-id ID (and the client secret on standard input)", ErrUsage)
	}
	if c.Setup == nil {
		return errors.New("setup: CLIENT_SECRET_ID must be set (the stack's ClientSecretARN output), or use --stack")
	}
	if c.In == nil {
		return fmt.Errorf("%w: setup needs the client secret on standard input", ErrUsage)
	}
	line, err := bufio.NewReader(io.LimitReader(c.In, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("setup: read the client secret from standard input: %w", err)
	}
	res, err := c.Setup.Set(ctx, clientID, line)
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSON(c.Out, res)
	}
	fmt.Fprintf(c.Out, "client id %s and its secret set in %s (version %s); the functions use them at their next request, no redeploy\n", res.ClientID, res.SecretID, res.VersionID)
	return nil
}
