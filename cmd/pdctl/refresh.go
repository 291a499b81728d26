package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// refresher wires the refresher's own logic for `pdctl refresh`: same leases, same store
// writes, so it never races the scheduled function.
func refresher(awsCfg aws.Config, store *tokenstore.Store, secretID, oauthURL string) opscli.RefreshFunc {
	creds := &clientcreds.Source{Client: secretsmanager.NewFromConfig(awsCfg), SecretID: secretID}
	host, _ := os.Hostname()
	r := &refresh.Refresher{
		OAuth:                 &pdoauth.Client{BaseURL: oauthURL, Credentials: creds.OAuthCredentials},
		Store:                 store,
		Owner:                 "pdctl@" + host,
		InvalidateCredentials: creds.Invalidate,
	}
	return r.Refresh
}
