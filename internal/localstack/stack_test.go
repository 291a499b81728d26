package localstack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/localstack"
	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

// TestDemoRunsTheRealBootstrap is the end-to-end test of `make run`: the callback binary under
// the emulator, moto, the simulator, install, reload and uninstall.
func TestDemoRunsTheRealBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logs := &testenv.Buffer{}
	st, err := localstack.Start(ctx, stackConfig(t, logs))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(st.Close)
	started(st)

	var out bytes.Buffer
	before := secrets.Len()
	if err := st.Demo(ctx, io.MultiWriter(&out, &runLog)); err != nil {
		t.Fatalf("Demo: %v\n%s\nfunction logs:\n%s", err, out.String(), logs.String())
	}
	// The run log is checked for what the simulator handed out: at least the install's code,
	// state, access and refresh token and the forced refresh's new access token.
	if n := secrets.Len() - before; n < 5 {
		t.Errorf("the demo registered %d secrets from the simulator, want at least 5 (code, state, tokens)", n)
	}
	// The webhook step is a colleague's deal, noted through the installing user's installation.
	if !strings.Contains(out.String(), fmt.Sprintf("colleague %d creates deal", localstack.DemoColleagueID)) || !strings.Contains(out.String(), "-> note ") {
		t.Errorf("Demo output does not show a colleague's deal getting its note:\n%s", out.String())
	}
	// The health step: a webhook Pipedrive deleted is re-created and the missed deal noted.
	if !strings.Contains(out.String(), "Pipedrive deleted webhook") || !strings.Contains(out.String(), "(catch-up) -> note ") {
		t.Errorf("Demo output does not show a deleted webhook re-created and its missed deal caught up:\n%s", out.String())
	}
	if !strings.HasSuffix(out.String(), "ok\n") {
		t.Errorf("Demo output does not end with ok:\n%s", out.String())
	}
	// The function really ran and logged, and its logs hold no secret.
	if !strings.Contains(logs.String(), `"company_id"`) {
		t.Errorf("function logs have no company_id event:\n%s", logs.String())
	}
	for _, secret := range []string{st.Credentials.ClientSecret, st.Credentials.StateKey} {
		if strings.Contains(logs.String(), secret) || strings.Contains(out.String(), secret) {
			t.Errorf("a client secret or state key appears in the logs")
		}
	}
}
