package opscli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/spf13/cobra"

	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdoauth"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsimtest"
	"github.com/pdkit/pipedrive-lambda-kit/internal/refresh"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokencrypt"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

type fixture struct {
	cli *opscli.CLI
	// out is the command's output (CLI.Out), also written to the run log; shown is decrypt's
	// (CLI.TokensOut), kept out of it.
	out    *bytes.Buffer
	shown  *bytes.Buffer
	store  *tokenstore.Store
	sqs    *sqs.Client
	jobs   string
	dlq    string
	tokens []string
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := testenv.AWS(t)
	res := testenv.Provision(t)
	db := dynamodb.NewFromConfig(cfg)
	now := time.Now().UTC().Truncate(time.Second)
	f := &fixture{
		out:   &bytes.Buffer{},
		shown: &bytes.Buffer{},
		// Tokens are sealed as in production (the refresher's and the callback's key rights).
		store: &tokenstore.Store{DB: db, Table: res.TableName, Now: func() time.Time { return now },
			Cipher: &tokencrypt.Envelope{KMS: kms.NewFromConfig(cfg), KeyID: res.TokensKeyID}},
		sqs:  sqs.NewFromConfig(cfg),
		jobs: res.JobsQueueURL,
		dlq:  res.DeadLetterQueueURL,
		now:  now,
	}
	f.cli = &opscli.CLI{
		// The operator's store has no key: show, list and due must not need one.
		Store: &tokenstore.Store{DB: db, Table: res.TableName}, Inventory: &tokenstore.Inventory{DB: db, Table: res.TableName},
		SQS: f.sqs, JobsQueueURL: f.jobs, DeadLetterURL: f.dlq, Out: io.MultiWriter(f.out, &runLog), TokensOut: f.shown,
		Now: func() time.Time { return now },
	}
	return f
}

func (f *fixture) install(t *testing.T, company, user int64, expiresIn time.Duration) tokenstore.InstallationID {
	t.Helper()
	id := tokenstore.InstallationID{CompanyID: company, UserID: user}
	in := tokenstore.Installation{
		ID: id, AccessToken: "v1u:opscli-access-" + id.String(), RefreshToken: "1:1:opscli-refresh-" + id.String(),
		APIDomain: "https://acme.pipedrive.com", Scopes: []string{"base"}, ExpiresAt: f.now.Add(expiresIn),
	}
	if _, err := f.store.Install(context.Background(), in); err != nil {
		t.Fatalf("Install(%s) = %v", id, err)
	}
	f.addTokens(in.AccessToken, in.RefreshToken)
	return id
}

// addTokens registers tokens the tests met: no command but decrypt may print them, and the
// run log must not hold them.
func (f *fixture) addTokens(access, refresh string) {
	f.tokens = append(f.tokens, access, refresh)
	secrets.Add("access token", access)
	secrets.Add("refresh token", refresh)
}

// exec runs a command as pdctl does (see runCLI).
func (f *fixture) exec(ctx context.Context, args ...string) error { return runCLI(ctx, f.cli, args) }

func (f *fixture) run(t *testing.T, args ...string) string {
	t.Helper()
	f.out.Reset()
	if err := f.exec(context.Background(), args...); err != nil {
		t.Fatalf("pdctl %s = %v", strings.Join(args, " "), err)
	}
	out := f.out.String()
	for _, tok := range f.tokens {
		if strings.Contains(out, tok) {
			t.Errorf("pdctl %s printed a token", strings.Join(args, " "))
		}
	}
	return out
}

