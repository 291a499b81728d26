package tokenstore_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestKeyPrefixesCoverEveryMethodAndConstant: every exported Store method is classified
// (MethodKeyPrefixes or IndexMethods), and every key prefix constant of the package is in
// KeyPrefixes, so a new method or a new kind of item cannot reach a function's role unseen.
func TestKeyPrefixesCoverEveryMethodAndConstant(t *testing.T) {
	st := reflect.TypeFor[*tokenstore.Store]()
	methods := map[string]bool{}
	for m := range st.Methods() {
		methods[m.Name] = true
		_, byKey := tokenstore.MethodKeyPrefixes[m.Name]
		if byKey == slices.Contains(tokenstore.IndexMethods, m.Name) {
			t.Errorf("Store.%s is in MethodKeyPrefixes %t and IndexMethods %t; want exactly one", m.Name, byKey, !byKey)
		}
	}
	for name, prefixes := range tokenstore.MethodKeyPrefixes {
		if !methods[name] {
			t.Errorf("MethodKeyPrefixes names %s, which is no Store method", name)
		}
		for _, p := range prefixes {
			if !slices.Contains(tokenstore.KeyPrefixes, p) {
				t.Errorf("MethodKeyPrefixes[%s] has %q, not in KeyPrefixes", name, p)
			}
		}
	}
	// The prefix constants as the source declares them: "<letters>#".
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	prefixLit := regexp.MustCompile(`^[a-z_]+#$`)
	declared := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && prefixLit.MatchString(v) {
					declared[v] = true
				}
			}
			return true
		})
	}
	if got, want := slices.Sorted(maps.Keys(declared)), slices.Sorted(slices.Values(tokenstore.KeyPrefixes)); !slices.Equal(got, want) {
		t.Errorf("key prefix literals in the source = %q, KeyPrefixes = %q; want the same", got, want)
	}
}

// keyRecorder is a DynamoDB that records the pk of every item each request touches, by the
// Store method being run (Query: "index:<name>").
type keyRecorder struct {
	tokenstore.DynamoDB
	mu     sync.Mutex
	method string
	keys   map[string][]string
}

func (r *keyRecorder) record(item map[string]types.AttributeValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pk := "?"
	if s, ok := item["pk"].(*types.AttributeValueMemberS); ok {
		pk = s.Value
	}
	r.keys[r.method] = append(r.keys[r.method], pk)
}

func (r *keyRecorder) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.record(in.Key)
	return r.DynamoDB.GetItem(ctx, in, o...)
}

func (r *keyRecorder) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.record(in.Item)
	return r.DynamoDB.PutItem(ctx, in, o...)
}

func (r *keyRecorder) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.record(in.Key)
	return r.DynamoDB.UpdateItem(ctx, in, o...)
}

func (r *keyRecorder) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.record(in.Key)
	return r.DynamoDB.DeleteItem(ctx, in, o...)
}

func (r *keyRecorder) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	r.record(map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "index:" + aws.ToString(in.IndexName)}})
	return r.DynamoDB.Query(ctx, in, o...)
}

func (r *keyRecorder) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		switch {
		case it.ConditionCheck != nil:
			r.record(it.ConditionCheck.Key)
		case it.Put != nil:
			r.record(it.Put.Item)
		case it.Update != nil:
			r.record(it.Update.Key)
		case it.Delete != nil:
			r.record(it.Delete.Key)
		}
	}
	return r.DynamoDB.TransactWriteItems(ctx, in, o...)
}

