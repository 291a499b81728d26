package tokenstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// scanAll reads every item of the table as stored.
func (e *env) scanAll(t testing.TB) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	var start map[string]types.AttributeValue
	for {
		out, err := e.db.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(e.table), ExclusiveStartKey: start})
		if err != nil {
			t.Fatalf("Scan = %v", err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items
		}
		start = out.LastEvaluatedKey
	}
}

// TestNoTokenInClear reads the whole table as stored after an install, a refresh and a
// re-install: neither access nor refresh token appears in any attribute, while the store
// still returns them.
func TestNoTokenInClear(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	first := e.install(t, acme, "a")
	other := e.install(t, tokenstore.InstallationID{CompanyID: 1, UserID: 2}, "b")
	secrets := []string{first.AccessToken, first.RefreshToken, other.AccessToken, other.RefreshToken}
	l := lease(t, e, acme, "refresher-1")
	next := tokens("refreshed")
	if _, err := e.store.SaveRefreshed(ctx, acme, "refresher-1", l.Version, next); err != nil {
		t.Fatalf("SaveRefreshed = %v", err)
	}
	again, err := e.store.Install(ctx, installation(acme, "reinstalled", e.clock.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("Install again = %v", err)
	}
	secrets = append(secrets, next.AccessToken, next.RefreshToken, again.AccessToken, again.RefreshToken)

	items := e.scanAll(t)
	if len(items) < 2 {
		t.Fatalf("scan found %d items, want the 2 installations", len(items))
	}
	for _, item := range items {
		if found := testenv.AttributesInClear(item, secrets...); len(found) > 0 {
			t.Errorf("item %v holds a token in clear in %v", item["pk"], found)
		}
		for _, a := range []string{"access_token", "refresh_token"} {
			if v, ok := item[a]; ok {
				if b, ok := v.(*types.AttributeValueMemberB); !ok || !tokencrypt.IsSealed(b.Value) {
					t.Errorf("item %v: %s is %T, want a sealed binary value", item["pk"], a, v)
				}
			}
		}
	}
	got, err := e.store.Get(ctx, acme)
	if err != nil || got.AccessToken != again.AccessToken || got.RefreshToken != again.RefreshToken {
		t.Errorf("Get after re-install: tokens are the re-install's = %t, err %v; want true", got.AccessToken == again.AccessToken && got.RefreshToken == again.RefreshToken, err)
	}
}

// TestPlaintextItemsMigrateOnWrite: an item written before encryption (plain strings) is read
// as it is, and its next write of the tokens seals them.
func TestPlaintextItemsMigrateOnWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	legacy := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now} // no Cipher: as before encryption
	old, err := legacy.Install(ctx, installation(acme, "legacy", e.clock.Now().Add(time.Hour)))
	if err != nil {
		t.Fatalf("Install without cipher = %v", err)
	}
	if _, ok := e.raw(t, "inst#3408256#5206648")["access_token"].(*types.AttributeValueMemberS); !ok {
		t.Fatalf("legacy item's access_token is not a plain string; the test sets up nothing")
	}
	got, err := e.store.Get(ctx, acme)
	if err != nil || got.AccessToken != old.AccessToken || got.RefreshToken != old.RefreshToken {
		t.Fatalf("Get(plaintext item) with cipher: tokens match = %t, err %v; want true, nil", got.AccessToken == old.AccessToken && got.RefreshToken == old.RefreshToken, err)
	}
	l := lease(t, e, acme, "refresher-1")
	if l.RefreshToken != old.RefreshToken {
		t.Errorf("Lease(plaintext item) returned another refresh token")
	}
	next := tokens("sealed")
	if _, err := e.store.SaveRefreshed(ctx, acme, "refresher-1", l.Version, next); err != nil {
		t.Fatalf("SaveRefreshed = %v", err)
	}
	item := e.raw(t, "inst#3408256#5206648")
	if found := testenv.AttributesInClear(item, old.AccessToken, old.RefreshToken, next.AccessToken, next.RefreshToken); len(found) > 0 {
		t.Errorf("after the first encrypted write the item holds a token in clear in %v", found)
	}
	// A reader without the key can no longer read the tokens, but still everything else.
	if _, err := legacy.Get(ctx, acme); !errors.Is(err, tokenstore.ErrNoCipher) {
		t.Errorf("Get(sealed item) without cipher = %v, want ErrNoCipher", err)
	}
	if d, err := legacy.Describe(ctx, acme); err != nil || d.Version != l.Version+1 || d.AccessToken != "" {
		t.Errorf("Describe(sealed item) without cipher = version %d, has token %t, %v; want version %d, no token, nil", d.Version, d.AccessToken != "", err, l.Version+1)
	}
}

