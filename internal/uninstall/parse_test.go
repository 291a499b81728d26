package uninstall

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 27, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		raw string
		ok  bool
	}{
		{`"2026-11-27T12:30:00Z"`, true},
		{`"2026-11-27T12:30:00.000Z"`, true},
		{`"2026-11-27T13:30:00+01:00"`, true},
		{`"2026-11-27 12:30:00"`, true},
		{`1795782600`, true},
		{`"1795782600"`, true},
		{`1795782600000`, true},
		{`"1795782600000"`, true},
		{`null`, false},
		{``, false},
		{`"yesterday"`, false},
		{`-5`, false},
		{`true`, false},
	}
	for _, tt := range tests {
		got, ok := parseTimestamp(json.RawMessage(tt.raw))
		if ok != tt.ok || (ok && !got.Equal(want)) {
			t.Errorf("parseTimestamp(%s) = %v, %t; want %v, %t", tt.raw, got, ok, want, tt.ok)
		}
	}
}

func TestCredentialsMatch(t *testing.T) {
	tests := []struct {
		gotID, gotSecret, wantID, wantSecret string
		want                                 bool
	}{
		{"id", "secret", "id", "secret", true},
		{"id", "wrong", "id", "secret", false},
		{"other", "secret", "id", "secret", false},
		{"id", "secretX", "id", "secret", false},
		{"", "", "", "", false}, // an unconfigured secret never matches
		{"id", "", "id", "", false},
	}
	for _, tt := range tests {
		if got := credentialsMatch(tt.gotID, tt.gotSecret, tt.wantID, tt.wantSecret); got != tt.want {
			t.Errorf("credentialsMatch(%q, %q, %q, %q) = %t, want %t", tt.gotID, tt.gotSecret, tt.wantID, tt.wantSecret, got, tt.want)
		}
	}
}
