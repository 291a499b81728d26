package tokenstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// lostAnswer plays what the SDK does when a put lands but its answer is lost (a 500 after the
// write, a reset connection): it sends the same request again and returns the second answer.
type lostAnswer struct {
	*testenv.SerialDynamoDB
}

func (l lostAnswer) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := l.SerialDynamoDB.PutItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	return l.SerialDynamoDB.PutItem(ctx, in, opts...)
}

// A retried put of a short-lived record must report the record as ours: otherwise an alert is
// silenced by its own dedupe record, and a code or job claim is refused to its own claimer.
func TestRetriedPutsAreTheirOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	retrying := &tokenstore.Store{DB: lostAnswer{testenv.SerialWrites(e.db)}, Table: e.table, Now: e.clock.Now}

	if first, err := retrying.Once(t.Context(), "alert#x", time.Hour); err != nil || !first {
		t.Errorf("Once with a retried put = %v, %v; want first", first, err)
	}
	if first, err := e.store.Once(t.Context(), "alert#x", time.Hour); err != nil || first {
		t.Errorf("Once by another caller = %v, %v; want not first", first, err)
	}
	if _, err := retrying.ClaimCode(t.Context(), tokenstore.HashCode("code-retried"), time.Hour); err != nil {
		t.Errorf("ClaimCode with a retried put = %v, want the claim", err)
	}
	if _, err := retrying.ClaimWork(t.Context(), "job-retried", "owner-1", time.Minute, time.Hour); err != nil {
		t.Errorf("ClaimWork with a retried put = %v, want the claim", err)
	}
}

// TestRetriedTakeoverStillSaysTookOver: the put that takes over an abandoned claim lands, its
// answer is lost and the SDK sends it again. The resend meets the claim it wrote itself; it
// must still report the takeover, because the dead owner may have spent the code (the install
// then asks for a restart instead of exchanging a code twice). A fresh claim's resend must not.
func TestRetriedTakeoverStillSaysTookOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	retrying := &tokenstore.Store{DB: lostAnswer{testenv.SerialWrites(e.db)}, Table: e.table, Now: e.clock.Now}
	h := tokenstore.HashCode("code-of-a-crashed-callback-retried")
	if c, err := retrying.ClaimCode(t.Context(), h, time.Hour); err != nil || c.TookOver {
		t.Fatalf("first ClaimCode with a retried put = %+v, %v; want a fresh claim, no takeover", c, err)
	}
	e.clock.Advance(tokenstore.CodeLease + time.Second)
	c, err := retrying.ClaimCode(t.Context(), h, time.Hour)
	if err != nil || !c.TookOver {
		t.Fatalf("ClaimCode over an abandoned claim with a retried put = %+v, %v; want TookOver", c, err)
	}
	w, err := retrying.ClaimWork(t.Context(), "job-retried-takeover", "owner-1", time.Minute, time.Hour)
	if err != nil || w.TookOver {
		t.Fatalf("ClaimWork = %+v, %v; want a fresh claim", w, err)
	}
	e.clock.Advance(time.Minute + time.Second)
	if w, err := retrying.ClaimWork(t.Context(), "job-retried-takeover", "owner-2", time.Minute, time.Hour); err != nil || !w.TookOver || w.Owner != "owner-2" {
		t.Fatalf("ClaimWork over a lapsed lease with a retried put = %+v, %v; want owner-2 with TookOver", w, err)
	}
}
