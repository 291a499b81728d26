// Command webhooks is the webhooks Lambda function: internal/functions/webhooks.
package main

import "github.com/pdkit/pipedrive-lambda-kit/internal/functions/webhooks"

func main() { webhooks.Main() }
