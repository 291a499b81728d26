package pdkit_test

import (
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// TestLogLevelParameter: the functions' log level is one parameter (default INFO) that reaches
// every function as LoggingConfig.ApplicationLogLevel (so Lambda sets AWS_LAMBDA_LOG_LEVEL and
// filters), in the JSON log format level filtering needs; levels that would drop the metric
// lines (no level: INFO to Lambda) are not offered.
func TestLogLevelParameter(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	p := node(&doc, "Parameters", "LogLevel")
	if p == nil {
		t.Fatal("template.yaml has no LogLevel parameter")
	}
	if d := node(p, "Default"); d == nil || d.Value != "INFO" {
		t.Errorf("LogLevel default = %v, want INFO", d)
	}
	var allowed []string
	if a := node(p, "AllowedValues"); a != nil {
		for _, v := range a.Content {
			allowed = append(allowed, v.Value)
		}
	}
	if !slices.Contains(allowed, "INFO") || !slices.Contains(allowed, "DEBUG") || slices.Contains(allowed, "WARN") || slices.Contains(allowed, "ERROR") || slices.Contains(allowed, "FATAL") {
		t.Errorf("LogLevel AllowedValues = %v, want INFO and DEBUG, never WARN, ERROR or FATAL (they drop the EMF lines)", allowed)
	}
	lc := node(&doc, "Globals", "Function", "LoggingConfig")
	if l := node(lc, "ApplicationLogLevel"); l == nil || l.Tag != "!Ref" || l.Value != "LogLevel" {
		t.Errorf("Globals.Function.LoggingConfig.ApplicationLogLevel = %v, want !Ref LogLevel", l)
	}
	if f := node(lc, "LogFormat"); f == nil || f.Value != "JSON" {
		t.Errorf("Globals.Function.LoggingConfig.LogFormat = %v, want JSON (level filtering needs it)", f)
	}
	n := 0
	res := node(&doc, "Resources")
	for i := 0; i+1 < len(res.Content); i += 2 {
		id, r := res.Content[i].Value, res.Content[i+1]
		if v := node(r, "Type"); v == nil || v.Value != "AWS::Serverless::Function" {
			continue
		}
		n++
		flc := node(r, "Properties", "LoggingConfig")
		if l := node(flc, "ApplicationLogLevel"); l != nil {
			t.Errorf("%s sets its own ApplicationLogLevel %v: the LogLevel parameter would not reach it", id, l.Value)
		}
		if f := node(flc, "LogFormat"); f != nil && f.Value != "JSON" {
			t.Errorf("%s LogFormat %s, want JSON", id, f.Value)
		}
	}
	if n < 4 {
		t.Errorf("found %d functions, want the four", n)
	}
}
