package pdkit_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakeFuzzListsEveryTarget: `make test` fuzzes exactly the project's fuzz targets. Every
// `func FuzzX(f *testing.F)` in a _test.go file has a FUZZ_TARGETS entry
// "./<package dir>:FuzzX:<executions>" in the Makefile, and every entry names a target that
// exists, with a positive execution count (a count, not a duration: see the Makefile).
func TestMakeFuzzListsEveryTarget(t *testing.T) {
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)\nFUZZ_TARGETS := \\\n(.*?)\n[^\t]`).FindSubmatch(makefile)
	if block == nil {
		t.Fatal("Makefile has no FUZZ_TARGETS := \\ block")
	}
	listed := map[string]bool{}
	entry := regexp.MustCompile(`^(\./[\w/.-]+):(Fuzz\w+):([1-9][0-9]*)$`)
	for _, line := range strings.Split(string(block[1]), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), `\`))
		m := entry.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("FUZZ_TARGETS entry %q is not ./pkg:FuzzName:executions", line)
			continue
		}
		listed[m[1]+":"+m[2]] = true
	}

	found := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllSubmatch(src, -1) {
			found["./"+filepath.ToSlash(filepath.Dir(path))+":"+string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("found no fuzz targets: the walk is broken")
	}
	for k := range found {
		if !listed[k] {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS", k)
		}
	}
	for k := range listed {
		if !found[k] {
			t.Errorf("FUZZ_TARGETS lists %s, which does not exist", k)
		}
	}
}
