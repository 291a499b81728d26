// Package jobs defines the message the apicall worker consumes from the jobs queue, and an
// Enqueuer that sends it to SQS.
//
// A Job names one unit of Pipedrive work for one installation. Its ID is the idempotency key:
// SQS delivers at least once and a producer may enqueue the same work twice (a reloaded
// callback), so the worker must treat two jobs with one ID as one.
package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// Engine names the worker engine that runs the jobs queue's jobs (the apicall function): its
// claim keys (worker.ClaimKey), errors and alerts carry it.
const Engine = "apicall"

// Kinds of job.
const (
	// KindRegisterWebhooks asks the worker to create the app's webhooks for a new installation.
	// Method, Path and Body are optional: the worker knows the webhooks the app needs.
	KindRegisterWebhooks = "register_webhooks"
	// KindAPICall asks the worker to perform Method Path (relative to the installation's
	// api_domain) with Body.
	KindAPICall = "api_call"
)

// MaxDelay is the longest delay SQS accepts on a message (15 minutes). A job whose NotBefore is
// further away is delivered after MaxDelay; the worker must re-check NotBefore and re-delay it.
const MaxDelay = 900 * time.Second

// MaxMessageBytes bounds the encoded job: SQS's 256 KiB message limit less 8 KiB, because
// message attributes count toward that limit and the worker must still be able to
// dead-letter the job with its reason attributes.
const MaxMessageBytes = 256*1024 - 8*1024

// maxIDLen bounds the idempotency key (it is stored and logged).
const maxIDLen = 128

// ErrInvalidJob is wrapped by every Validate error.
var ErrInvalidJob = errors.New("jobs: invalid job")

// Job is one unit of Pipedrive work for one installation, as sent on the queue (JSON).
type Job struct {
	// ID is the idempotency key: the same work always gets the same ID
	// (e.g. "register_webhooks:3408256:5206648"). Required, at most 128 printable characters.
	ID string `json:"id"`
	// Kind is what to do: KindRegisterWebhooks or KindAPICall.
	Kind string `json:"kind"`
	// CompanyID and UserID name the installation whose tokens the worker uses. Required.
	CompanyID int64 `json:"company_id"`
	UserID    int64 `json:"user_id"`
	// Method is the HTTP method (GET, POST, PUT, PATCH, DELETE); required for KindAPICall.
	Method string `json:"method,omitempty"`
	// Path is relative to the installation's api_domain and starts with "/api/"
	// (e.g. "/api/v1/webhooks"); required for KindAPICall. Never a full URL: the worker adds the
	// installation's current api_domain, so a job cannot send a token to another host.
	Path string `json:"path,omitempty"`
	// Body is the JSON request body, if any.
	Body json.RawMessage `json:"body,omitempty"`
	// NotBefore is the earliest time the worker should run the job; zero means now.
	NotBefore time.Time `json:"not_before,omitzero"`
	// RetrySafe says the call may be sent again when its outcome is unknown (a lost answer, a
	// 5xx): set it for a POST that Pipedrive de-duplicates or whose repetition does no harm.
	// Without it such a POST is dead-lettered with reason outcome_unknown, never repeated
	// blindly. Other methods are retried regardless.
	RetrySafe bool `json:"retry_safe,omitempty"`
	// Attempt counts previous attempts of this work (0 for the first), for backoff and alerts.
	Attempt int `json:"attempt"`
	// UseReserve says the job may spend the company's budget reserve: the part of Pipedrive's
	// daily token budget (shared by every integration of the customer) the kit leaves to the
	// customer's other tools (template parameter BudgetReservePercent). Set it for work a
	// person is waiting for (an install's webhooks, a user's click). Without it (backfills,
	// catch-up, bulk syncs) the job waits, without spending an attempt, while the company's
	// remaining budget is within the reserve, until the budget resets.
	UseReserve bool `json:"use_reserve,omitempty"`
}

