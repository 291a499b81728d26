package refresher

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
)

// invoker is the part of the Lambda API the fan-out uses; *lambda.Client satisfies it.
type invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// selfInvoke hands a shard of the due list to another invocation of this function: an
// asynchronous invoke (InvocationType Event) with {"shard":n}, so Lambda runs the shards in
// parallel. It invokes what invoked this run (the "live" alias the schedule targets, from
// lambdacontext), so during a canary deploy a run's shards run the run's version, never
// $LATEST. Where Lambda cannot be reached (the local stack), Dispatch fails and refresh.Run
// refreshes the shard itself.
type selfInvoke struct {
	Lambda   invoker
	Function string // this function's name (AWS_LAMBDA_FUNCTION_NAME)
}

var _ refresh.FanOut = selfInvoke{}

// Dispatch starts the run over shard in another invocation.
func (f selfInvoke) Dispatch(ctx context.Context, shard int) error {
	payload, err := refresh.ShardPayload(shard)
	if err != nil {
		return fmt.Errorf("refresher: fan out shard %d: %w", shard, err)
	}
	if _, err := f.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(f.target(ctx)),
		InvocationType: lambdatypes.InvocationTypeEvent,
		Payload:        payload,
	}); err != nil {
		return fmt.Errorf("refresher: fan out shard %d: %w", shard, err)
	}
	return nil
}

// target is the ARN this invocation was invoked by (qualified with the alias or version),
// else the function's name.
func (f selfInvoke) target(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.InvokedFunctionArn != "" {
		return lc.InvokedFunctionArn
	}
	return f.Function
}