func TestShowListDue(t *testing.T) {
	f := newFixture(t)
	due := f.install(t, 7, 1, 5*time.Minute)    // refresh due 5 min before expiry: now
	later := f.install(t, 7, 2, 50*time.Minute) // due in 40 min
	gone := f.install(t, 8, 3, time.Hour)
	if _, err := f.store.Uninstall(context.Background(), gone); err != nil {
		t.Fatal(err)
	}

	out := f.run(t, "show", "7:1")
	for _, want := range []string{"status", "active", "access token", "present", "https://acme.pipedrive.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("show 7:1 output lacks %q:\n%s", want, out)
		}
	}
	var v opscli.View
	if err := json.Unmarshal([]byte(f.run(t, "show", "8:3", "-json")), &v); err != nil {
		t.Fatalf("show -json: %v", err)
	}
	if v.Status != "uninstalled" || v.HasAccessToken || v.HasRefreshToken || !v.RefreshDueAt.IsZero() {
		t.Errorf("show 8:3 -json = %+v, want uninstalled without tokens or due time", v)
	}

	var views []opscli.View
	if err := json.Unmarshal([]byte(f.run(t, "list", "-json")), &views); err != nil || len(views) != 3 {
		t.Fatalf("list -json = %d views, %v; want 3", len(views), err)
	}
	if err := json.Unmarshal([]byte(f.run(t, "list", "-status", "uninstalled", "-json")), &views); err != nil || len(views) != 1 || views[0].UserID != 3 {
		t.Errorf("list -status uninstalled = %+v, %v; want only 8:3", views, err)
	}
	if out := f.run(t, "list", "-limit", "2"); !strings.Contains(out, "(2)") {
		t.Errorf("list -limit 2 did not stop at 2:\n%s", out)
	}

	if err := json.Unmarshal([]byte(f.run(t, "due", "-json")), &views); err != nil || len(views) != 1 || views[0].UserID != due.UserID {
		t.Errorf("due = %+v, %v; want only %s", views, err, due)
	}
	if err := json.Unmarshal([]byte(f.run(t, "due", "-within", "1h", "-json")), &views); err != nil || len(views) != 2 || views[1].UserID != later.UserID {
		t.Errorf("due -within 1h = %+v, %v; want %s then %s", views, err, due, later)
	}
}

