// Command callback is the callback Lambda function: internal/functions/callback.
package main

import "github.com/pdkit/pipedrive-lambda-kit/internal/functions/callback"

func main() { callback.Main() }
