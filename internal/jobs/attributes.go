package jobs

import (
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The message attributes of the jobs queue and its dead-letter queue: the one schema that
// Enqueue writes, the worker writes when it dead-letters a job, and pdctl's dlq peek and
// redrive read. Attributes are for operators (filtering, peeking); the worker decides on the
// body only.
const (
	// Identity of the job, written by Enqueue and on every dead letter.
	AttrKind      = "kind"
	AttrJobID     = "job_id"
	AttrCompanyID = "company_id"
	AttrUserID    = "user_id"
	// AttrAttempt is written by Enqueue only.
	AttrAttempt = "attempt"
	// The worker's own count, on a copy it sent again to defer the job (see DeadLetter for
	// their meaning): the attempts spent by the job's earlier messages, so a deferral neither
	// spends nor forgets any, and the deferrals that waited for an obstacle to clear by
	// itself, which the worker bounds. Absent means 0. Redrive drops them.
	AttrEarlierAttempts = "earlier_attempts"
	AttrDeferrals       = "deferrals"
	// The dead-letter verdict: why and where the worker gave up. Redrive drops them.
	AttrReason       = "reason"
	AttrError        = "error"
	AttrStatus       = "status"
	AttrReceiveCount = "receive_count"
	AttrMessageID    = "message_id"
)

// maxAttrText bounds a dead-letter attribute's text.
const maxAttrText = 500

// Attributes are the message attributes Enqueue sends with j: kind, job_id, company_id,
// user_id and attempt.
func (j Job) Attributes() map[string]types.MessageAttributeValue {
	return map[string]types.MessageAttributeValue{
		AttrKind:      strAttr(j.Kind),
		AttrJobID:     strAttr(j.ID),
		AttrCompanyID: numAttr(j.CompanyID),
		AttrUserID:    numAttr(j.UserID),
		AttrAttempt:   numAttr(int64(j.Attempt)),
	}
}

// DeadLetter is what a dead-lettered job's message attributes say: the job's identity (as far
// as the body could be read) and the worker's verdict. The body is the job's original body.
type DeadLetter struct {
	// Reason is the verdict's reason: a pderrors reason or one of the worker's.
	Reason string
	// Error is the error or message behind the reason; never a token or a body.
	Error string
	// Status is Pipedrive's HTTP status, 0 when no answer decided.
	Status int
	// CompanyID, UserID, JobID and Kind identify the job; zero when its body was unreadable.
	CompanyID, UserID int64
	JobID, Kind       string
	// ReceiveCount is SQS's receive count of the delivery that was dead-lettered (1 for a
	// direct invocation).
	ReceiveCount int
	// MessageID is the jobs-queue message that was dead-lettered; empty for a direct invocation.
	MessageID string
	// EarlierAttempts counts the attempts spent by the job's earlier messages: the worker
	// deferred it (re-sent a copy) after them, and a copy's receive count starts again at 1.
	// The job's attempts are EarlierAttempts plus ReceiveCount.
	EarlierAttempts int
	// Deferrals counts the job's deferrals that waited for an obstacle to clear by itself (its
	// claim or the refresh lease held elsewhere, an invocation short of time), which the
	// worker bounds.
	Deferrals int
}

// Attributes encodes d as SQS message attributes. Empty texts and zero numbers are left out;
// texts are cut to 500 bytes of characters SQS accepts.
func (d DeadLetter) Attributes() map[string]types.MessageAttributeValue {
	attrs := map[string]types.MessageAttributeValue{}
	put := func(k, dataType, s string) {
		if s = AttrText(s); s != "" && s != "0" {
			attrs[k] = types.MessageAttributeValue{DataType: aws.String(dataType), StringValue: aws.String(s)}
		}
	}
	put(AttrReason, "String", d.Reason)
	put(AttrError, "String", d.Error)
	put(AttrStatus, "Number", strconv.Itoa(d.Status))
	put(AttrCompanyID, "Number", strconv.FormatInt(d.CompanyID, 10))
	put(AttrUserID, "Number", strconv.FormatInt(d.UserID, 10))
	put(AttrJobID, "String", d.JobID)
	put(AttrKind, "String", d.Kind)
	put(AttrReceiveCount, "Number", strconv.Itoa(d.ReceiveCount))
	put(AttrMessageID, "String", d.MessageID)
	put(AttrEarlierAttempts, "Number", strconv.Itoa(d.EarlierAttempts))
	put(AttrDeferrals, "Number", strconv.Itoa(d.Deferrals))
	return attrs
}

// DeadLetterOf decodes the attributes of a received dead-letter message. Missing or unreadable
// attributes leave their field zero; a message SQS's own redrive moved carries the job's
// identity only (no reason).
func DeadLetterOf(attrs map[string]types.MessageAttributeValue) DeadLetter {
	str := func(k string) string { return aws.ToString(attrs[k].StringValue) }
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(str(k), 10, 64)
		return n
	}
	return DeadLetter{
		Reason: str(AttrReason), Error: str(AttrError), Status: int(num(AttrStatus)),
		CompanyID: num(AttrCompanyID), UserID: num(AttrUserID), JobID: str(AttrJobID), Kind: str(AttrKind),
		ReceiveCount: int(num(AttrReceiveCount)), MessageID: str(AttrMessageID),
		EarlierAttempts: int(num(AttrEarlierAttempts)), Deferrals: int(num(AttrDeferrals)),
	}
}

// RedriveAttributes are the attributes a dead-lettered message goes back to the jobs queue
// with: all of attrs but the dead-letter verdict (reason, error, status, receive_count,
// message_id) and the worker's counts (earlier_attempts, deferrals), which describe deliveries
// that are over: a redriven job starts afresh.
func RedriveAttributes(attrs map[string]types.MessageAttributeValue) map[string]types.MessageAttributeValue {
	out := map[string]types.MessageAttributeValue{}
	for k, v := range attrs {
		switch k {
		case AttrReason, AttrError, AttrStatus, AttrReceiveCount, AttrMessageID, AttrEarlierAttempts, AttrDeferrals:
			continue
		}
		out[k] = v
	}
	return out
}

// AttrText makes s a valid SQS attribute value: characters SQS accepts only (others become
// '?'), at most 500 bytes, cut on a UTF-8 boundary.
func AttrText(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxAttrText {
		s = strings.ToValidUTF8(s[:maxAttrText], "")
	}
	return s
}

func strAttr(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func numAttr(n int64) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(n, 10))}
}
