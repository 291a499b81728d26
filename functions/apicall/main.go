// Command apicall is the apicall Lambda function: internal/functions/apicall.
package main

import "github.com/pdkit/pipedrive-lambda-kit/internal/functions/apicall"

func main() { apicall.Main() }
