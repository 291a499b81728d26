package main

import (
	"context"
	"os/user"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// operator names who runs pdctl for the decrypt audit: the AWS caller identity (the role and
// session a person assumed) and the local user, asked only when a decryption is requested.
func operator(cfg aws.Config) func(ctx context.Context) string {
	return func(ctx context.Context) string {
		local := "unknown"
		if u, err := user.Current(); err == nil {
			local = u.Username
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return "aws identity unknown (" + local + ")"
		}
		return aws.ToString(id.Arn) + " (" + local + ")"
	}
}
