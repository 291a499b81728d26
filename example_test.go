package pdkit_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
)

// TestExampleTemplateIsTheKits: the example app deploys the kit's template.yaml as it is (its
// `make template` copies it; an app keeps its own changes, the example has none), so what the
// kit's tests check of the template holds for the starter too.
func TestExampleTemplateIsTheKits(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(exampleDir, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, pdkit.Template) {
		t.Errorf("%s/template.yaml differs from template.yaml: run `make -C %s template` (or cp template.yaml %s/)", exampleDir, exampleDir, exampleDir)
	}
}

// TestExampleMakefileBuildsEveryFunction: the example's Makefile has SAM's build target of each
// function of the template, building its own functions/<name> (which start the example app).
func TestExampleMakefileBuildsEveryFunction(t *testing.T) {
	kit, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(exampleDir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	target := regexp.MustCompile(`(?m)^build-(\w+Function):\s*\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/(\w+)$`)
	want := target.FindAllStringSubmatch(string(kit), -1)
	if len(want) != 4 {
		t.Fatalf("kit Makefile has %d build-<Function> targets, want 4", len(want))
	}
	for _, m := range want {
		if !strings.Contains(string(example), m[0]) {
			t.Errorf("%s/Makefile lacks the target %s building ./functions/%s", exampleDir, "build-"+m[1], m[2])
		}
		if _, err := os.Stat(filepath.Join(exampleDir, "functions", m[2], "main.go")); err != nil {
			t.Errorf("%s: %v", exampleDir, err)
		}
	}
}

// TestMakeNewApp: the README's two commands for a new app: `make new-app` copies the example into
// a new module, with the module path renamed everywhere, whose `make test` passes on its own.
func TestMakeNewApp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "myapp")
	cmd := exec.Command("make", "--no-print-directory", "new-app", "DIR="+dir, "MODULE=example.com/myapp")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make new-app: %v\n%s", err, out)
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.HasPrefix(string(goMod), "module example.com/myapp\n") {
		t.Fatalf("new app's go.mod = %q, %v; want module example.com/myapp", goMod, err)
	}
	// The README's second command, as a newcomer runs it: gofmt, vet and the app's tests against
	// the simulator and moto (pdkittest).
	test := exec.Command("make", "--no-print-directory", "test")
	test.Dir = dir
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("make test in the new app: %v\n%s", err, out)
	}
	grep := exec.Command("grep", "-r", "-l", exampleModule, dir)
	if out, _ := grep.Output(); len(out) > 0 {
		t.Errorf("the new app still names %s in:\n%s", exampleModule, out)
	}
}
