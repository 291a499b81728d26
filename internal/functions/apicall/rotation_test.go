package apicall

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/pdkit/pipedrive-lambda-kit/internal/clientcreds"
	"github.com/pdkit/pipedrive-lambda-kit/internal/jobs"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdsim"
	"github.com/pdkit/pipedrive-lambda-kit/internal/pdwork"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
	"github.com/pdkit/pipedrive-lambda-kit/internal/webhook"
	"github.com/pdkit/pipedrive-lambda-kit/internal/worker"
)

// TestRotateKeyReregistersEveryWebhook is a key rotation from end to end: `pdctl webhooks
// rotate-key` (opscli, on moto) writes a new key and queues register_webhooks; the webhook the
// installation had is still delivered to the real receiver (the previous key, in its grace);
// the queued job, run by this worker against the simulator, replaces it with one carrying the
// new key's credentials, whose deliveries the receiver accepts.
func TestRotateKeyReregistersEveryWebhook(t *testing.T) {
	e := newEnv(t)
	in := e.install(pdsim.DefaultUserID)
	dealCreate := pdwork.WebhookEvent{Object: "deal", Action: "create"}
	url := e.receiver()
	e.subscribe(url, dealCreate)
	before := e.sim.Webhooks(pdsim.DefaultUserID)
	if len(before) != 1 || before[0].HTTPAuthUser != webhookCreds.User {
		t.Fatalf("webhooks before the rotation = %d, want one with the provisioned key's credentials", len(before))
	}

	var out bytes.Buffer
	cli := &opscli.CLI{Out: &out,
		WebhookKeySecret: secretsmanager.NewFromConfig(e.aws), WebhookKeySecretID: e.res.WebhookKeySecretID,
		Jobs:      &jobs.Enqueuer{SQS: e.sqs, QueueURL: e.res.JobsQueueURL},
		Inventory: &tokenstore.Inventory{DB: dynamodb.NewFromConfig(e.aws), Table: e.res.TableName},
	}
	if err := cli.Run(t.Context(), []string{"webhooks", "rotate-key", "--json"}); err != nil {
		t.Fatalf("pdctl webhooks rotate-key = %v", err)
	}
	var rot opscli.RotateKeyResult
	if err := json.Unmarshal(out.Bytes(), &rot); err != nil || rot.PreviousKeyID != webhook.KeyID([]byte(testenv.WebhookKey)) ||
		rot.KeyID == rot.PreviousKeyID || rot.Registration.Enqueued != 1 || time.Until(rot.PreviousUntil) < 71*time.Hour {
		t.Fatalf("rotate-key = %s (%v), want the provisioned key replaced, 72 h of grace, one job", out.String(), err)
	}
	keys, err := (&clientcreds.WebhookKeySource{Client: secretsmanager.NewFromConfig(e.aws), SecretID: e.res.WebhookKeySecretID}).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("rotated webhook key", string(keys.Current))
	newCreds := keys.For(in.ID)
	secrets.Add("rotated webhook password", newCreds.Password)

	// In the grace: the webhook made with the previous key still delivers.
	e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "During the rotation"}})
	e.deliveredOK(1)

	// The worker runs the job the rotation queued.
	msgs := testenv.ReceiveAll(t, e.aws, e.res.JobsQueueURL, 10, 500*time.Millisecond)
	var ran int
	for _, m := range msgs {
		j, err := jobs.Parse(*m.Body)
		if err != nil || j.Kind != jobs.KindRegisterWebhooks {
			continue
		}
		ran++
		res := e.direct(*m.Body)
		var sum pdwork.WebhookSummary
		if err := json.Unmarshal(res.Body, &sum); err != nil || res.Outcome != worker.OutcomeSucceeded || len(sum.Replaced) != 1 || len(sum.Created) != 1 {
			t.Fatalf("the rotation's register_webhooks = %s %s %s, want the webhook replaced", res.Outcome, res.Reason, res.Body)
		}
	}
	if ran != 1 {
		t.Fatalf("the rotation queued %d register_webhooks jobs, want 1", ran)
	}
	after := e.sim.Webhooks(pdsim.DefaultUserID)
	if len(after) != 1 || after[0].ID == before[0].ID || after[0].HTTPAuthUser != newCreds.User || after[0].HTTPAuthPassword != newCreds.Password ||
		!strings.HasPrefix(after[0].HTTPAuthUser, "pdkit."+rot.KeyID+".") {
		t.Fatalf("webhooks after the rotation's job = %d (user %q), want one new webhook with the new key's credentials", len(after), after[0].HTTPAuthUser)
	}
	e.sim.ClearDeliveries()
	e.act(pdsim.UserAction{Object: "deal", Action: "create", Fields: map[string]any{"title": "After the rotation"}})
	e.deliveredOK(1)
}
