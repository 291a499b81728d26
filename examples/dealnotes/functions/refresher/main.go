// Command refresher is the example app's refresher Lambda function.
package main

import (
	"github.com/pdkit/pipedrive-lambda-kit/examples/dealnotes"
	"github.com/pdkit/pipedrive-lambda-kit/pdkit"
)

func main() { pdkit.StartRefresher(dealnotes.New()) }
