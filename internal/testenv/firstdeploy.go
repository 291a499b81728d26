package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
)

// AsFirstDeployed puts into r's client secret the value a fresh deploy of template.yaml holds
// before anyone configured it: SecretStringTemplate's placeholders for client_id and
// client_secret, and StateKey as the generated key.
func AsFirstDeployed(t testing.TB, r *infra.Resources) {
	t.Helper()
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatalf("testenv: parse template.yaml: %v", err)
	}
	value, err := spec.ClientSecret.FirstValue(StateKey)
	if err != nil {
		t.Fatalf("testenv: first secret value: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = secretsmanager.NewFromConfig(AWS(t)).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(r.SecretID), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("testenv: put the first-deploy secret value: %v", err)
	}
}
