package oncall_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oncall"
)

type sendFunc func(ctx context.Context, a oncall.Alert) error

func (f sendFunc) Alert(ctx context.Context, a oncall.Alert) error { return f(ctx, a) }

var _ oncall.Sender = sendFunc(nil)

func TestNotifierPublishesDetached(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got []oncall.Alert
	n := oncall.Notifier{Sender: sendFunc(func(ctx context.Context, a oncall.Alert) error {
		if ctx.Err() != nil {
			t.Errorf("publish context already done: %v", ctx.Err())
		}
		got = append(got, a)
		return nil
	})}
	n.Notify(ctx, oncall.Alert{Reason: "r", CompanyID: 1, UserID: 2})
	if len(got) != 1 || got[0].Reason != "r" {
		t.Errorf("published %v, want one alert r", got)
	}
}

func TestNotifierLogsWhenItCannotPublish(t *testing.T) {
	for name, sender := range map[string]oncall.Sender{
		"no sender":      nil,
		"publish failed": sendFunc(func(context.Context, oncall.Alert) error { return errors.New("sns down") }),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			n := oncall.Notifier{Sender: sender, Log: slog.New(slog.NewJSONHandler(&buf, nil))}
			n.Notify(context.Background(), oncall.Alert{Reason: "client_invalid", CompanyID: 7})
			if !strings.Contains(buf.String(), `"reason":"client_invalid"`) || !strings.Contains(buf.String(), `"company_id":7`) {
				t.Errorf("log = %s, want the alert's reason and company", buf.String())
			}
		})
	}
}

func TestErrorDetail(t *testing.T) {
	if got := oncall.ErrorDetail(nil); got != "" {
		t.Errorf("ErrorDetail(nil) = %q, want empty", got)
	}
	long := errors.New(strings.Repeat("é", 200)) // 400 bytes, cut inside a rune at 300
	got := oncall.ErrorDetail(long)
	if len(got) > 300 || !utf8.ValidString(got) || len(got) < 298 {
		t.Errorf("ErrorDetail(400 bytes) = %d bytes, valid UTF-8 %t; want ≤ 300, valid", len(got), utf8.ValidString(got))
	}
}
