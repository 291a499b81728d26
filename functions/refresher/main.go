// Command refresher is the refresher Lambda function: internal/functions/refresher.
package main

import "github.com/pdkit/pipedrive-lambda-kit/internal/functions/refresher"

func main() { refresher.Main() }
