package tokenstore

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Key prefixes of the three kinds of item sharing the table.
const (
	instPrefix = "inst#"
	codePrefix = "code#"
	oncePrefix = "once#"
)

// Attribute names, as they are stored. Expressions refer to them as "#" + name.
const (
	attrPK           = "pk"
	attrStatus       = "status"
	attrVersion      = "version"
	attrLeaseOwner   = "lease_owner"
	attrLeaseUntil   = "lease_until"
	attrDueShard     = "due_shard"
	attrRefreshDueAt = "refresh_due_at"
	attrExpiresAt    = "expires_at" // the table's TTL attribute: never set on installations
	attrState        = "state"
	dueIndex         = "refresh-due"
)

// instKey is the partition key of an installation: "inst#<company>#<user>".
func instKey(id InstallationID) string {
	return instPrefix + strconv.FormatInt(id.CompanyID, 10) + "#" + strconv.FormatInt(id.UserID, 10)
}

// parseInstKey is the inverse of instKey.
func parseInstKey(pk string) (InstallationID, error) {
	rest, ok := strings.CutPrefix(pk, instPrefix)
	if !ok {
		return InstallationID{}, fmt.Errorf("tokenstore: key %q is not an installation", pk)
	}
	c, u, ok := strings.Cut(rest, "#")
	company, err1 := strconv.ParseInt(c, 10, 64)
	user, err2 := strconv.ParseInt(u, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return InstallationID{}, fmt.Errorf("tokenstore: malformed installation key %q", pk)
	}
	return InstallationID{CompanyID: company, UserID: user}, nil
}

// shardOf spreads installations over the due index's partition keys "0".."shards-1" with a
// stable hash (FNV-1a of the key), so an installation stays in one shard across deployments as
// long as shards does not change.
func shardOf(id InstallationID, shards int) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(instKey(id)))
	return strconv.Itoa(int(h.Sum32() % uint32(shards)))
}

// instItem is an installation as stored, but for its tokens (access_token, refresh_token: see
// tokens.go), which are sealed and written and read apart. Times the conditions and the index
// compare are Unix seconds; times only people read are RFC 3339 text.
type instItem struct {
	PK              string   `dynamodbav:"pk"`
	CompanyID       int64    `dynamodbav:"company_id"`
	UserID          int64    `dynamodbav:"user_id"`
	Status          string   `dynamodbav:"status"`
	Version         int64    `dynamodbav:"version"`
	APIDomain       string   `dynamodbav:"api_domain,omitempty"`
	Scopes          []string `dynamodbav:"scopes,omitempty"`
	AccessExpiresAt int64    `dynamodbav:"access_expires_at,omitempty"`
	DueShard        string   `dynamodbav:"due_shard,omitempty"`
	RefreshDueAt    int64    `dynamodbav:"refresh_due_at,omitempty"`
	LeaseOwner      string   `dynamodbav:"lease_owner,omitempty"`
	LeaseUntil      int64    `dynamodbav:"lease_until,omitempty"`
	FailureCount    int      `dynamodbav:"failure_count"`
	LastFailure     string   `dynamodbav:"last_failure,omitempty"`
	CodeHash        string   `dynamodbav:"code_hash,omitempty"`
	InstalledAt     string   `dynamodbav:"installed_at,omitempty"`
	LastInstalledAt int64    `dynamodbav:"last_installed_at,omitempty"` // latest Install (Unix s), for UninstallAsOf
	UpdatedAt       string   `dynamodbav:"updated_at,omitempty"`
	RefreshedAt     string   `dynamodbav:"refreshed_at,omitempty"`
	WarmUntil       int64    `dynamodbav:"warm_until,omitempty"`
	AlwaysWarm      bool     `dynamodbav:"always_warm,omitempty"`
}

// decodeInstallation decodes everything but the tokens (AccessToken and RefreshToken stay
// empty); Store.decode opens them too.
func decodeInstallation(av map[string]types.AttributeValue) (Installation, error) {
	var it instItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Installation{}, fmt.Errorf("decode installation: %w", err)
	}
	id, err := parseInstKey(it.PK)
	if err != nil {
		return Installation{}, err
	}
	return Installation{
		ID:           id,
		APIDomain:    it.APIDomain,
		Scopes:       it.Scopes,
		ExpiresAt:    fromUnix(it.AccessExpiresAt),
		Status:       Status(it.Status),
		Version:      it.Version,
		LeaseOwner:   it.LeaseOwner,
		LeaseUntil:   fromUnix(it.LeaseUntil),
		FailureCount: it.FailureCount,
		LastFailure:  it.LastFailure,
		CodeHash:     it.CodeHash,
		InstalledAt:  fromText(it.InstalledAt),
		UpdatedAt:    fromText(it.UpdatedAt),
		RefreshedAt:  fromText(it.RefreshedAt),
		RefreshDueAt: fromUnix(it.RefreshDueAt),
		WarmUntil:    fromUnix(it.WarmUntil),
		AlwaysWarm:   it.AlwaysWarm,
	}, nil
}

// Times are stored at second precision; Unix 0 and "" both mean the zero time.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func text(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func fromText(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// str, num and list build expression values.
func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func list(ss []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk)}
}

var placeholder = regexp.MustCompile(`#[a-z_]+`)

// names returns ExpressionAttributeNames for every "#name" placeholder in the expressions.
// Every attribute goes through a placeholder because status, state, ttl and many more are
// DynamoDB reserved words, and DynamoDB rejects names an expression does not use.
func names(exprs ...string) map[string]string {
	m := map[string]string{}
	for _, e := range exprs {
		for _, p := range placeholder.FindAllString(e, -1) {
			m[p] = p[1:]
		}
	}
	return m
}
