// Command refresher is the kit's refresher Lambda function, running the empty app (events acknowledged,
// no hooks, no job kinds). An app built on the kit has its own main: see examples/dealnotes.
package main

import "github.com/pdkit/pipedrive-lambda-kit/pdkit"

func main() { pdkit.StartRefresher(&pdkit.App{}) }
