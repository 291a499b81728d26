// Command callback is a placeholder until its own issue lands: it builds and fails every invocation
// loudly so a deployed stack never mistakes it for working code.
package main

import (
	"context"
	"errors"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) error {
		return errors.New("callback: not implemented yet")
	})
}
