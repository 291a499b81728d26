// Command refresher is the token-refresh Lambda: the EventBridge Scheduler invokes it every few
// minutes and it refreshes every installation whose access token is about to expire; invoked
// with {"company_id":…,"user_id":…,"force":true} it refreshes that one installation now. See
// Handler for the behaviour; this file only wires it.
package main

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/pdkit/pipedrive-lambda-kit/internal/wire"
)

func main() {
	app, err := wire.Load(context.Background(), wire.Options{Name: "refresher"})
	if err != nil {
		log.Fatal(err)
	}
	h := &Handler{Store: app.Store, Refresher: app.Refresher(app.Owner()), Log: app.Log}
	lambda.Start(h.Handle)
}
