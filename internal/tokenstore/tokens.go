package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The token attributes. Sealed values are binary (B); a plain string (S) is an item written
// before encryption, read as is and sealed at its next write of that token.
const (
	attrAccessToken  = "access_token"
	attrRefreshToken = "refresh_token"
)

// Cipher seals token attributes; *tokencrypt.Envelope satisfies it. pk is the item's
// partition key: a value sealed for one item must not open for another. Both methods are safe
// for concurrent use.
type Cipher interface {
	Seal(ctx context.Context, pk string, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, pk string, sealed []byte) ([]byte, error)
}

// ErrNoCipher: an item holds a sealed token but the store has no Cipher to open it.
var ErrNoCipher = errors.New("tokenstore: sealed token but no cipher configured")

// sealToken is the attribute value to store token as: sealed by s.Cipher, or a plain string
// when the store has none (tests that do not exercise encryption).
func (s *Store) sealToken(ctx context.Context, pk, token string) (types.AttributeValue, error) {
	if s.Cipher == nil {
		return str(token), nil
	}
	b, err := s.Cipher.Seal(ctx, pk, []byte(token))
	if err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	return &types.AttributeValueMemberB{Value: b}, nil
}

// openToken reads a token attribute: "" when absent, a legacy plain string as is (refused with
// RefusePlaintext), a sealed value through s.Cipher.
func (s *Store) openToken(ctx context.Context, pk string, av types.AttributeValue) (string, error) {
	switch v := av.(type) {
	case nil:
		return "", nil
	case *types.AttributeValueMemberS:
		if s.RefusePlaintext {
			return "", fmt.Errorf("%w: refused (seal older tables with pdctl tokens seal)", ErrTokenInClear)
		}
		return v.Value, nil
	case *types.AttributeValueMemberB:
		if s.Cipher == nil {
			return "", ErrNoCipher
		}
		b, err := s.Cipher.Open(ctx, pk, v.Value)
		if err != nil {
			return "", fmt.Errorf("open token: %w", err)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("token attribute of type %T", av)
}

// decode is decodeInstallation plus the tokens, opened.
func (s *Store) decode(ctx context.Context, av map[string]types.AttributeValue) (Installation, error) {
	in, err := decodeInstallation(av)
	if err != nil {
		return Installation{}, err
	}
	pk := instKey(in.ID)
	if in.AccessToken, err = s.openToken(ctx, pk, av[attrAccessToken]); err != nil {
		return Installation{}, fmt.Errorf("decode installation %s: access token: %w", in.ID, err)
	}
	if in.RefreshToken, err = s.openToken(ctx, pk, av[attrRefreshToken]); err != nil {
		return Installation{}, fmt.Errorf("decode installation %s: refresh token: %w", in.ID, err)
	}
	return in, nil
}

// metaAttributes are every attribute of an installation but the tokens: what operators and the
// callback read (ProjectionExpression), so that reading an installation's state never reads,
// nor needs the right to decrypt, its tokens.
var metaAttributes = func() []string {
	var out []string
	t := reflect.TypeFor[instItem]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("dynamodbav"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}()

// MetaAttributes returns the attributes an installation read without tokens asks for (the
// operator policy's dynamodb:Attributes list). The slice is a copy.
func MetaAttributes() []string { return append([]string(nil), metaAttributes...) }

// metaProjection is a ProjectionExpression of metaAttributes and its names.
func metaProjection() (string, map[string]string) {
	names := make(map[string]string, len(metaAttributes))
	refs := make([]string, len(metaAttributes))
	for i, a := range metaAttributes {
		refs[i] = "#" + a
		names["#"+a] = a
	}
	return strings.Join(refs, ", "), names
}

// get reads an installation, strongly consistent, without its token attributes: what the
// writes that do not change tokens need (Install reads the version it replaces).
func (s *Store) get(ctx context.Context, id InstallationID) (Installation, error) {
	proj, names := metaProjection()
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.Table),
		Key:                      key(instKey(id)),
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String(proj),
		ExpressionAttributeNames: names,
	})
	if err != nil {
		return Installation{}, err
	}
	if out.Item == nil {
		return Installation{}, ErrNotFound
	}
	return decodeInstallation(out.Item)
}

// Describe returns the installation without its tokens (AccessToken and RefreshToken are
// empty): for operators and status checks. It never reads the token attributes, so a role
// allowed only the non-token attributes (dynamodb:Attributes) and no kms:Decrypt can call it.
// ErrNotFound for an unknown installation.
func (s *Store) Describe(ctx context.Context, id InstallationID) (Installation, error) {
	in, err := s.get(ctx, id)
	if err != nil {
		return Installation{}, fmt.Errorf("tokenstore: describe %s: %w", id, err)
	}
	return in, nil
}

// SealPlaintext seals every token attribute still stored in clear (an item written before
// encryption), so that RefusePlaintext can be turned on: a Scan of the installations, and for
// each item holding a plain string a conditional update that writes the sealed value only
// while the attribute is still that string. It returns how many items it sealed. Requires
// Cipher; scan is the table's client (the functions' Store never scans).
func (s *Store) SealPlaintext(ctx context.Context, scan Scanner) (int, error) {
	if s.Cipher == nil {
		return 0, fmt.Errorf("tokenstore: seal plaintext: %w", ErrNoCipher)
	}
	filter := "begins_with(#pk, :inst) AND (attribute_type(#access_token, :s) OR attribute_type(#refresh_token, :s))"
	sealed := 0
	var start map[string]types.AttributeValue
	for {
		out, err := scan.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(s.Table), FilterExpression: aws.String(filter), ExclusiveStartKey: start,
			ExpressionAttributeNames:  names(filter),
			ExpressionAttributeValues: map[string]types.AttributeValue{":inst": str(instPrefix), ":s": str("S")},
		})
		if err != nil {
			return sealed, fmt.Errorf("tokenstore: seal plaintext: scan: %w", err)
		}
		for _, item := range out.Items {
			pk, _ := item["pk"].(*types.AttributeValueMemberS)
			if pk == nil {
				continue
			}
			did := false
			for _, attr := range []string{attrAccessToken, attrRefreshToken} {
				plain, ok := item[attr].(*types.AttributeValueMemberS)
				if !ok {
					continue
				}
				v, err := s.sealToken(ctx, pk.Value, plain.Value)
				if err != nil {
					return sealed, fmt.Errorf("tokenstore: seal plaintext %s: %w", pk.Value, err)
				}
				_, ok, err = s.update(ctx, pk.Value, "SET #"+attr+" = :sealed", "#"+attr+" = :plain",
					map[string]types.AttributeValue{":sealed": v, ":plain": plain})
				if err != nil {
					return sealed, fmt.Errorf("tokenstore: seal plaintext %s: %w", pk.Value, err)
				}
				did = did || ok // not ok: rewritten meanwhile (sealed by a normal write)
			}
			if did {
				sealed++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return sealed, nil
		}
		start = out.LastEvaluatedKey
	}
}
