// Command webhooks is the example app's webhooks Lambda function.
package main

import (
	"github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

func main() { pdkit.StartWebhooks(dealnotes.New()) }
