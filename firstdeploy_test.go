package pdkit_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// firstDeployInputs are the only parameters a first deploy may have to be given: the app's name.
var firstDeployInputs = []string{"AppName"}

// TestFirstDeployNeedsNoParameters: `make deploy` works in one pass: every parameter but the
// app's name has a default (RedirectURI included: the callback derives its URL), and the
// outputs print what to paste into Developer Hub and how to set the credentials.
func TestFirstDeployNeedsNoParameters(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	params := node(&doc, "Parameters")
	if params == nil || len(params.Content) == 0 {
		t.Fatal("template.yaml has no Parameters")
	}
	for i := 0; i+1 < len(params.Content); i += 2 {
		name, p := params.Content[i].Value, params.Content[i+1]
		if node(p, "Default") == nil && !slices.Contains(firstDeployInputs, name) {
			t.Errorf("parameter %s has no Default: a first deploy would have to be given it", name)
		}
	}
	if d := node(params, "RedirectURI", "Default"); d == nil || d.Value != "" {
		t.Errorf("RedirectURI's Default = %v, want empty (derived from the API's domain)", d)
	}
	outputs := keys(node(&doc, "Outputs"))
	for _, want := range []string{"CallbackURL", "InstallURL", "WebhookURL", "ClientSecretARN", "SetupCommand"} {
		if !outputs[want] {
			t.Errorf("Outputs lack %s", want)
		}
	}
	cb, err := yaml.Marshal(node(&doc, "Outputs", "CallbackURL", "Value"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RedirectURI", "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com/oauth/callback"} {
		if !strings.Contains(string(cb), want) {
			t.Errorf("CallbackURL output %s lacks %q (the parameter, else the derived URL)", cb, want)
		}
	}
	setup, _ := yaml.Marshal(node(&doc, "Outputs", "SetupCommand", "Value"))
	if !strings.Contains(string(setup), "setup --client-id") || !strings.Contains(string(setup), "--stack ${AWS::StackName}") {
		t.Errorf("SetupCommand output %s, want the pdctl setup command for this stack's secret", setup)
	}
}

// TestSamconfigHasNoSecrets: samconfig.toml is checked in; it names the stack and its
// settings, never a credential, and does not pin RedirectURI (derived).
func TestSamconfigHasNoSecrets(t *testing.T) {
	b, err := os.ReadFile("samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ToLower(string(b))
	for _, want := range []string{"stack_name", "capabilities = \"capability_iam\"", "resolve_s3 = true"} {
		if !strings.Contains(s, want) {
			t.Errorf("samconfig.toml lacks %q", want)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, bad := range []string{"client_secret", "clientsecret=", "client_id", "state_key", "redirecturi", "aws_secret", "password"} {
			if strings.Contains(line, bad) {
				t.Errorf("samconfig.toml line %q holds %q: no credentials or derived settings here", line, bad)
			}
		}
	}
}

// TestMakeDeploy: `make deploy` is sam build, then sam deploy (--guided with GUIDED=1, another
// stack with STACK=name), then the stack's outputs; checked with make -n (nothing runs).
func TestMakeDeploy(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
		not  string
	}{
		{[]string{"deploy"}, []string{"sam build\n", "sam deploy ", "sam list stack-outputs"}, "--guided"},
		{[]string{"deploy", "GUIDED=1", "STACK=pdkit-test"}, []string{"sam build\n", "sam deploy --guided --stack-name pdkit-test", "sam list stack-outputs --stack-name pdkit-test"}, ""},
	} {
		out, err := exec.Command("make", append([]string{"-n"}, tt.args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %v: %v\n%s", tt.args, err, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("make -n %v lacks %q:\n%s", tt.args, w, out)
			}
		}
		if tt.not != "" && strings.Contains(string(out), tt.not) {
			t.Errorf("make -n %v has %q:\n%s", tt.args, tt.not, out)
		}
	}
}