// TestSealedTokenDoesNotMoveBetweenItems: a sealed value copied to another installation's
// item does not open there (the encryption context and the GCM data are the item's key).
func TestSealedTokenDoesNotMoveBetweenItems(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	victim := tokenstore.InstallationID{CompanyID: 7, UserID: 7}
	e.install(t, acme, "a")
	e.install(t, victim, "v")
	stolen := e.raw(t, "inst#7#7")["refresh_token"]
	if _, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(e.table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "inst#3408256#5206648"}},
		UpdateExpression:          aws.String("SET refresh_token = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": stolen},
	}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*tokenstore.Store{
		"same process": e.store,
		"cold process": {DB: e.store.DB, Table: e.table, Cipher: &tokencrypt.Envelope{KMS: e.cipher.KMS, KeyID: e.cipher.KeyID}},
	} {
		if _, err := s.Get(ctx, acme); !errors.Is(err, tokencrypt.ErrOpen) {
			t.Errorf("%s: Get(item with another installation's sealed token) = %v, want ErrOpen", name, err)
		}
	}
}

// encryptOnly is a KMS that refuses Decrypt, like the callback's role.
type encryptOnly struct{ tokencrypt.KMS }

func (encryptOnly) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return nil, errors.New("AccessDeniedException: not authorized to perform kms:Decrypt")
}

// TestInstallNeedsNoDecrypt: the callback installs and re-installs with encrypt-only rights,
// and operators describe and list installations without any KMS right, and the KMS requests
// per operation are as documented (docs/tokens-table.md).
func TestInstallNeedsNoDecrypt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	cb := &tokencrypt.Envelope{KMS: encryptOnly{e.cipher.KMS}, KeyID: e.cipher.KeyID}
	callback := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now, Cipher: cb}
	for _, n := range []string{"first", "again"} {
		in, err := callback.Install(ctx, installation(acme, n, e.clock.Now().Add(time.Hour)))
		if err != nil {
			t.Fatalf("Install(%s) with encrypt-only key rights = %v", n, err)
		}
		if in.AccessToken == "" || in.RefreshToken == "" {
			t.Errorf("Install(%s) returned no tokens, want the ones it stored", n)
		}
	}
	if s := cb.Stats(); s.GenerateDataKey != 1 || s.Decrypt != 0 {
		t.Errorf("two installs of one installation made %+v KMS requests, want 1 GenerateDataKey (cached data key)", s)
	}

	operator := &tokenstore.Store{DB: e.store.DB, Table: e.table} // no Cipher, no KMS right
	d, err := operator.Describe(ctx, acme)
	if err != nil || d.Status != tokenstore.StatusActive || d.AccessToken != "" || d.RefreshToken != "" || d.Version != 2 {
		t.Errorf("Describe = %+v, %v; want active, version 2, no tokens", d, err)
	}
	list, _, err := (&tokenstore.Inventory{DB: e.db, Table: e.table}).List(ctx, "", 10, "")
	if err != nil || len(list) != 1 || list[0].AccessToken != "" || list[0].RefreshToken != "" {
		t.Errorf("Inventory.List = %d installations, %v; want 1 without tokens", len(list), err)
	}
	if _, err := operator.Describe(ctx, tokenstore.InstallationID{CompanyID: 1, UserID: 1}); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Errorf("Describe(unknown) = %v, want ErrNotFound", err)
	}

	// A refresh in a fresh process: one Decrypt to read the refresh token (both tokens share
	// a data key), one GenerateDataKey to seal the new pair, and none to return it.
	refresher := &tokencrypt.Envelope{KMS: e.cipher.KMS, KeyID: e.cipher.KeyID}
	rs := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now, Cipher: refresher}
	l, err := rs.Lease(ctx, acme, "refresher-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.SaveRefreshed(ctx, acme, "refresher-1", l.Version, tokens("r")); err != nil {
		t.Fatal(err)
	}
	if s := refresher.Stats(); s.Decrypt != 1 || s.GenerateDataKey != 1 {
		t.Errorf("one refresh made %+v KMS requests, want 1 Decrypt + 1 GenerateDataKey", s)
	}
}

