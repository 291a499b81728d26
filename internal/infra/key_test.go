package infra_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func TestParseTokensKey(t *testing.T) {
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	k := spec.TokensKey
	if k.KeySpec != kmstypes.KeySpecSymmetricDefault || k.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt || !k.EnableKeyRotation || !k.HasPolicy {
		t.Errorf("TokensKey = %+v, want a symmetric encrypt/decrypt key with rotation and a key policy", k)
	}
	if spec.FunctionEnvRefs["TOKENS_KEY_ID"] != infra.TokensKeyID {
		t.Errorf("Globals TOKENS_KEY_ID refers to %q, want %s", spec.FunctionEnvRefs["TOKENS_KEY_ID"], infra.TokensKeyID)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"asymmetric", "KeySpec: SYMMETRIC_DEFAULT", "KeySpec: RSA_2048"},
		{"signing", "KeyUsage: ENCRYPT_DECRYPT", "KeyUsage: SIGN_VERIFY"},
		{"unknown property", "EnableKeyRotation: true", "EnableKeyRotation: true\n      Origin: EXTERNAL"},
	} {
		if _, err := infra.Parse([]byte(mutate(t, string(pdkit.Template), tc.from, tc.to))); err == nil {
			t.Errorf("Parse(template with %s key) = nil error, want a *TemplateError", tc.name)
		}
	}
}

// TestProvisionTokensKey: the key exists in moto as the template says, a second Provision finds
// it again by its alias, the functions' TOKENS_KEY_ID names it, and Teardown schedules its
// deletion.
func TestProvisionTokensKey(t *testing.T) {
	t.Parallel()
	cfg := testenv.AWS(t)
	ctx := ctxT(t)
	names := infra.NamesWithPrefix(testenv.Prefix(t))
	r, err := infra.Provision(ctx, cfg, names, testenv.Credentials())
	if err != nil {
		t.Fatalf("Provision = %v", err)
	}
	t.Cleanup(func() { _ = r.Teardown(context.Background(), cfg) })
	client := kms.NewFromConfig(cfg)
	d, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.TokensKeyAlias)})
	if err != nil {
		t.Fatalf("DescribeKey(%s) = %v", r.TokensKeyAlias, err)
	}
	if aws.ToString(d.KeyMetadata.KeyId) != r.TokensKeyID || aws.ToString(d.KeyMetadata.Arn) != r.TokensKeyARN ||
		d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
		t.Errorf("DescribeKey = %+v, want enabled key %s (%s)", d.KeyMetadata, r.TokensKeyID, r.TokensKeyARN)
	}
	rot, err := client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(r.TokensKeyID)})
	if err != nil || !rot.KeyRotationEnabled {
		t.Errorf("GetKeyRotationStatus = %+v, %v, want rotation enabled", rot, err)
	}
	for _, fn := range []string{"CallbackFunction", "RefresherFunction", "ApiCallFunction"} {
		if got := r.FunctionEnv(fn)["TOKENS_KEY_ID"]; got != r.TokensKeyID {
			t.Errorf("FunctionEnv(%s)[TOKENS_KEY_ID] = %q, want %s", fn, got, r.TokensKeyID)
		}
	}
	if id, _ := r.Ref(infra.TokensKeyID); id != r.TokensKeyID {
		t.Errorf("Ref(TokensKey) = %q, want the key id", id)
	}
	if arn, _ := r.GetAtt(infra.TokensKeyID, "Arn"); arn != r.TokensKeyARN {
		t.Errorf("GetAtt(TokensKey.Arn) = %q, want the key ARN", arn)
	}

	again, err := infra.Provision(ctx, cfg, names, testenv.Credentials())
	if err != nil {
		t.Fatalf("second Provision = %v", err)
	}
	if again.TokensKeyID != r.TokensKeyID {
		t.Errorf("second Provision made key %s, want the first one, %s (tokens sealed under it must stay readable)", again.TokensKeyID, r.TokensKeyID)
	}

	if err := r.Teardown(ctx, cfg); err != nil {
		t.Fatalf("Teardown = %v", err)
	}
	d, err = client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.TokensKeyID)})
	if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Errorf("key after Teardown = %+v, %v, want PendingDeletion", d, err)
	}
	if err := r.Teardown(ctx, cfg); err != nil {
		t.Errorf("second Teardown = %v, want nil", err)
	}
}
