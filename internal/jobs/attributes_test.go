package jobs_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
)

func TestAttrText(t *testing.T) {
	long := string(make([]byte, 600))
	tests := map[string]string{
		"plain":            "plain",
		"a\x01b":           "a?b",
		"tab\tand\nnl":     "tab\tand\nnl",
		"bad\xffutf8":      "bad?utf8",
		long:               "",
		"emoji \U0001F600": "emoji \U0001F600",
	}
	for in, want := range tests {
		got := jobs.AttrText(in)
		if in == long {
			if len(got) != 500 {
				t.Errorf("AttrText(600 NULs) has %d bytes, want 500", len(got))
			}
			continue
		}
		if got != want {
			t.Errorf("AttrText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := jobs.AttrText(strings.Repeat("é", 300)); len(got) > 500 || !strings.HasSuffix(got, "é") {
		t.Errorf("AttrText(300 é) = %d bytes ending %q, want at most 500 cut on a character", len(got), got[len(got)-2:])
	}
}

func TestDeadLetterRoundTrip(t *testing.T) {
	d := jobs.DeadLetter{Reason: "not_found", Error: "GET /api/v2/deals/1: 404\x00", Status: 404, CompanyID: 3408256, UserID: 5206648,
		JobID: "j-1", Kind: jobs.KindAPICall, ReceiveCount: 3, MessageID: "m-1"}
	attrs := d.Attributes()
	want := map[string]string{"reason": "not_found", "error": "GET /api/v2/deals/1: 404?", "status": "404", "company_id": "3408256",
		"user_id": "5206648", "job_id": "j-1", "kind": "api_call", "receive_count": "3", "message_id": "m-1"}
	got := map[string]string{}
	for k, v := range attrs {
		got[k] = aws.ToString(v.StringValue)
	}
	if !maps.Equal(got, want) {
		t.Errorf("Attributes() = %v, want %v", got, want)
	}
	if dt := aws.ToString(attrs["status"].DataType); dt != "Number" {
		t.Errorf("status DataType = %q, want Number", dt)
	}
	back := jobs.DeadLetterOf(attrs)
	d.Error = "GET /api/v2/deals/1: 404?"
	if back != d {
		t.Errorf("DeadLetterOf(Attributes()) = %+v, want %+v", back, d)
	}
	// Zero fields are left out: a direct invocation has no message id, an invalid body no ids.
	sparse := jobs.DeadLetter{Reason: "invalid_job", ReceiveCount: 1}.Attributes()
	if keys := slices.Sorted(maps.Keys(sparse)); !slices.Equal(keys, []string{"reason", "receive_count"}) {
		t.Errorf("sparse Attributes() keys = %v, want reason and receive_count", keys)
	}
}

func TestRedriveAttributesKeepTheJobDropTheVerdict(t *testing.T) {
	j := jobs.Job{ID: "j-1", Kind: jobs.KindAPICall, CompanyID: 1, UserID: 2, Attempt: 1}
	attrs := j.Attributes()
	maps.Copy(attrs, jobs.DeadLetter{Reason: "server_error", Error: "boom", Status: 500, ReceiveCount: 5, MessageID: "m"}.Attributes())
	attrs["custom"] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("kept")}
	got := slices.Sorted(maps.Keys(jobs.RedriveAttributes(attrs)))
	if want := []string{"attempt", "company_id", "custom", "job_id", "kind", "user_id"}; !slices.Equal(got, want) {
		t.Errorf("RedriveAttributes keys = %v, want %v", got, want)
	}
}

func TestValidateKinds(t *testing.T) {
	kinds := map[string]jobs.KindCheck{"pause_company": func(j jobs.Job) []string {
		if j.Path != "" {
			return []string{"pause_company takes no path"}
		}
		return nil
	}}
	ok := jobs.Job{ID: "p-1", Kind: "pause_company", CompanyID: 1, UserID: 2}
	if err := ok.ValidateKinds(kinds); err != nil {
		t.Errorf("ValidateKinds(registered kind) = %v, want nil", err)
	}
	if err := ok.Validate(); !errors.Is(err, jobs.ErrInvalidJob) || !strings.Contains(err.Error(), `unknown kind "pause_company"`) {
		t.Errorf("Validate(kind not in Kinds) = %v, want unknown kind", err)
	}
	bad := ok
	bad.Path = "/api/v2/deals"
	if err := bad.ValidateKinds(kinds); err == nil || !strings.Contains(err.Error(), "pause_company takes no path") {
		t.Errorf("ValidateKinds(kind check fails) = %v, want the kind's problem", err)
	}
	if _, err := jobs.ParseKinds(`{"id":"p-1","kind":"api_call","company_id":1,"user_id":2}`, kinds); err == nil || !strings.Contains(err.Error(), `unknown kind "api_call"`) {
		t.Errorf("ParseKinds(kind not given) = %v, want unknown kind", err)
	}
	want := `jobs: invalid job "x": api_call needs method and path; company_id and user_id must be positive`
	if err := (jobs.Job{ID: "x", Kind: jobs.KindAPICall}).Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %s", err, want)
	}
}
