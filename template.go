// Package pdkit holds the project's SAM template, embedded so that the test harness, the local
// stack and the deployed stack share one definition of the tables, queues, topic and secret.
package pdkit

import _ "embed"

// Template is the contents of template.yaml at build time.
//
//go:embed template.yaml
var Template []byte
