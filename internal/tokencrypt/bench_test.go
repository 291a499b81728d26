package tokencrypt_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// kmsBench is a stack in moto with n installations sealed by a callback process.
type kmsBench struct {
	db   *dynamodb.Client
	kms  *kms.Client
	key  string
	tbl  string
	ids  []installation.ID
	sim  *pdsimtest.TestServer
	oaut *pdoauth.Client
}

func newKMSBench(b *testing.B, n int) *kmsBench {
	b.Helper()
	res := testenv.Provision(b)
	cfg := testenv.AWS(b)
	sim := pdsimtest.New(b, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret})
	k := &kmsBench{
		db: dynamodb.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg), key: res.TokensKeyID, tbl: res.TableName, sim: sim,
		oaut: &pdoauth.Client{BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret), HTTP: sim.HTTP.Client()},
	}
	callback := k.store(k.envelope())
	for i := range n {
		tok, err := sim.IssueToken(pdsim.DefaultUserID)
		if err != nil {
			b.Fatal(err)
		}
		id := installation.ID{CompanyID: 77, UserID: int64(i + 1)}
		if _, err := callback.Install(context.Background(), installation.Installation{
			ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: sim.URL,
			Scopes: []string{"base"}, ExpiresAt: time.Now().Add(time.Hour),
		}); err != nil {
			b.Fatal(err)
		}
		k.ids = append(k.ids, id)
	}
	return k
}

// envelope is one process's sealer (its own caches), as wire builds it.
func (k *kmsBench) envelope() *tokencrypt.Envelope {
	return &tokencrypt.Envelope{KMS: k.kms, KeyID: k.key}
}

func (k *kmsBench) store(e *tokencrypt.Envelope) *tokenstore.Store {
	return &tokenstore.Store{DB: k.db, Table: k.tbl, Cipher: e}
}

// BenchmarkKMSRequestsPerRefresh measures the KMS requests of a refresh (lease, token call,
// save) in a refresher process that has not touched the installation yet (the usual case: each
// installation is refreshed about once an hour, beyond the data-key cache's 5 minutes), and
// again in the same process right after (cached data keys).
//
//	go test -run '^$' -bench KMSRequests -benchtime 20x ./internal/tokencrypt/
func BenchmarkKMSRequestsPerRefresh(b *testing.B) {
	k := newKMSBench(b, b.N)
	e := k.envelope()
	r := &refresh.Refresher{OAuth: k.oaut, Store: k.store(e), Owner: "bench"}
	ctx := context.Background()
	b.ResetTimer()
	for _, id := range k.ids {
		if res, err := r.Refresh(ctx, id, true); err != nil || res.Outcome != refresh.OutcomeRefreshed {
			b.Fatalf("Refresh(%s) = %s, %v", id, res.Outcome, err)
		}
	}
	b.StopTimer()
	cold := e.Stats()
	for _, id := range k.ids {
		if _, err := r.Refresh(ctx, id, true); err != nil {
			b.Fatal(err)
		}
	}
	warm := e.Stats()
	n := float64(len(k.ids))
	b.ReportMetric(float64(cold.Total())/n, "kms/refresh")
	b.ReportMetric(float64(cold.Decrypt)/n, "decrypt/refresh")
	b.ReportMetric(float64(cold.GenerateDataKey)/n, "datakey/refresh")
	b.ReportMetric(float64(warm.Total()-cold.Total())/n, "kms/refresh-again")
}

// BenchmarkKMSRequestsPerJob measures the KMS requests of the worker's store reads: each job
// reads its installation with its tokens (Store.Get, as pdwork.Session.Open does). A batch of
// b.N jobs spreads over 10 installations in one worker process: the first job of an
// installation opens its data key (one Decrypt), the others within 5 minutes reuse it.
func BenchmarkKMSRequestsPerJob(b *testing.B) {
	k := newKMSBench(b, 10)
	e := k.envelope()
	s := k.store(e)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		in, err := s.Get(ctx, k.ids[i%len(k.ids)])
		if err != nil || in.AccessToken == "" {
			b.Fatalf("Get = %v", err)
		}
	}
	b.StopTimer()
	st := e.Stats()
	b.ReportMetric(float64(st.Total())/float64(b.N), "kms/job")
	b.ReportMetric(float64(min(b.N, len(k.ids)))/float64(b.N), "first-jobs/job")
}
