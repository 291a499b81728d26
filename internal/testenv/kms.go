package testenv

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
)

// Cipher returns the token sealer the functions build from TOKENS_KEY_ID (internal/wire): an
// Envelope on this test binary's moto under r's TokensKey. A test whose tokenstore.Store reads
// or writes installations that a bootstrap also touches sets it as the store's Cipher.
func Cipher(t testing.TB, r *infra.Resources) *tokencrypt.Envelope {
	t.Helper()
	return &tokencrypt.Envelope{KMS: kms.NewFromConfig(AWS(t)), KeyID: r.TokensKeyID}
}

// TokensInClear scans r's tokens table as stored and returns "pk attribute" for every
// attribute (at any depth, text or bytes) that holds one of tokens in clear. Empty tokens are
// ignored.
func TokensInClear(t testing.TB, r *infra.Resources, tokens ...string) []string {
	t.Helper()
	db := dynamodb.NewFromConfig(AWS(t))
	var found []string
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(r.TableName), ExclusiveStartKey: start})
		if err != nil {
			t.Fatalf("testenv: scan %s: %v", r.TableName, err)
		}
		for _, item := range out.Items {
			pk := ""
			if s, ok := item["pk"].(*dbtypes.AttributeValueMemberS); ok {
				pk = s.Value
			}
			for _, name := range AttributesInClear(item, tokens...) {
				found = append(found, pk+" "+name)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return found
		}
		start = out.LastEvaluatedKey
	}
}

// AttributesInClear returns the names of item's attributes that hold one of tokens in clear, at
// any depth, as text or bytes. Empty tokens are ignored.
func AttributesInClear(item map[string]dbtypes.AttributeValue, tokens ...string) []string {
	var found []string
	for name, av := range item {
		if holds(av, tokens) {
			found = append(found, name)
		}
	}
	return found
}

func holds(av dbtypes.AttributeValue, tokens []string) bool {
	var raw []byte
	switch v := av.(type) {
	case *dbtypes.AttributeValueMemberS:
		raw = []byte(v.Value)
	case *dbtypes.AttributeValueMemberB:
		raw = v.Value
	case *dbtypes.AttributeValueMemberSS:
		raw = []byte(strings.Join(v.Value, "\x00"))
	case *dbtypes.AttributeValueMemberL:
		return slices.ContainsFunc(v.Value, func(x dbtypes.AttributeValue) bool { return holds(x, tokens) })
	case *dbtypes.AttributeValueMemberM:
		for _, x := range v.Value {
			if holds(x, tokens) {
				return true
			}
		}
	}
	for _, tok := range tokens {
		if tok != "" && bytes.Contains(raw, []byte(tok)) {
			return true
		}
	}
	return false
}
