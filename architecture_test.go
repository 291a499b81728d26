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

// testOnlyPkg reports whether path is a package only tests may link: the simulator, the test
// harness, the local stack and the public test package.
func testOnlyPkg(path string) bool {
	for _, n := range []string{"pdsim", "pdsimtest", "testenv", "motoserver", "fakeclock", "lambdarun", "localstack"} {
		if internalPkg(n)(path) {
			return true
		}
	}
	return path == module+"/pdkit/pdkittest"
}

// TestArchitecture enforces the layering docs/layout.md and docs/architecture.md
// describe. Each rule names the packages it constrains and what they must not depend on.
func TestArchitecture(t *testing.T) {
	pkgs := listPackages(t)
	isTestOnly := testOnlyPkg
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
		{"a function's main imports only the public package (it starts the empty app)",
			prefix("functions"), false,
			func(p string) bool { return project(p) && p != module+"/pdkit" }},
		{"the public package links no simulator, test harness or local stack",
			exact("pdkit"), true, isTestOnly},
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

// exampleModule is the worked example app, a module of its own inside the repository.
const (
	exampleDir    = "examples/dealnotes"
	exampleModule = module + "/" + exampleDir
)

// TestExampleUsesThePublicAPIOnly: the example app is what an app developer writes, so it may
// import the kit's public packages (pdkit, pdkit/pdkittest, pkg/) and nothing under internal/:
// Go's internal rule does not stop it (its import path is under the kit's), this test does.
// Its functions link no test-only package.
func TestExampleUsesThePublicAPIOnly(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-test", "-json", "./...")
	cmd.Dir = exampleDir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list in %s: %v\n%s\n(after a change of the kit's dependencies: cd %s && go mod tidy)", exampleDir, err, stderr.String(), exampleDir)
	}
	type listed struct {
		ImportPath, ForTest       string
		Imports, Deps             []string
		TestImports, XTestImports []string
	}
	own, functions := 0, 0
	dec := json.NewDecoder(&out)
	for {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		path, _, _ := strings.Cut(p.ImportPath, " ") // "pkg [pkg.test]" for a test variant
		if path != exampleModule && !strings.HasPrefix(path, exampleModule+"/") {
			continue
		}
		own++
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, module+"/internal/") {
				t.Errorf("%s imports %s: an app uses the kit's public API only (pdkit, pdkit/pdkittest, pkg/)", p.ImportPath, imp)
			}
		}
		if strings.HasPrefix(p.ImportPath, exampleModule+"/functions/") && p.ForTest == "" && !strings.Contains(p.ImportPath, " ") {
			functions++
			for _, d := range p.Deps {
				if testOnlyPkg(d) || d == "testing" {
					t.Errorf("%s links %s, which only tests may", p.ImportPath, d)
				}
			}
		}
	}
	if own == 0 || functions != 4 {
		t.Errorf("go list found %d packages of %s and %d of its functions, want its packages and 4 functions", own, exampleModule, functions)
	}
}