// TestMethodKeyPrefixesAreTheKeysTouched runs every Store method against moto and compares
// the keys its requests name with MethodKeyPrefixes (and IndexMethods): the template test
// grants each function's role the prefixes of the methods its code calls, and moto does not
// enforce IAM, so this is where a wrong entry would show.
func TestMethodKeyPrefixesAreTheKeysTouched(t *testing.T) {
	e := newEnv(t)
	rec := &keyRecorder{DynamoDB: e.store.DB, keys: map[string][]string{}}
	s := &tokenstore.Store{DB: rec, Table: e.store.Table, Now: e.store.Now, Cipher: e.store.Cipher}
	ctx := t.Context()
	id := tokenstore.InstallationID{CompanyID: 31, UserID: 32}
	now := e.clock.Now()
	var in tokenstore.Installation
	var receipt tokenstore.EventReceipt
	var code tokenstore.WorkClaim
	hash1, hash2, hash3 := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	calls := []struct {
		method string
		call   func() error
	}{
		{"Install", func() (err error) { in, err = s.Install(ctx, installation(id, "a", now.Add(time.Hour))); return err }},
		{"Get", func() (err error) { _, err = s.Get(ctx, id); return err }},
		{"Describe", func() (err error) { _, err = s.Describe(ctx, id); return err }},
		{"SealPlaintext", func() error {
			// One item written in clear, as before encryption (not through the recorder).
			legacy := &tokenstore.Store{DB: e.store.DB, Table: e.store.Table, Now: e.store.Now}
			if _, err := legacy.Install(ctx, installation(tokenstore.InstallationID{CompanyID: 31, UserID: 35}, "plain", now.Add(time.Hour))); err != nil {
				return err
			}
			_, err := s.SealPlaintext(ctx, e.db)
			return err
		}},
		{"MarkUse", func() (err error) { _, err = s.MarkUse(ctx, in); return err }},
		{"SetAlwaysWarm", func() (err error) { _, err = s.SetAlwaysWarm(ctx, id, true); return err }},
		{"Lease", func() (err error) { in, err = s.Lease(ctx, id, "o", time.Minute); return err }},
		{"Reschedule", func() error { return s.Reschedule(ctx, id, "o", now.Add(time.Minute)) }},
		{"RecordFailure", func() error {
			if _, err := s.Lease(ctx, id, "o", time.Minute); err != nil {
				return err
			}
			return s.RecordFailure(ctx, id, "o", "server_error", now.Add(time.Minute))
		}},
		{"Release", func() error {
			if _, err := s.Lease(ctx, id, "o", time.Minute); err != nil {
				return err
			}
			return s.Release(ctx, id, "o")
		}},
		{"SaveRefreshed", func() (err error) {
			if in, err = s.Lease(ctx, id, "o", time.Minute); err != nil {
				return err
			}
			_, err = s.SaveRefreshed(ctx, id, "o", in.Version, tokenstore.Tokens{AccessToken: "v1u:b", ExpiresAt: now.Add(time.Hour)})
			return err
		}},
		{"MarkNeedsReauth", func() error {
			if _, err := s.Lease(ctx, id, "o", time.Minute); err != nil {
				return err
			}
			return s.MarkNeedsReauth(ctx, id, "o", "invalid_grant")
		}},
		{"Uninstall", func() (err error) { _, err = s.Uninstall(ctx, id); return err }},
		{"UninstallAsOf", func() (err error) { _, err = s.UninstallAsOf(ctx, id, now.Add(time.Second)); return err }},
		{"ClaimCode", func() (err error) { code, err = s.ClaimCode(ctx, hash1, time.Hour); return err }},
		{"CompleteCode", func() error { return s.CompleteCode(ctx, hash1, code.Owner, id, time.Hour) }},
		{"RetireCode", func() error {
			c, err := s.ClaimCode(ctx, hash2, time.Hour)
			if err != nil {
				return err
			}
			return s.RetireCode(ctx, hash2, c.Owner, time.Hour)
		}},
		{"ReleaseCode", func() error {
			c, err := s.ClaimCode(ctx, hash3, time.Hour)
			if err != nil {
				return err
			}
			return s.ReleaseCode(ctx, hash3, c.Owner)
		}},
		{"ClaimWork", func() (err error) { _, err = s.ClaimWork(ctx, "job", "o", time.Minute, time.Hour); return err }},
		{"CompleteWork", func() error { return s.CompleteWork(ctx, "job", "o", time.Hour) }},
		{"ReleaseWork", func() error {
			if _, err := s.ClaimWork(ctx, "job2", "o", time.Minute, time.Hour); err != nil {
				return err
			}
			return s.ReleaseWork(ctx, "job2", "o")
		}},
		{"MarkWorkCalling", func() error {
			if _, err := s.ClaimWork(ctx, "job3", "o", time.Minute, time.Hour); err != nil {
				return err
			}
			return s.MarkWorkCalling(ctx, "job3", "o")
		}},
		{"ForgetWork", func() error { return s.ForgetWork(ctx, "job3") }},
		{"Once", func() (err error) { _, err = s.Once(ctx, "alert", time.Hour); return err }},
		{"AdvanceEntity", func() (err error) { _, err = s.AdvanceEntity(ctx, "deal:1", now, time.Hour); return err }},
		{"EntityTime", func() (err error) { _, err = s.EntityTime(ctx, "deal:1"); return err }},
		{"AcceptEvent", func() (err error) {
			live := tokenstore.InstallationID{CompanyID: 31, UserID: 33}
			if _, err := s.Install(ctx, installation(live, "e", now.Add(time.Hour))); err != nil {
				return err
			}
			receipt, err = s.AcceptEvent(ctx, live, "event-1", time.Minute, time.Hour)
			return err
		}},
		{"ConfirmEvent", func() error { return s.ConfirmEvent(ctx, receipt, time.Hour) }},
		{"ForgetEvent", func() error { return s.ForgetEvent(ctx, receipt) }},
		{"RecordWebhookOwner", func() error {
			return s.RecordWebhookOwner(ctx, "77", tokenstore.InstallationID{CompanyID: 31, UserID: 33})
		}},
		{"WebhookOwner", func() (err error) { _, err = s.WebhookOwner(ctx, 31, "77"); return err }},
		{"CountAttempt", func() (err error) { _, err = s.CountAttempt(ctx, "ip:1", 5, time.Minute); return err }},
		{"Gate", func() (err error) { _, err = s.Gate(ctx, 31); return err }},
		{"PauseCompany", func() (err error) {
			_, err = s.PauseCompany(ctx, 31, "payment_required", now.Add(time.Hour))
			return err
		}},
		{"ClaimProbe", func() (err error) { _, err = s.ClaimProbe(ctx, 31, now.Add(2*time.Hour)); return err }},
		{"HoldToken", func() error { return s.HoldToken(ctx, 31, tokenstore.HoldKey(32, false), now.Add(time.Second)) }},
		{"LiftPause", func() (err error) { _, err = s.LiftPause(ctx, 31); return err }},
		{"LeaseShard", func() error { return s.LeaseShard(ctx, 3, "o", time.Minute) }},
		{"ReleaseShard", func() error { return s.ReleaseShard(ctx, 3, "o") }},
		{"Due", func() (err error) { _, err = s.Due(ctx, now.Add(time.Hour), 10); return err }},
		{"DueIn", func() (err error) { _, err = s.DueIn(ctx, 0, now.Add(time.Hour), 10); return err }},
		{"DueShards", func() error { s.DueShards(); return nil }},
	}
	ran := map[string]bool{}
	for _, c := range calls {
		rec.mu.Lock()
		rec.method = c.method
		rec.mu.Unlock()
		if err := c.call(); err != nil {
			t.Fatalf("%s = %v", c.method, err)
		}
		ran[c.method] = true
	}
	for m := range reflect.TypeFor[*tokenstore.Store]().Methods() {
		if !ran[m.Name] {
			t.Errorf("Store.%s is not run here: add it, so that its keys are checked", m.Name)
		}
	}
	for _, c := range calls {
		want := tokenstore.MethodKeyPrefixes[c.method]
		got := map[string]bool{}
		for _, pk := range rec.keys[c.method] {
			if strings.HasPrefix(pk, "index:") {
				got[pk] = true
				continue
			}
			i := strings.IndexByte(pk, '#')
			got[pk[:i+1]] = true
		}
		if slices.Contains(tokenstore.IndexMethods, c.method) {
			if c.method != "DueShards" && !maps.Equal(got, map[string]bool{"index:refresh-due": true}) {
				t.Errorf("%s touched %v, want only the refresh-due index", c.method, slices.Sorted(maps.Keys(got)))
			}
			continue
		}
		// Helper calls (a Lease before SaveRefreshed, an Install before AcceptEvent, a claim
		// before RetireCode) land under the same method: compare what the method needs.
		for _, p := range want {
			if !got[p] {
				t.Errorf("%s touched %v, want %q among them (MethodKeyPrefixes)", c.method, slices.Sorted(maps.Keys(got)), p)
			}
		}
		for p := range got {
			if !slices.Contains(want, p) {
				t.Errorf("%s touched a %q item, which MethodKeyPrefixes[%s] = %q lacks", c.method, p, c.method, want)
			}
		}
	}
}