// KindCheck returns the problems of a job's kind-specific fields ("api_call needs method and
// path"), none when they are valid. A nil KindCheck accepts every job of its kind.
type KindCheck func(j Job) []string

// Kinds are the kinds producers may enqueue, with their checks: what Validate and Parse accept.
// A worker accepts the kinds it has runners for (ValidateKinds, ParseKinds).
var Kinds = map[string]KindCheck{
	KindRegisterWebhooks: nil,
	KindAPICall:          CheckAPICall,
	KindWebhookEvent:     CheckWebhookEvent,
	KindCheckWebhooks:    nil,
	KindCatchUp:          CheckCatchUp,
	KindAppInstall:       nil,
	KindAppUninstall:     nil,
}

// CheckAPICall is the KindCheck of KindAPICall: Method and Path are required.
func CheckAPICall(j Job) []string {
	if j.Method == "" || j.Path == "" {
		return []string{"api_call needs method and path"}
	}
	return nil
}

// Validate reports whether j can be enqueued and run: ValidateKinds with Kinds. Errors wrap
// ErrInvalidJob.
func (j Job) Validate() error { return j.ValidateKinds(Kinds) }

// ValidateKinds reports whether j is valid when kinds are the known kinds: the common fields
// (id, ids, method, path, body, attempt) are checked for every kind, then the kind's own
// KindCheck; a kind missing from kinds is "unknown". Errors wrap ErrInvalidJob and list every
// problem found.
func (j Job) ValidateKinds(kinds map[string]KindCheck) error {
	var problems []string
	switch {
	case j.ID == "":
		problems = append(problems, "id is empty")
	case len(j.ID) > maxIDLen:
		problems = append(problems, "id is longer than 128 bytes")
	case strings.IndexFunc(j.ID, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0:
		problems = append(problems, "id has spaces or control characters")
	}
	if check, ok := kinds[j.Kind]; ok {
		if check != nil {
			problems = append(problems, check(j)...)
		}
	} else if j.Kind == "" {
		problems = append(problems, "kind is empty")
	} else {
		problems = append(problems, "unknown kind "+strconv.Quote(j.Kind))
	}
	if j.CompanyID <= 0 || j.UserID <= 0 {
		problems = append(problems, "company_id and user_id must be positive")
	}
	if j.Method != "" {
		switch j.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			problems = append(problems, "unsupported method "+strconv.Quote(j.Method))
		}
	}
	if j.Path != "" && !validPath(j.Path) {
		problems = append(problems, "path must start with /api/ and hold no //, backslash, dot segment, space or control character")
	}
	if len(j.Body) > 0 && !json.Valid(j.Body) {
		problems = append(problems, "body is not valid JSON")
	}
	if j.Attempt < 0 {
		problems = append(problems, "attempt is negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidJob, j.ID, strings.Join(problems, "; "))
	}
	return nil
}

// validPath accepts only paths under /api/ on the installation's own domain, as a server
// would read them: the path part is percent-decoded once (so "%2e%2e" is "..", "%2f" a
// separator) and must then have no dot segments, no empty segments, no backslash and no
// further escapes (a double-encoded "%252e" would become ".." at a server that decodes twice).
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/api/") || strings.IndexFunc(p, func(r rune) bool { return unicode.IsControl(r) || r == ' ' }) >= 0 {
		return false
	}
	raw, _, _ := strings.Cut(p, "?")
	decoded, err := url.PathUnescape(raw)
	if err != nil || strings.ContainsAny(decoded, `\%`) || strings.IndexFunc(decoded, unicode.IsControl) >= 0 {
		return false
	}
	return NormalPath(decoded)
}

