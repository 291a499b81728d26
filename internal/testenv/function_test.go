package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root := ModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("ModuleRoot() = %s without go.mod: %v", root, err)
	}
	if !strings.HasPrefix(string(b), "module github.com/pdkit/pipedrive-lambda-kit\n") {
		t.Errorf("ModuleRoot() = %s, whose go.mod is not this module's", root)
	}
	if wd, _ := os.Getwd(); wd != filepath.Join(root, "internal", "testenv") {
		t.Errorf("ModuleRoot() = %s, want the parent of internal/testenv (%s)", root, wd)
	}
}
