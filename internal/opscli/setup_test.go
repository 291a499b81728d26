package opscli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestSetupConfiguresAFirstDeploy: `pdctl setup --client-id ID` with the secret on standard
// input turns the secret of a first deploy (REPLACE_ME placeholders) into one the functions
// accept, keeps the generated state_key, and prints neither the secret nor the state key.
// Bad input changes nothing and says why.
func TestSetupConfiguresAFirstDeploy(t *testing.T) {
	res := testenv.Provision(t)
	testenv.AsFirstDeployed(t, res)
	sm := secretsmanager.NewFromConfig(testenv.AWS(t))
	var out bytes.Buffer
	const clientSecret = "setupSecret-9fK2-NEVER-LOGGED-q7Lm"
	secrets.Add("client secret", clientSecret)
	cli := func(stdin string) *opscli.CLI {
		return &opscli.CLI{Setup: &opscli.Setup{Secrets: sm, SecretID: res.SecretID}, In: strings.NewReader(stdin), Out: io.MultiWriter(&out, &runLog)}
	}
	read := func() map[string]string {
		v, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(res.SecretID)})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(aws.ToString(v.SecretString)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := read()

	bad := []struct {
		name  string
		args  []string
		stdin string
		usage bool
	}{
		{"no client id", []string{"setup"}, clientSecret + "\n", true},
		{"secret as an argument", []string{"setup", "--client-id", "abc", clientSecret}, "", true},
		{"empty stdin", []string{"setup", "--client-id", "abc"}, "", false},
		{"placeholder", []string{"setup", "--client-id", "abc"}, "REPLACE_ME\n", false},
		{"placeholder id", []string{"setup", "--client-id", "replace_me"}, clientSecret + "\n", false},
		{"one-dash flag, as before", []string{"setup", "-client-id", "abc"}, "", false},
		{"whitespace inside", []string{"setup", "--client-id", "abc"}, "two words\n", false},
	}
	for _, b := range bad {
		err := runCLI(t.Context(), cli(b.stdin), b.args)
		if err == nil || errors.Is(err, opscli.ErrUsage) != b.usage {
			t.Errorf("%s: pdctl %v = %v, want an error (usage %t)", b.name, b.args, err, b.usage)
		}
		if got := read(); got["client_id"] != before["client_id"] || got["client_secret"] != before["client_secret"] {
			t.Errorf("%s: the secret changed", b.name)
		}
	}

	if err := runCLI(t.Context(), cli(clientSecret+"\n"), []string{"setup", "--client-id", "1a2b3c4d5e"}); err != nil {
		t.Fatalf("pdctl setup = %v", err)
	}
	after := read()
	if after["client_id"] != "1a2b3c4d5e" || after["client_secret"] != clientSecret || after["state_key"] != before["state_key"] {
		t.Errorf("secret after setup: client_id %q, client_secret set %t, state_key kept %t", after["client_id"],
			after["client_secret"] == clientSecret, after["state_key"] == before["state_key"])
	}
	c, err := (&clientcreds.Source{Client: sm, SecretID: res.SecretID}).Load(t.Context())
	if err != nil || c.ClientID != "1a2b3c4d5e" {
		t.Errorf("the functions' reader after setup = %v, %v; want the new client id", c, err)
	}
	if !strings.Contains(out.String(), "client id 1a2b3c4d5e and its secret set in") {
		t.Errorf("output = %q, want a confirmation naming the client id", out.String())
	}
	if strings.Contains(out.String(), testenv.StateKey) {
		t.Errorf("output shows the state key")
	}
}
