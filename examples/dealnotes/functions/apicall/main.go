// Command apicall is the example app's apicall Lambda function.
package main

import (
	"github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

func main() { pdkit.StartWorker(dealnotes.New()) }
