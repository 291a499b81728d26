package lambdalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdalog"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"INFO", slog.LevelInfo, false},
		{"info", slog.LevelInfo, false},
		{"TRACE", slog.LevelDebug, false},
		{"DEBUG", slog.LevelDebug, false},
		{"WARN", slog.LevelWarn, false},
		{"ERROR", slog.LevelError, false},
		{"FATAL", lambdalog.LevelFatal, false},
		{"VERBOSE", slog.LevelInfo, true},
		{"WARNING", slog.LevelInfo, true},
	}
	for _, tt := range tests {
		got, err := lambdalog.ParseLevel(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// lines decodes the JSON lines of b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestRequestIDOnEveryLineOfAnInvocation: a line logged with an invocation's context carries
// its request id, through derived loggers too; a line without one (cold start) has none.
func TestRequestIDOnEveryLineOfAnInvocation(t *testing.T) {
	var b bytes.Buffer
	log := lambdalog.New(&b, slog.LevelInfo)
	inv := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "8f5c-req-1"})

	log.InfoContext(context.Background(), "cold start")
	log.InfoContext(inv, "decision", "company_id", 7)
	log.With("action", "refresh").LogAttrs(inv, slog.LevelWarn, "derived")
	log.WithGroup("job").InfoContext(inv, "grouped", "id", "j1")
	log.DebugContext(inv, "below the level")

	got := lines(t, &b)
	if len(got) != 4 {
		t.Fatalf("logged %d lines, want 4 (debug filtered): %v", len(got), got)
	}
	if _, ok := got[0][lambdalog.KeyRequestID]; ok {
		t.Errorf("cold-start line = %v, want no request_id", got[0])
	}
	for _, l := range got[1:3] {
		if l[lambdalog.KeyRequestID] != "8f5c-req-1" {
			t.Errorf("line %v, want request_id 8f5c-req-1", l)
		}
	}
	if g, _ := got[3]["job"].(map[string]any); g[lambdalog.KeyRequestID] != "8f5c-req-1" {
		t.Errorf("grouped line %v, want the request id (inside the logger's group)", got[3])
	}
	if got[2]["action"] != "refresh" || got[2]["level"] != "WARN" {
		t.Errorf("derived line %v, want its attributes and level kept", got[2])
	}
}

// TestLevelFiltersBelow: WARN drops INFO and DEBUG, keeps WARN and ERROR.
func TestLevelFiltersBelow(t *testing.T) {
	var b bytes.Buffer
	lvl, err := lambdalog.ParseLevel("WARN")
	if err != nil {
		t.Fatal(err)
	}
	log := lambdalog.New(&b, lvl)
	ctx := context.Background()
	log.DebugContext(ctx, "d")
	log.InfoContext(ctx, "i")
	log.WarnContext(ctx, "w")
	log.ErrorContext(ctx, "e")
	var msgs []string
	for _, l := range lines(t, &b) {
		msgs = append(msgs, l["msg"].(string))
	}
	if strings.Join(msgs, ",") != "w,e" {
		t.Errorf("at WARN logged %v, want [w e]", msgs)
	}
}
