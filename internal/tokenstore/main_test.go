package tokenstore_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// t0 is where every fake clock starts: whole seconds, as the store keeps times.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// env is one test's store, on its own table, with its own clock, sealing tokens under its
// own KMS key (every test runs encrypted).
type env struct {
	store  *tokenstore.Store
	clock  *fakeclock.Clock
	db     *dynamodb.Client
	table  string
	cipher *tokencrypt.Envelope
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := dynamodb.NewFromConfig(testenv.AWS(t))
	res := testenv.Provision(t)
	c := fakeclock.New(t0)
	cipher := &tokencrypt.Envelope{KMS: kms.NewFromConfig(testenv.AWS(t)), KeyID: res.TokensKeyID}
	return &env{
		store:  &tokenstore.Store{DB: testenv.SerialWrites(db), Table: res.TableName, Now: c.Now, Cipher: cipher},
		clock:  c,
		db:     db,
		table:  res.TableName,
		cipher: cipher,
	}
}

// raw reads an item as stored, to check what the store writes rather than what it returns.
func (e *env) raw(t testing.TB, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(e.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem(%s) = %v", pk, err)
	}
	return out.Item
}

// install stores an installation with tokens named after id and n, expiring an hour from now.
func (e *env) install(t testing.TB, id tokenstore.InstallationID, n string) tokenstore.Installation {
	t.Helper()
	in, err := e.store.Install(t.Context(), installation(id, n, e.clock.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("Install(%s) = %v", id, err)
	}
	return in
}

func installation(id tokenstore.InstallationID, n string, expires time.Time) tokenstore.Installation {
	return tokenstore.Installation{
		ID:           id,
		AccessToken:  "v1u:access-" + id.String() + "-" + n,
		RefreshToken: "1:1:refresh-" + id.String() + "-" + n,
		APIDomain:    "https://acme.pipedrive.com",
		Scopes:       []string{"base", "deals:full"},
		ExpiresAt:    expires,
		CodeHash:     tokenstore.HashCode("code-" + id.String() + "-" + n),
	}
}

// wantOneWinner makes five concurrent calls of claim (the caller's index as argument) and
// fails t unless exactly one succeeds and every other fails with lost.
func wantOneWinner(t *testing.T, name string, lost error, claim func(caller int) error) {
	t.Helper()
	const callers = 5
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { errs[i] = claim(i) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, lost):
			t.Errorf("%s(caller %d) = %v, want nil or %v", name, i, err, lost)
		}
	}
	if wins != 1 {
		t.Errorf("%d of %d concurrent %s calls won, want 1", wins, callers, name)
	}
}
