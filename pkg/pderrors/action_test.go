package pderrors_test

import (
	"encoding/json"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/pkg/pderrors"
)

func TestActionString(t *testing.T) {
	tests := []struct {
		a     pderrors.Action
		want  string
		valid bool
	}{
		{pderrors.Succeed, "succeed", true},
		{pderrors.Retry, "retry", true},
		{pderrors.RefreshAndRetry, "refresh_and_retry", true},
		{pderrors.Reauthorize, "reauthorize", true},
		{pderrors.DeadLetter, "dead_letter", true},
		{pderrors.Pause, "pause", true},
		{pderrors.Action(-1), "action(-1)", false},
		{pderrors.Action(6), "action(6)", false},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("Action(%d).String() = %q, want %q", int(tt.a), got, tt.want)
		}
		if got := tt.a.Valid(); got != tt.valid {
			t.Errorf("Action(%d).Valid() = %v, want %v", int(tt.a), got, tt.valid)
		}
		text, err := tt.a.MarshalText()
		if tt.valid != (err == nil) {
			t.Errorf("Action(%d).MarshalText() error = %v, want error only for an invalid action", int(tt.a), err)
		}
		if !tt.valid {
			continue
		}
		var back pderrors.Action = -1
		if err := back.UnmarshalText(text); err != nil || back != tt.a {
			t.Errorf("UnmarshalText(%q) = %v, %v, want %v, nil", text, back, err, tt.a)
		}
	}
}

func TestActionJSON(t *testing.T) {
	b, err := json.Marshal(map[string]pderrors.Action{"action": pderrors.RefreshAndRetry})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if got, want := string(b), `{"action":"refresh_and_retry"}`; got != want {
		t.Errorf("json.Marshal(RefreshAndRetry) = %s, want %s", got, want)
	}
	a := pderrors.Retry
	if err := json.Unmarshal([]byte(`"bogus"`), &a); err == nil || a != pderrors.Retry {
		t.Errorf("json.Unmarshal(\"bogus\") = %v, %v, want an error and the action unchanged", a, err)
	}
}
