package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/motoserver"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
)

// Static settings of every configuration testenv hands out; moto accepts any credentials.
const (
	Region          = motoserver.Region
	AccessKeyID     = motoserver.AccessKeyID
	SecretAccessKey = motoserver.SecretAccessKey
)

// Client credentials Provision stores in each test's secret. They are deliberately
// distinctive so that tests can search logs and errors for them: none of them may ever
// appear in a log line. The secrets share no PartialLen-long piece with ClientID, which may be
// logged, so the partial-value leak check cannot confuse them.
const (
	ClientID     = "testenv-client-id-7c1d"
	ClientSecret = "cs5e2aQx7-NEVER-LOGGED-Zt4Rw9Lm2Kp8Vb"
	StateKey     = "sk91bfHj3-NEVER-LOGGED-Yq6Tn1Mc5Xd0Wa"
)

// Credentials returns ClientID, ClientSecret and StateKey as infra.ClientCredentials.
func Credentials() infra.ClientCredentials {
	return infra.ClientCredentials{ClientID: ClientID, ClientSecret: ClientSecret, StateKey: StateKey}
}

// AWS returns motoserver.AWSConfig for this test binary's moto (started if needed): its
// endpoint for every service, static credentials and Region, with few, quick retries.
func AWS(t testing.TB) aws.Config {
	t.Helper()
	return motoserver.AWSConfig(Endpoint(t))
}

// Env returns KEY=VALUE pairs for running a built bootstrap against moto: the server's
// (*motoserver.Server).Env (AWS_ENDPOINT_URL, AWS_REGION, static credentials, no profile)
// and r.Env() (TOKENS_TABLE, CLIENT_SECRET_ID, JOBS_QUEUE_URL, ALERTS_TOPIC_ARN) in key
// order. Append them to os.Environ(); later entries win. Variables the template takes from
// parameters (PIPEDRIVE_OAUTH_URL, …) are the caller's.
func Env(t testing.TB, r *infra.Resources) []string {
	t.Helper()
	env := server(t).Env()
	fe := r.Env()
	for _, k := range slices.Sorted(maps.Keys(fe)) {
		env = append(env, k+"="+fe[k])
	}
	return env
}

// FunctionEnv returns KEY=VALUE pairs for running the bootstrap of the template's function
// logicalID (ApiCallFunction, …) against moto: the server's (*motoserver.Server).Env, then
// r.FunctionEnv(logicalID) (Globals plus the function's own variables, resources resolved,
// parameters at their defaults) in key order. Parameters without a default and the
// Pipedrive URL under test are the caller's: append them; later entries win. It
// fails t for a function the template does not define.
func FunctionEnv(t testing.TB, r *infra.Resources, logicalID string) []string {
	t.Helper()
	fe := r.FunctionEnv(logicalID)
	if fe == nil {
		t.Fatalf("testenv: template.yaml defines no function %q", logicalID)
	}
	// The simulator's api_domain is loopback: allowed here, never by the template.
	env := append(server(t).Env(), pdoauth.EnvAllowLoopback+"=true")
	for _, k := range slices.Sorted(maps.Keys(fe)) {
		env = append(env, k+"="+fe[k])
	}
	return env
}

// Provision creates the template's resources in moto under names unique to t (see Prefix),
// with Credentials() in the secret, and deletes them when t ends.
func Provision(t testing.TB) *infra.Resources {
	t.Helper()
	cfg := AWS(t)
	names := infra.NamesWithPrefix(Prefix(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := infra.Provision(ctx, cfg, names, Credentials())
	if err != nil {
		t.Fatalf("infra.Provision(%s…) = %v", names.Table, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Teardown(ctx, cfg); err != nil {
			t.Logf("testenv: teardown of %s: %v", names.Table, err)
		}
	})
	return r
}

// maxPrefixName bounds the part of Prefix taken from the test name, so that the longest
// derived name (prefix+"alerts-inbox", a queue) stays within SQS's 80 characters.
const maxPrefixName = 40

// Prefix returns a resource-name prefix unique to this call: t.Name() reduced to
// [A-Za-z0-9_-] and 40 characters, a random suffix and a final "-". Names built on it fit
// every service's limits with 30 characters to spare.
func Prefix(t testing.TB) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > maxPrefixName {
		name = name[:maxPrefixName]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random suffix: %v", err)
	}
	return fmt.Sprintf("%s-%s-", name, hex.EncodeToString(b[:]))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
