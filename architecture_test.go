package pdkit_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/pdkit/pipedrive-lambda-kit"

// pkgInfo is what `go list -json` says of one package.
type pkgInfo struct {
	ImportPath string
	Name       string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// listPackages runs `go list -json -deps=false ./...` once per test binary.
func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkgInfo{}
	dec := json.NewDecoder(&out)
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages, want the whole module", len(pkgs))
	}
	return pkgs
}

// project reports whether an import path belongs to this module.
func project(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func awsSDK(path string) bool {
	return strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2") || strings.HasPrefix(path, "github.com/aws/smithy-go")
}

func internalPkg(name string) func(string) bool {
	return func(path string) bool { return path == module+"/internal/"+name }
}

// TestArchitecture enforces the layering docs/layout.md and docs/architecture.md
// describe. Each rule names the packages it constrains and what they must not depend on.
func TestArchitecture(t *testing.T) {
	pkgs := listPackages(t)
	testOnly := []string{"pdsim", "pdsimtest", "testenv", "motoserver", "fakeclock", "lambdarun"}
	isTestOnly := func(path string) bool {
		for _, n := range testOnly {
			if internalPkg(n)(path) {
				return true
			}
		}
		return false
	}
	type rule struct {
		name       string
		pkgs       func(rel string, p pkgInfo) bool
		transitive bool
		forbidden  func(path string) bool
	}
	prefix := func(pre string) func(string, pkgInfo) bool {
		return func(rel string, _ pkgInfo) bool { return rel == pre || strings.HasPrefix(rel, pre+"/") }
	}
	exact := func(names ...string) func(string, pkgInfo) bool {
		return func(rel string, _ pkgInfo) bool { return slices.Contains(names, rel) }
	}
	rules := []rule{
		{"pkg/pderrors imports nothing of the project", prefix("pkg/pderrors"), true, project},
		{"pkg/pderrors imports no AWS SDK", prefix("pkg/pderrors"), true, awsSDK},
		{"the domain types depend on the standard library only", exact("internal/installation"), true,
			func(p string) bool { return strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }},
		{"no function imports another", prefix("internal/functions"), false,
			func(p string) bool { return strings.HasPrefix(p, module+"/internal/functions/") }},
		{"a function's main imports only its own function package",
			prefix("functions"), false,
			func(p string) bool {
				return strings.HasPrefix(p, module+"/") && !strings.HasPrefix(p, module+"/internal/functions/")
			}},
		{"production code links no simulator, test harness or fake clock",
			func(rel string, _ pkgInfo) bool {
				return strings.HasPrefix(rel, "functions/") || rel == "cmd/pdctl"
			}, true, isTestOnly},
		{"the functions and commands link no testing package",
			func(rel string, _ pkgInfo) bool {
				return strings.HasPrefix(rel, "functions/") || strings.HasPrefix(rel, "cmd/")
			},
			true, func(p string) bool { return p == "testing" }},
		{"the token store imports no HTTP client", exact("internal/tokenstore"), false,
			func(p string) bool {
				return p == "net/http" || internalPkg("pdapi")(p) || internalPkg("pdoauth")(p)
			}},
		{"the OAuth and API clients import no AWS SDK", exact("internal/pdoauth", "internal/pdapi"), true, awsSDK},
		{"refresh logic imports no AWS SDK and not the DynamoDB adapter", exact("internal/refresh"), true,
			func(p string) bool { return awsSDK(p) || internalPkg("tokenstore")(p) }},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			matched := 0
			for rel, p := range pkgs {
				if !r.pkgs(rel, p) {
					continue
				}
				matched++
				deps := p.Imports
				if r.transitive {
					deps = p.Deps
				}
				for _, d := range deps {
					if r.forbidden(d) {
						t.Errorf("%s imports %s", p.ImportPath, d)
					}
				}
			}
			if matched == 0 {
				t.Errorf("rule matched no package: the layout changed, update the rule")
			}
		})
	}
}
