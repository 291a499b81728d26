// Package lambdalog is the functions' structured log: slog's JSON handler, filtered at the
// level Lambda's LoggingConfig sets (AWS_LAMBDA_LOG_LEVEL), and wrapped so that every line
// logged with an invocation's context carries that invocation's request id (request_id, from
// aws-lambda-go's lambdacontext). Log with slog's *Context methods (InfoContext, LogAttrs)
// and the handler's ctx: a line logged without it cannot be tied to an invocation.
package lambdalog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// EnvLevel is the variable Lambda sets from LoggingConfig.ApplicationLogLevel (the template's
// LogLevel parameter).
const EnvLevel = "AWS_LAMBDA_LOG_LEVEL"

// KeyRequestID is the attribute that carries the Lambda request id on every line.
const KeyRequestID = "request_id"

// LevelFatal is Lambda's FATAL, which slog does not name: above Error.
const LevelFatal = slog.LevelError + 4

// ParseLevel reads Lambda's application log levels (TRACE, DEBUG, INFO, WARN, ERROR, FATAL,
// any case); empty is INFO, Lambda's default. slog has no TRACE: it is DEBUG.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "TRACE", "DEBUG":
		return slog.LevelDebug, nil
	case "", "INFO":
		return slog.LevelInfo, nil
	case "WARN":
		return slog.LevelWarn, nil
	case "ERROR":
		return slog.LevelError, nil
	case "FATAL":
		return LevelFatal, nil
	}
	return slog.LevelInfo, fmt.Errorf("%s=%q: want TRACE, DEBUG, INFO, WARN, ERROR or FATAL", EnvLevel, s)
}

// New returns a JSON logger writing to w at level, whose lines carry the request id of the
// invocation in their context.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(Handler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// Handler wraps a slog.Handler: a record logged with a context from a Lambda invocation
// (lambdacontext.FromContext) gets request_id. Records without one (cold start, tools) pass
// through unchanged.
type Handler struct {
	slog.Handler
}

// Handle adds the request id, then hands the record to the wrapped handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(KeyRequestID, lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the wrapper on the derived handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the wrapper on the derived handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{h.Handler.WithGroup(name)}
}