func TestRefreshCommandRunsTheRefresher(t *testing.T) {
	f := newFixture(t)
	sim := pdsimtest.New(t, pdsim.Config{ClientID: testenv.ClientID, ClientSecret: testenv.ClientSecret, RotateRefreshTokens: true})
	tok, err := sim.IssueToken(pdsim.DefaultUserID)
	if err != nil {
		t.Fatal(err)
	}
	id := tokenstore.InstallationID{CompanyID: pdsim.DefaultCompanyID, UserID: pdsim.DefaultUserID}
	f.addTokens(tok.AccessToken, tok.RefreshToken)
	if _, err := f.store.Install(context.Background(), tokenstore.Installation{
		ID: id, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, APIDomain: sim.URL,
		Scopes: []string{"base"}, ExpiresAt: f.now.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	r := &refresh.Refresher{
		OAuth: &pdoauth.Client{BaseURL: sim.URL, Credentials: pdoauth.StaticCredentials(testenv.ClientID, testenv.ClientSecret), HTTP: sim.HTTP.Client()},
		Store: f.store, Owner: "pdctl-test", Log: runLogger(nil),
	}
	f.cli.Refresh = r.Refresh

	// The token is fresh: without -force nothing is called.
	if out := f.run(t, "refresh", id.String()); !strings.HasPrefix(out, id.String()+": fresh") {
		t.Errorf("refresh of a fresh installation = %q, want fresh", out)
	}
	if n := sim.Counters().TokenByGrant["refresh_token"]; n != 0 {
		t.Errorf("refresh without -force made %d token calls, want 0", n)
	}
	out := f.run(t, "refresh", "-force", id.String())
	if !strings.HasPrefix(out, id.String()+": refreshed") || !strings.Contains(out, "expires") {
		t.Errorf("refresh -force = %q, want refreshed with the new expiry", out)
	}
	in, err := f.store.Get(context.Background(), id)
	if err != nil || in.AccessToken == tok.AccessToken || in.RefreshToken == tok.RefreshToken {
		t.Errorf("after refresh -force the stored tokens did not change (err %v)", err)
	}
	f.addTokens(in.AccessToken, in.RefreshToken)

	// Pipedrive rejects the grant: the command says so and the installation needs the user.
	sim.RevokeUser(pdsim.DefaultUserID)
	if out := f.run(t, "refresh", "-force", id.String()); !strings.Contains(out, "needs_reauth") {
		t.Errorf("refresh of a revoked grant = %q, want needs_reauth", out)
	}
	if err := f.exec(context.Background(), "refresh", "9:9"); err != nil {
		t.Errorf("refresh of an unknown installation = %v, want the not_found outcome printed", err)
	} else if !strings.Contains(f.out.String(), "not_found") {
		t.Errorf("refresh of an unknown installation printed %q", f.out.String())
	}
}

func (f *fixture) deadLetter(t *testing.T, body, reason string) {
	t.Helper()
	_, err := f.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(f.dlq), MessageBody: aws.String(body),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"reason": {DataType: aws.String("String"), StringValue: aws.String(reason)},
			"kind":   {DataType: aws.String("String"), StringValue: aws.String("api_call")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

const customerData = "customer-data-never-printed"

func job(id string) string {
	return `{"id":"` + id + `","kind":"api_call","company_id":7,"user_id":1,"method":"POST","path":"/api/v2/deals","body":{"title":"` + customerData + `"}}`
}

func TestDLQPeekShowsReasonsNotBodies(t *testing.T) {
	f := newFixture(t)
	f.deadLetter(t, job("job-410"), "resource_gone")
	f.deadLetter(t, `{"not":"a job"`, "malformed_job")

	var dls []opscli.DeadLetter
	out := f.run(t, "dlq", "peek", "-json")
	if err := json.Unmarshal([]byte(out), &dls); err != nil || len(dls) != 2 {
		t.Fatalf("dlq peek -json = %d, %v; want 2", len(dls), err)
	}
	byReason := map[string]opscli.DeadLetter{}
	for _, d := range dls {
		byReason[d.Attributes["reason"]] = d
	}
	if d := byReason["resource_gone"]; d.JobID != "job-410" || d.Path != "/api/v2/deals" || d.CompanyID != 7 {
		t.Errorf("peek of job-410 = %+v", d)
	}
	if d := byReason["malformed_job"]; d.Invalid == "" {
		t.Errorf("peek of a malformed job = %+v, want Invalid set", d)
	}
	if strings.Contains(out, customerData) {
		t.Errorf("dlq peek printed a job body")
	}
}

func TestDLQRedriveMovesJobsBack(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{"a", "b", "c"} {
		f.deadLetter(t, job(id), "server_error")
	}
	if out := f.run(t, "dlq", "redrive", "-max", "2"); !strings.Contains(out, "moved 2 ") {
		t.Errorf("redrive -max 2 = %q", out)
	}
	if out := f.run(t, "dlq", "redrive"); !strings.Contains(out, "moved 1 ") {
		t.Errorf("second redrive = %q, want the remaining 1", out)
	}
	msgs := testenv.ReceiveAll(t, testenv.AWS(t), f.jobs, 10, 2*time.Second)
	if len(msgs) != 3 {
		t.Fatalf("jobs queue holds %d messages after redrive, want 3", len(msgs))
	}
	for _, m := range msgs {
		if _, ok := m.MessageAttributes["reason"]; ok {
			t.Errorf("redriven message kept the dead-letter reason attribute")
		}
		if !strings.Contains(aws.ToString(m.Body), customerData) {
			t.Errorf("redriven body changed: %s", aws.ToString(m.Body))
		}
	}
	if left := testenv.ReceiveAll(t, testenv.AWS(t), f.dlq, 10, 0); len(left) != 0 {
		t.Errorf("DLQ still holds %d messages", len(left))
	}
}

// TestDLQRedriveSkipsOutcomeUnknownUntilNamed: redrive moves the jobs safe to re-run and
// leaves an outcome_unknown one, saying how many and why; named by its message id (after the
// operator checked Pipedrive) it goes back, its done claim cleared so that the worker runs it.
func TestDLQRedriveSkipsOutcomeUnknownUntilNamed(t *testing.T) {
	f := newFixture(t)
	f.cli.Claims = f.store
	f.deadLetter(t, job("retry-me"), "server_error")
	unknown := jobs.Job{ID: "post-1", Kind: jobs.KindAPICall, CompanyID: 7, UserID: 1}
	if _, err := f.sqs.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(f.dlq), MessageBody: aws.String(job("post-1")),
		MessageAttributes: jobs.DeadLetter{Reason: worker.ReasonOutcomeUnknown, CompanyID: 7, UserID: 1, JobID: "post-1", Kind: jobs.KindAPICall}.Attributes()}); err != nil {
		t.Fatal(err)
	}
	// The worker left the job's claim done when it dead-lettered it.
	key := worker.ClaimKey(jobs.Engine, unknown)
	if _, err := f.store.ClaimWork(t.Context(), key, "worker", time.Minute, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CompleteWork(t.Context(), key, "worker", time.Hour); err != nil {
		t.Fatal(err)
	}

	out := f.run(t, "dlq", "redrive")
	if !strings.Contains(out, "moved 1 ") || !strings.Contains(out, "skipped 1 outcome_unknown") || !strings.Contains(out, "--id") {
		t.Errorf("redrive = %q, want 1 moved and 1 outcome_unknown skipped with what to do", out)
	}
	if msgs := testenv.ReceiveAll(t, testenv.AWS(t), f.jobs, 10, time.Second); len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].Body), "retry-me") {
		t.Fatalf("jobs queue after redrive = %d messages, want only retry-me", len(msgs))
	}
	// The skipped job is visible again at once (received here, then shown again).
	left, err := f.sqs.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.dlq), MaxNumberOfMessages: 10})
	if err != nil || len(left.Messages) != 1 || !strings.Contains(aws.ToString(left.Messages[0].Body), "post-1") {
		t.Fatalf("dead-letter queue after redrive = %+v, %v; want the outcome_unknown job, visible", left, err)
	}
	msgID := aws.ToString(left.Messages[0].MessageId)
	if _, err := f.sqs.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(f.dlq),
		ReceiptHandle: left.Messages[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	var r opscli.Redrive
	if err := json.Unmarshal([]byte(f.run(t, "--json", "dlq", "redrive", "--id", msgID, "--id", "no-such-message")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Moved != 1 || r.SkippedUnknown != 0 || len(r.NotFound) != 1 || r.NotFound[0] != "no-such-message" {
		t.Errorf("redrive --id = %+v, want the named job moved and the unknown id reported", r)
	}
	if msgs := testenv.ReceiveAll(t, testenv.AWS(t), f.jobs, 10, time.Second); len(msgs) != 1 || !strings.Contains(aws.ToString(msgs[0].Body), "post-1") {
		t.Errorf("jobs queue after the named redrive = %d messages, want post-1", len(msgs))
	}
	if c, err := f.store.ClaimWork(t.Context(), key, "next", time.Minute, time.Hour); err != nil || c.TookOver {
		t.Errorf("ClaimWork after the named redrive = %+v, %v; want a fresh claim (the done record cleared)", c, err)
	}
}

// TestDLQSchemaRoundTrip: a dead letter as the worker writes it (jobs.DeadLetter) is read back
// by peek, and redrive returns the job with its identity but without the verdict.
func TestDLQSchemaRoundTrip(t *testing.T) {
	f := newFixture(t)
	body := `{"not":"a job"`
	// send puts one dead letter as the worker writes it. Peek hides what it shows for 30 s,
	// so each step below gets its own.
	send := func() {
		t.Helper()
		attrs := jobs.DeadLetter{Reason: "not_found", Error: "GET /api/v2/deals/9: not found", Status: 404,
			CompanyID: 7, UserID: 1, JobID: "job-404", Kind: jobs.KindAPICall, ReceiveCount: 2, MessageID: "m-404"}.Attributes()
		if _, err := f.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{
			QueueUrl: aws.String(f.dlq), MessageBody: aws.String(body), MessageAttributes: attrs,
		}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	if out := f.run(t, "dlq", "peek"); !strings.Contains(out, "job-404") || !strings.Contains(out, "7:1") {
		t.Errorf("dlq peek = %q, want the job id and installation from the attributes", out)
	}
	send()
	var dls []opscli.DeadLetter
	if err := json.Unmarshal([]byte(f.run(t, "dlq", "peek", "-json")), &dls); err != nil || len(dls) != 1 {
		t.Fatalf("dlq peek -json = %d, %v; want 1", len(dls), err)
	}
	if d := dls[0]; d.Reason != "not_found" || d.Status != 404 || d.Error == "" || d.JobID != "job-404" || d.CompanyID != 7 || d.Invalid == "" {
		t.Errorf("peek = %+v, want the verdict and the identity from the attributes, and the body invalid", d)
	}
	send()
	if out := f.run(t, "dlq", "redrive"); !strings.Contains(out, "moved 1 ") {
		t.Fatalf("redrive = %q, want the one visible dead letter moved", out)
	}
	msgs := testenv.ReceiveAll(t, testenv.AWS(t), f.jobs, 10, 2*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("jobs queue holds %d messages after redrive, want 1", len(msgs))
	}
	got := map[string]string{}
	for k, v := range msgs[0].MessageAttributes {
		got[k] = aws.ToString(v.StringValue)
	}
	if want := map[string]string{"job_id": "job-404", "kind": "api_call", "company_id": "7", "user_id": "1"}; !maps.Equal(got, want) {
		t.Errorf("redriven attributes = %v, want %v", got, want)
	}
}

func TestUsageErrors(t *testing.T) {
	cli := &opscli.CLI{Out: &runLog}
	for _, args := range [][]string{
		{},
		{"nope"},
		{"show"},
		{"show", "7"},
		{"show", "a:b"},
		{"show", "-1:2"},
		{"list", "-status", "weird"},
		{"list", "-limit", "0"},
		{"due", "-within", "-1m"},
		{"due", "-within", "soon"},
		{"refresh"},
		{"dlq"},
		{"dlq", "drop"},
		{"dlq", "peek", "-max", "0"},
		{"webhooks"},
		{"webhooks", "register"},
		{"webhooks", "register", "1:2", "-all"},
	} {
		if err := runCLI(context.Background(), cli, args); !errors.Is(err, opscli.ErrUsage) {
			t.Errorf("pdctl %q = %v, want a usage error", args, err)
		}
	}
	// Missing configuration is a clear error, not a nil-pointer panic.
	for _, args := range [][]string{{"show", "1:2"}, {"list"}, {"due"}, {"refresh", "1:2"}, {"dlq", "peek"}, {"dlq", "redrive"}, {"webhooks", "register", "1:2"}, {"webhooks", "register", "-all"}} {
		if err := runCLI(context.Background(), cli, args); err == nil || errors.Is(err, opscli.ErrUsage) || !strings.Contains(err.Error(), "_") {
			t.Errorf("pdctl %q without configuration = %v, want an error naming the variable", args, err)
		}
	}
}

// TestEveryCommandHasHelp: every command explains itself (a one-line summary, a paragraph and
// an example for each runnable one), and `COMMAND -h` prints it without running anything
// (no configuration here: a command that ran would fail).
func TestEveryCommandHasHelp(t *testing.T) {
	var out bytes.Buffer
	cli := &opscli.CLI{Out: &out}
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, c := range cmd.Commands() {
			if c.Name() == "help" || c.Name() == "completion" {
				continue
			}
			path := strings.Fields(c.CommandPath())[1:]
			if c.Short == "" || c.Long == "" || (c.Runnable() && !c.HasSubCommands() && c.Example == "") {
				t.Errorf("pdctl %s: Short %q, Long %d bytes, Example %q; want all three", strings.Join(path, " "), c.Short, len(c.Long), c.Example)
			}
			for _, h := range []string{"-h", "--help", "-help"} {
				out.Reset()
				if err := cli.Run(context.Background(), append(slices.Clone(path), h)); err != nil {
					t.Errorf("pdctl %s %s = %v, want help", strings.Join(path, " "), h, err)
				}
				if first, _, _ := strings.Cut(c.Long, "\n"); !strings.Contains(out.String(), first) {
					t.Errorf("pdctl %s %s printed %q, want its description", strings.Join(path, " "), h, out.String())
				}
			}
			walk(c)
		}
	}
	walk(cli.Root())
}