// NormalPath reports whether a decoded path is already in normal form under /api/: no empty,
// "." or ".." segment, so path.Clean leaves it as it is (a trailing slash aside) and it cannot
// climb out of /api/.
func NormalPath(decoded string) bool {
	if !strings.HasPrefix(decoded, "/api/") {
		return false
	}
	segs := strings.Split(strings.TrimSuffix(decoded[1:], "/"), "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return len(segs) >= 2
}

// Parse decodes a queue message body into a Job and validates it: ParseKinds with Kinds.
func Parse(body string) (Job, error) { return ParseKinds(body, Kinds) }

// ParseKinds decodes a queue message body into a Job and validates it with ValidateKinds.
// Unknown fields are ignored so a newer producer does not break an older worker. Errors wrap
// ErrInvalidJob.
func ParseKinds(body string, kinds map[string]KindCheck) (Job, error) {
	var j Job
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&j); err != nil {
		return Job{}, fmt.Errorf("%w: decode: %v", ErrInvalidJob, err)
	}
	if err := j.ValidateKinds(kinds); err != nil {
		return Job{}, err
	}
	return j, nil
}

// SQS is the part of the SQS client the enqueuer uses; *sqs.Client satisfies it.
type SQS interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Enqueuer sends jobs to one SQS queue. SQS and QueueURL are required. Safe for concurrent use.
type Enqueuer struct {
	// SQS sends the message.
	SQS SQS
	// QueueURL is the jobs queue.
	QueueURL string
	// Now is the clock used to turn NotBefore into a delay; time.Now when nil.
	Now func() time.Time
	// Kinds are the kinds it sends (ValidateKinds); Kinds (the kit's) when nil. The worker's
	// enqueuer adds the app's own kinds.
	Kinds map[string]KindCheck
}

// Enqueue validates j and sends it. The message carries j.Attributes() (kind, job_id,
// company_id, user_id, attempt) and is delayed until j.NotBefore (at most MaxDelay).
func (e *Enqueuer) Enqueue(ctx context.Context, j Job) error {
	kinds := e.Kinds
	if kinds == nil {
		kinds = Kinds
	}
	if err := j.ValidateKinds(kinds); err != nil {
		return err
	}
	body, err := Encode(j)
	if err != nil {
		return err
	}
	if len(body) > MaxMessageBytes {
		return fmt.Errorf("%w %q: encoded job is %d bytes, over %d", ErrInvalidJob, j.ID, len(body), MaxMessageBytes)
	}
	_, err = e.SQS.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(e.QueueURL),
		MessageBody:       aws.String(body),
		DelaySeconds:      e.delaySeconds(j.NotBefore),
		MessageAttributes: j.Attributes(),
	})
	if err != nil {
		return fmt.Errorf("jobs: send %s: %w", j.ID, err)
	}
	return nil
}

// Encode is j as a queue message body: JSON without HTML escaping (json.Marshal would turn each
// <, > and & of an HTML-heavy note into six bytes) and without a trailing newline. Its length
// is what counts against MaxMessageBytes.
func Encode(j Job) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return "", fmt.Errorf("jobs: encode %s: %w", j.ID, err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// DelaySeconds is the SQS delay for a job that should not run before notBefore, as seen at now:
// rounded up to whole seconds, 0 for the past, at most MaxDelay.
func DelaySeconds(notBefore, now time.Time) int32 {
	if notBefore.IsZero() || !notBefore.After(now) {
		return 0
	}
	d := notBefore.Sub(now)
	if d >= MaxDelay {
		return int32(MaxDelay / time.Second)
	}
	return int32(math.Ceil(d.Seconds()))
}

func (e *Enqueuer) delaySeconds(notBefore time.Time) int32 {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	return DelaySeconds(notBefore, now())
}

// RegisterWebhooks is the register_webhooks job for installation id. run tells one request for
// it from another ("v<version>" for an install, once per install version; an operator's run
// id), because the worker runs a job id of an installation once: the id is
// "register_webhooks:<company>:<user>:<run>".
func RegisterWebhooks(id installation.ID, run string) Job {
	// The app does not work for the user until its webhooks exist: a few calls that may use
	// the budget reserve.
	return Job{ID: KindRegisterWebhooks + ":" + id.String() + ":" + run, Kind: KindRegisterWebhooks,
		CompanyID: id.CompanyID, UserID: id.UserID, UseReserve: true}
}
