package opscli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
	"github.com/pdkit/pipedrive-lambda-kit/internal/opscli"
)

// alertsFunc is an oncall.Sender of func fields.
type alertsFunc func(ctx context.Context, a oncall.Alert) error

func (f alertsFunc) Alert(ctx context.Context, a oncall.Alert) error { return f(ctx, a) }

var _ oncall.Sender = alertsFunc(nil)

// TestDecryptIsAuditedAndExplicit: decrypt is the only command that prints a token; it needs a
// reason, logs who, when and why before reading, alerts, and prints the refresh token only
// when asked.
func TestDecryptIsAuditedAndExplicit(t *testing.T) {
	f := newFixture(t)
	id := f.install(t, 11, 12, time.Hour)
	access, refresh := f.tokens[0], f.tokens[1]
	var audit bytes.Buffer
	var alerts []oncall.Alert
	f.cli.Tokens = f.store
	f.cli.Audit = &opscli.Auditor{
		Log:    runLogger(&audit),
		Alerts: alertsFunc(func(_ context.Context, a oncall.Alert) error { alerts = append(alerts, a); return nil }),
		Who:    func(context.Context) string { return "arn:aws:sts::123456789012:assumed-role/oncall/alice (alice)" },
	}
	// run returns what decrypt showed (TokensOut); its Out, which the run log checks, must
	// stay empty.
	run := func(args ...string) (string, error) {
		t.Helper()
		f.out.Reset()
		f.shown.Reset()
		err := runCLI(context.Background(), f.cli, args)
		if f.out.Len() != 0 {
			t.Errorf("pdctl %s printed %d bytes to Out, want the tokens on TokensOut only", strings.Join(args, " "), f.out.Len())
		}
		return f.shown.String(), err
	}

	for _, args := range [][]string{
		{"decrypt", id.String()},
		{"decrypt", id.String(), "-reason", "short"},
		{"decrypt", "-reason", "customer ticket 4711: reproduce a 403"},
	} {
		if out, err := run(args...); !errors.Is(err, opscli.ErrUsage) || out != "" {
			t.Errorf("pdctl %s = %q, %v; want a usage error and nothing printed", strings.Join(args, " "), out, err)
		}
	}
	if audit.Len() != 0 || len(alerts) != 0 {
		t.Errorf("refused decrypts were audited (%q, %d alerts), want nothing", audit.String(), len(alerts))
	}

	out, err := run("decrypt", id.String(), "--reason", "customer ticket 4711: reproduce a 403")
	if err != nil {
		t.Fatalf("decrypt = %v", err)
	}
	if !strings.Contains(out, access) || strings.Contains(out, refresh) {
		t.Errorf("decrypt printed access token %t, refresh token %t; want only the access token", strings.Contains(out, access), strings.Contains(out, refresh))
	}
	var line map[string]any
	if err := json.Unmarshal(audit.Bytes(), &line); err != nil {
		t.Fatalf("audit log %q is not one JSON line: %v", audit.String(), err)
	}
	if line["action"] != "decrypt_tokens" || line["company_id"] != float64(11) || line["user_id"] != float64(12) ||
		!strings.Contains(line["operator"].(string), "alice") || line["reason"] != "customer ticket 4711: reproduce a 403" ||
		line["fields"] != "access_token" || line["at"] == nil {
		t.Errorf("audit line = %v, want action, ids, operator, reason, fields and time", line)
	}
	if len(alerts) != 1 || alerts[0].Reason != opscli.AlertTokensDecrypted || alerts[0].CompanyID != 11 || !strings.Contains(alerts[0].Detail, "alice") {
		t.Errorf("alerts = %+v, want one tokens_decrypted alert naming the operator", alerts)
	}
	for _, tok := range f.tokens {
		if strings.Contains(audit.String(), tok) || (len(alerts) > 0 && strings.Contains(alerts[0].Detail, tok)) {
			t.Errorf("the audit trail holds a token")
		}
	}

	audit.Reset()
	out, err = run("decrypt", id.String(), "-reason", "rotate the integration's copy", "-refresh-token", "-json")
	var got struct{ AccessToken, RefreshToken string }
	if err != nil || json.Unmarshal([]byte(out), &struct {
		A *string `json:"access_token"`
		R *string `json:"refresh_token"`
	}{&got.AccessToken, &got.RefreshToken}) != nil || got.AccessToken != access || got.RefreshToken != refresh {
		t.Errorf("decrypt -refresh-token -json = tokens match %t, %v; want both tokens", got.AccessToken == access && got.RefreshToken == refresh, err)
	}
	if !strings.Contains(audit.String(), `"fields":"access_token,refresh_token"`) {
		t.Errorf("audit of -refresh-token = %s, want fields access_token,refresh_token", audit.String())
	}

	// Every decryption alerts: two in a row, two alerts (never de-duplicated).
	alerts = nil
	for range 2 {
		if _, err := run("decrypt", id.String(), "--reason", "customer ticket 4711: once more"); err != nil {
			t.Fatal(err)
		}
	}
	if len(alerts) != 2 {
		t.Errorf("alerts for two decryptions = %d, want 2", len(alerts))
	}

	// No alerts topic: refused unless told --no-audit, which the audit line records.
	f.cli.Audit.Alerts = nil
	audit.Reset()
	if out, err := run("decrypt", id.String(), "--reason", "customer ticket 4714"); err == nil || out != "" || !strings.Contains(err.Error(), "--no-audit") || audit.Len() != 0 {
		t.Errorf("decrypt without an alerts topic = %q, %v (audit %q); want a refusal naming --no-audit and nothing printed", out, err, audit.String())
	}
	if out, err := run("decrypt", id.String(), "--reason", "customer ticket 4714", "--no-audit"); err != nil || !strings.Contains(out, access) ||
		!strings.Contains(audit.String(), `"audit_alert":false`) {
		t.Errorf("decrypt --no-audit = %v (audit %q); want the token and an audit line saying no alert was sent", err, audit.String())
	}

	// No audit trail, no token.
	f.cli.Audit.Alerts = alertsFunc(func(context.Context, oncall.Alert) error { return errors.New("sns down") })
	if out, err := run("decrypt", id.String(), "-reason", "customer ticket 4712"); err == nil || out != "" {
		t.Errorf("decrypt with a failing alert = %q, %v; want an error and nothing printed", out, err)
	}
	f.cli.Tokens = nil
	if _, err := run("decrypt", id.String(), "-reason", "customer ticket 4713"); err == nil || !strings.Contains(err.Error(), "TOKENS_KEY_ID") {
		t.Errorf("decrypt without a token reader = %v, want an error naming TOKENS_KEY_ID", err)
	}
}