// TestMetaAttributesExcludeTokens guards the projection operators read through.
func TestMetaAttributesExcludeTokens(t *testing.T) {
	attrs := tokenstore.MetaAttributes()
	for _, a := range attrs {
		if strings.Contains(a, "token") {
			t.Errorf("MetaAttributes() has %q, want no token attribute", a)
		}
	}
	for _, want := range []string{"pk", "status", "version", "refresh_due_at", "lease_owner"} {
		if !strings.Contains(" "+strings.Join(attrs, " ")+" ", " "+want+" ") {
			t.Errorf("MetaAttributes() = %v, want %s among them", attrs, want)
		}
	}
}

// TestPlantedPlaintextTokenIsRefused: with RefusePlaintext (every deployment of the template),
// a token someone wrote into the table in clear is refused, not used; SealPlaintext (pdctl
// tokens seal) seals an older table's plain tokens so the switch can be turned on, and the
// tokens read back unchanged.
func TestPlantedPlaintextTokenIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	legacy := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now} // writes in clear
	planted, err := legacy.Install(ctx, installation(acme, "planted", e.clock.Now().Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	strict := &tokenstore.Store{DB: e.store.DB, Table: e.table, Now: e.clock.Now, Cipher: e.store.Cipher, RefusePlaintext: true}
	if in, err := strict.Get(ctx, acme); !errors.Is(err, tokenstore.ErrTokenInClear) || in.AccessToken != "" {
		t.Errorf("Get(planted plaintext token) = token returned %t, %v; want ErrTokenInClear", in.AccessToken != "", err)
	}
	if _, err := strict.Lease(ctx, acme, "refresher-1", time.Minute); !errors.Is(err, tokenstore.ErrTokenInClear) {
		t.Errorf("Lease(planted plaintext token) = %v, want ErrTokenInClear", err)
	}
	if _, err := strict.Describe(ctx, acme); err != nil {
		t.Errorf("Describe(planted plaintext token) = %v, want it described (no token read)", err)
	}

	// An older table: seal, then the switch reads every token.
	n, err := strict.SealPlaintext(ctx, e.db)
	if err != nil || n != 1 {
		t.Fatalf("SealPlaintext = %d, %v; want 1 item sealed", n, err)
	}
	if found := testenv.AttributesInClear(e.raw(t, "inst#3408256#5206648"), planted.AccessToken, planted.RefreshToken); len(found) > 0 {
		t.Errorf("after SealPlaintext the item holds a token in clear in %v", found)
	}
	got, err := strict.Get(ctx, acme)
	if err != nil || got.AccessToken != planted.AccessToken || got.RefreshToken != planted.RefreshToken {
		t.Errorf("Get after SealPlaintext: tokens match = %t, %v; want the same tokens", got.AccessToken == planted.AccessToken && got.RefreshToken == planted.RefreshToken, err)
	}
	if n, err := strict.SealPlaintext(ctx, e.db); err != nil || n != 0 {
		t.Errorf("SealPlaintext again = %d, %v; want 0", n, err)
	}
}
