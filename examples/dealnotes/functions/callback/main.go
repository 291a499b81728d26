// Command callback is the example app's callback Lambda function.
package main

import (
	"github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

func main() { pdkit.StartCallback(dealnotes.New()) }
