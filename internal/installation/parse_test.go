package installation_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

func TestParseNumber(t *testing.T) {
	tests := []struct {
		raw     string
		want    int64
		wantErr error
	}{
		{`5206648`, 5206648, nil},
		{`"5206648"`, 5206648, nil},
		{`" 42 "`, 42, nil},
		{`123.0`, 123, nil},
		{`1.23e5`, 123000, nil},
		{``, 0, installation.ErrIDMissing},
		{`null`, 0, installation.ErrIDMissing},
		{`"acme"`, 0, installation.ErrIDNotNumber},
		{`{"id":1}`, 0, installation.ErrIDNotNumber},
		{`"unterminated`, 0, installation.ErrIDNotNumber},
		{`3408256.5`, 0, installation.ErrIDNotPositive},
		{`0`, 0, installation.ErrIDNotPositive},
		{`-3`, 0, installation.ErrIDNotPositive},
		{`1e300`, 0, installation.ErrIDNotPositive},
		{`"NaN"`, 0, installation.ErrIDNotNumber},
	}
	for _, tt := range tests {
		got, err := installation.ParseNumber(json.RawMessage(tt.raw))
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseNumber(%s) = %d, %v; want %d, %v", tt.raw, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseID(t *testing.T) {
	if id, err := installation.ParseID(" 3408256:5206648 "); err != nil || id != (installation.ID{CompanyID: 3408256, UserID: 5206648}) {
		t.Errorf("ParseID = %v, %v; want 3408256:5206648", id, err)
	}
	for _, bad := range []string{"", "3408256", "a:b", "0:1", "1:-2", "1:2:3"} {
		if _, err := installation.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) = nil error, want an error", bad)
		}
	}
}
