package motoserver

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Static settings of every configuration pointed at moto; moto accepts any credentials.
const (
	Region          = "us-east-1"
	AccessKeyID     = "test"
	SecretAccessKey = "test"
)

// AWSConfig returns an SDK configuration for endpoint (a moto URL): that endpoint for every
// service, static credentials and Region. Retries are few and quick and never throttled
// client-side, since moto is local.
func AWSConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   awshttp.NewBuildableClient().WithTimeout(30 * time.Second),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 4
				o.MaxBackoff = 500 * time.Millisecond
				// The retry token bucket would throttle a run with many expected failures;
				// moto needs no protection from us.
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// AWSConfig returns AWSConfig(s.URL).
func (s *Server) AWSConfig() aws.Config { return AWSConfig(s.URL) }

// Env returns the environment that points an AWS SDK (a function under the emulator) at this
// server. Append it after the parent's environment: later entries win.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}
