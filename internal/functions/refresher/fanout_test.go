package refresher

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestFanOutTargetsTheAliasThatRan: a run started through the "live" alias hands its shards to
// the same alias (so a canary's shards run its version, never $LATEST); outside Lambda (no
// invocation context) it names the function.
func TestFanOutTargetsTheAliasThatRan(t *testing.T) {
	f := selfInvoke{Function: "stack-RefresherFunction-abc"}
	const alias = "arn:aws:lambda:eu-central-1:123456789012:function:stack-RefresherFunction-abc:live"
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{InvokedFunctionArn: alias})
	if got := f.target(ctx); got != alias {
		t.Errorf("target(invoked via the alias) = %q, want %q", got, alias)
	}
	if got := f.target(context.Background()); got != f.Function {
		t.Errorf("target(no invocation) = %q, want %q", got, f.Function)
	}
}
