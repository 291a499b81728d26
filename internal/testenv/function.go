package testenv

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/lambdarun"
)

// ModuleRoot returns the directory of the go.mod that encloses the working directory (a
// test's package directory); it fails t if there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: module root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// buildTimeout bounds building the emulator and the function: the first build of a run
// compiles the AWS SDK, which takes minutes on a loaded machine.
const buildTimeout = 3 * time.Minute

// StartFunction builds the function package pkg (relative to ModuleRoot, e.g.
// "./functions/apicall") as a bootstrap and runs it under the Lambda Runtime Interface
// Emulator with o, whose RIE and Bootstrap it fills in. It returns the running function and
// everything the emulator and the function write (their logs), which o.Output, when set,
// receives as well. The function is stopped when t ends; t fails if it cannot be built or
// started.
func StartFunction(t testing.TB, pkg string, o lambdarun.Options) (*lambdarun.Function, *Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	root := ModuleRoot(t)
	rie, err := lambdarun.RIEPath(ctx, root)
	if err != nil {
		t.Fatalf("lambdarun.RIEPath = %v", err)
	}
	bin, err := lambdarun.Build(ctx, root, pkg, t.TempDir())
	if err != nil {
		t.Fatalf("lambdarun.Build(%s) = %v", pkg, err)
	}
	out := &Buffer{}
	o.RIE, o.Bootstrap = rie, bin
	if o.Output != nil {
		o.Output = io.MultiWriter(out, o.Output)
	} else {
		o.Output = out
	}
	f, err := lambdarun.Start(ctx, o)
	if err != nil {
		t.Fatalf("lambdarun.Start(%s) = %v", pkg, err)
	}
	t.Cleanup(func() { f.Close() })
	return f, out
}
