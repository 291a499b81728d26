package pdkit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	pdkit "github.com/pdkit/pipedrive-lambda-kit"
	"github.com/pdkit/pipedrive-lambda-kit/internal/infra"
	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// functionResources returns the template's resources and the logical IDs of its functions.
func functionResources(t *testing.T) (*yaml.Node, []string) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	resources := node(&doc, "Resources")
	var fns []string
	for name := range keys(resources) {
		if node(resources, name, "Type").Value == "AWS::Serverless::Function" {
			fns = append(fns, name)
		}
	}
	slices.Sort(fns)
	if len(fns) == 0 {
		t.Fatal("template.yaml defines no function")
	}
	return resources, fns
}

// policies lists a function's policies, each branch of a conditional one (!If [c, a, b]) as a
// policy of its own: a role may hold either, so both are checked.
func policies(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	var out []*yaml.Node
	for _, p := range n.Content {
		if p.Tag == "!If" && p.Kind == yaml.SequenceNode && len(p.Content) == 3 {
			for _, branch := range p.Content[1:] {
				if branch.Kind == yaml.MappingNode {
					out = append(out, branch)
				}
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// policyText flattens a function's Policies into "Name" for SAM policy templates and the
// actions of inline statements, so tests can look for what a role may do.
func policyText(n *yaml.Node) (templates []string, actions []string) {
	for _, p := range policies(n) {
		for name := range keys(p) {
			if name != "Statement" {
				templates = append(templates, name)
				continue
			}
			for _, st := range node(p, "Statement").Content {
				a := node(st, "Action")
				switch {
				case a == nil:
				case a.Kind == yaml.ScalarNode:
					actions = append(actions, a.Value)
				default:
					for _, x := range a.Content {
						actions = append(actions, x.Value)
					}
				}
			}
		}
	}
	return templates, actions
}

// TestFunctionsHaveLeastPrivilege: no function may read the whole table (no CRUD policy
// template, no Scan, no batch reads), and only the refresher and the worker may decrypt the
// tokens; the callback may only seal them, the webhook receiver may do neither.
func TestFunctionsHaveLeastPrivilege(t *testing.T) {
	resources, fns := functionResources(t)
	mayDecrypt := map[string]bool{"RefresherFunction": true, "ApiCallFunction": true}
	maySeal := map[string]bool{"RefresherFunction": true, "ApiCallFunction": true, "CallbackFunction": true}
	for _, fn := range fns {
		templates, actions := policyText(node(resources, fn, "Properties", "Policies"))
		for _, tpl := range templates {
			if strings.HasPrefix(tpl, "DynamoDB") {
				t.Errorf("%s has the policy template %s: list the DynamoDB actions it uses instead", fn, tpl)
			}
		}
		for _, a := range actions {
			switch {
			case strings.Contains(a, "*"):
				t.Errorf("%s may %s: wildcard actions are not least privilege", fn, a)
			case a == "dynamodb:Scan", a == "dynamodb:BatchGetItem", a == "dynamodb:PartiQLSelect":
				t.Errorf("%s may %s: a function reads single items or the due index, never the whole table", fn, a)
			case a == "kms:Decrypt" && !mayDecrypt[fn]:
				t.Errorf("%s may kms:Decrypt: only the refresher and the worker may open tokens", fn)
			case (a == "kms:GenerateDataKey" || a == "kms:Encrypt") && !maySeal[fn]:
				t.Errorf("%s may %s: it stores no token", fn, a)
			}
		}
		has := func(a string) bool { return slices.Contains(actions, a) }
		if mayDecrypt[fn] && (!has("kms:Decrypt") || !has("kms:GenerateDataKey")) {
			t.Errorf("%s lacks kms:Decrypt or kms:GenerateDataKey: it opens and seals tokens", fn)
		}
		if fn == "CallbackFunction" && !has("kms:GenerateDataKey") {
			t.Errorf("CallbackFunction lacks kms:GenerateDataKey: it seals the tokens it stores")
		}
	}
}

// TestFunctionsLogWithRetention: each function logs to its own log group, which the template
// defines with a retention.
func TestFunctionsLogWithRetention(t *testing.T) {
	resources, fns := functionResources(t)
	for _, fn := range fns {
		ref := node(resources, fn, "Properties", "LoggingConfig", "LogGroup")
		if ref == nil || ref.Tag != "!Ref" {
			t.Errorf("%s: LoggingConfig.LogGroup is not a !Ref of a log group", fn)
			continue
		}
		group := node(resources, ref.Value)
		if group == nil || node(group, "Type").Value != "AWS::Logs::LogGroup" {
			t.Errorf("%s logs to %s, which is not an AWS::Logs::LogGroup of the template", fn, ref.Value)
			continue
		}
		if node(group, "Properties", "RetentionInDays") == nil {
			t.Errorf("%s's log group %s has no RetentionInDays", fn, ref.Value)
		}
		if name := node(group, "Properties", "LogGroupName"); name == nil || !strings.HasPrefix(name.Value, "/aws/lambda/") || !strings.HasSuffix(name.Value, fn) {
			t.Errorf("%s's log group is named %v, want /aws/lambda/<stack>-%s", fn, name, fn)
		}
	}
}

// TestWorkerConcurrencyIsCapped: the jobs queue cannot start more worker invocations than the
// WorkerMaxConcurrency parameter, which leaves the account's concurrency to the callback.
func TestWorkerConcurrencyIsCapped(t *testing.T) {
	spec, err := infra.Parse(pdkit.Template)
	if err != nil {
		t.Fatal(err)
	}
	q := spec.Functions["ApiCallFunction"].Queues
	if len(q) != 1 || q[0].MaximumConcurrency < 2 || q[0].MaximumConcurrency >= 10 {
		t.Errorf("ApiCallFunction queue sources = %+v, want one with MaximumConcurrency 2..9 (new accounts have 10)", q)
	}
	p, ok := spec.Parameters["WorkerMaxConcurrency"]
	if !ok || p.Default == nil || p.Type != "Number" {
		t.Errorf("parameter WorkerMaxConcurrency = %+v, want a Number with a default", p)
	}
}

// leadingKeyFunctions are the functions whose DynamoDB statements TestTemplateDynamoDBLeadingKeys
// derives from their code: the template's logical id and the function's package (internal/functions).
var leadingKeyFunctions = map[string]string{
	"CallbackFunction":  module + "/internal/functions/callback",
	"RefresherFunction": module + "/internal/functions/refresher",
	"ApiCallFunction":   module + "/internal/functions/apicall",
}

// storeUse is what a function's code can do with the tokens table: the prefixes of the items
// it reaches by key and whether it queries the refresh-due index.
type storeUse struct {
	prefixes []string // sorted, each "<prefix>*" as a LeadingKeys pattern
	index    bool
	methods  []string // the Store methods behind them, for messages
}

// typedPackage is one package type-checked from source: its types, syntax and type info.
type typedPackage struct {
	pkg   *types.Package
	files []*ast.File
	info  *types.Info
}

// typeCheck type-checks the given packages (and internal/wire) from source, their imports
// from the build's export data (go list -export).
func typeCheck(t *testing.T, paths ...string) map[string]*typedPackage {
	t.Helper()
	args := append([]string{"list", "-export", "-deps", "-json"}, paths...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export: %v\n%s", err, stderr.String())
	}
	type listed struct {
		ImportPath, Dir, Export string
		GoFiles                 []string
	}
	byPath := map[string]listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		byPath[p.ImportPath] = p
	}
	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		p, ok := byPath[path]
		if !ok || p.Export == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(p.Export)
	})
	result := map[string]*typedPackage{}
	for _, path := range append(paths, module+"/internal/wire") {
		p := byPath[path]
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
		pkg, err := (&types.Config{Importer: imp}).Check(path, fset, files, info)
		if err != nil {
			t.Fatalf("type-check %s: %v", path, err)
		}
		result[path] = &typedPackage{pkg, files, info}
	}
	return result
}

// isStore reports whether t is *tokenstore.Store.
func isStore(t types.Type) bool {
	p, ok := t.(*types.Pointer)
	if !ok {
		return false
	}
	n, ok := p.Elem().(*types.Named)
	return ok && n.Obj().Name() == "Store" && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == module+"/internal/tokenstore"
}

// storeFlows returns the methods of every interface that a *tokenstore.Store value flows into
// within the nodes under root (a composite literal field, an assignment, a call argument): the
// methods the code behind that interface can call. A flow into a concrete *tokenstore.Store
// field (wire.App.Store) is followed where that field is read instead.
func storeFlows(tp *typedPackage, root ast.Node, into map[string]bool) {
	isStoreExpr := func(e ast.Expr) bool { return isStore(tp.info.TypeOf(e)) }
	add := func(target types.Type) {
		if target == nil || isStore(target) {
			return
		}
		if iface, ok := target.Underlying().(*types.Interface); ok {
			for i := range iface.NumMethods() {
				into[iface.Method(i).Name()] = true
			}
		}
	}
	ast.Inspect(root, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			st, ok := derefStruct(tp.info.TypeOf(n))
			if !ok {
				return true
			}
			for _, el := range n.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok || !isStoreExpr(kv.Value) {
					continue
				}
				name := kv.Key.(*ast.Ident).Name
				for i := range st.NumFields() {
					if st.Field(i).Name() == name {
						add(st.Field(i).Type())
					}
				}
			}
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i, r := range n.Rhs {
					if isStoreExpr(r) {
						add(tp.info.TypeOf(n.Lhs[i]))
					}
				}
			}
		case *ast.CallExpr:
			sig, ok := tp.info.TypeOf(n.Fun).(*types.Signature)
			if !ok {
				return true
			}
			for i, a := range n.Args {
				if isStoreExpr(a) && i < sig.Params().Len() {
					add(sig.Params().At(i).Type())
				}
			}
		}
		return true
	})
}

func derefStruct(t types.Type) (*types.Struct, bool) {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if t == nil {
		return nil, false
	}
	st, ok := t.Underlying().(*types.Struct)
	return st, ok
}

// functionStoreUse derives what each function's code can do with the table: the interfaces
// its main package puts the store behind, and those of the internal/wire code it runs (Load,
// and every App method it calls: App.Refresher hands the store to the refresher).
func functionStoreUse(t *testing.T) map[string]storeUse {
	t.Helper()
	pkgs := typeCheck(t, slices.Sorted(maps.Values(leadingKeyFunctions))...)
	wire := pkgs[module+"/internal/wire"]
	wireFuncs := map[string]*ast.FuncDecl{}
	for _, f := range wire.files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				wireFuncs[fd.Name.Name] = fd
			}
		}
	}
	out := map[string]storeUse{}
	for fn, path := range leadingKeyFunctions {
		tp := pkgs[path]
		methods := map[string]bool{}
		wireCalls := map[string]bool{"Load": true}
		for _, f := range tp.files {
			storeFlows(tp, f, methods)
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if obj := tp.info.Uses[sel.Sel]; obj != nil && obj.Pkg() != nil && obj.Pkg().Path() == wire.pkg.Path() {
						wireCalls[obj.Name()] = true
					}
				}
				return true
			})
		}
		for name := range wireCalls {
			if fd := wireFuncs[name]; fd != nil {
				storeFlows(wire, fd, methods)
			}
		}
		if len(methods) == 0 {
			t.Fatalf("%s: found no interface its code puts the tokens store behind", fn)
		}
		var use storeUse
		prefixes := map[string]bool{}
		for m := range methods {
			switch {
			case slices.Contains(tokenstore.IndexMethods, m):
				use.index = true
			case tokenstore.MethodKeyPrefixes[m] != nil:
				for _, p := range tokenstore.MethodKeyPrefixes[m] {
					prefixes[p+"*"] = true
				}
			default:
				t.Errorf("%s calls Store.%s, which tokenstore.MethodKeyPrefixes does not classify", fn, m)
			}
		}
		use.prefixes = slices.Sorted(maps.Keys(prefixes))
		use.methods = slices.Sorted(maps.Keys(methods))
		out[fn] = use
	}
	return out
}

// templateStoreGrants reads a function's DynamoDB statements: the LeadingKeys patterns of
// those on the table (each must carry one), and whether it may Query the refresh-due index.
func templateStoreGrants(t *testing.T, resources *yaml.Node, fn string) (patterns []string, index bool) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range policies(node(resources, fn, "Properties", "Policies")) {
		st := node(p, "Statement")
		if st == nil {
			continue
		}
		for _, s := range st.Content {
			var actions []string
			if a := node(s, "Action"); a.Kind == yaml.ScalarNode {
				actions = []string{a.Value}
			} else {
				for _, x := range a.Content {
					actions = append(actions, x.Value)
				}
			}
			if !slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") }) {
				continue
			}
			res := node(s, "Resource")
			switch {
			case res.Tag == "!GetAtt" && res.Value == "TokensTable.Arn":
				keys := node(s, "Condition", "ForAllValues:StringLike", "dynamodb:LeadingKeys")
				if keys == nil || len(keys.Content) == 0 {
					t.Errorf("%s may %v on the whole table: want a ForAllValues:StringLike dynamodb:LeadingKeys condition", fn, actions)
					continue
				}
				for _, k := range keys.Content {
					seen[k.Value] = true
				}
			case res.Tag == "!Sub" && res.Value == "${TokensTable.Arn}/index/refresh-due":
				if !slices.Equal(actions, []string{"dynamodb:Query"}) {
					t.Errorf("%s may %v on the refresh-due index, want dynamodb:Query only", fn, actions)
				}
				index = true
			default:
				t.Errorf("%s has DynamoDB statement on %s %q: want the table (with LeadingKeys) or its refresh-due index", fn, res.Tag, res.Value)
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), index
}

// TestTemplateDynamoDBLeadingKeys: each function's role reaches exactly the kinds of items its code
// can reach. What the code can reach is derived, not listed: the interfaces its main package
// (and the wire code it runs) puts the *tokenstore.Store behind give the Store methods it can
// call, and tokenstore.MethodKeyPrefixes (checked against the keys each method's requests name,
// on moto) gives their key prefixes. A new method or prefix in a function's code path without
// the template's LeadingKeys changing fails here; so does a prefix granted but not used. moto
// does not enforce IAM, so this test, not a run against moto, is what keeps the two equal.
func TestTemplateDynamoDBLeadingKeys(t *testing.T) {
	uses := functionStoreUse(t)
	resources, _ := functionResources(t)
	for _, fn := range slices.Sorted(maps.Keys(leadingKeyFunctions)) {
		use := uses[fn]
		patterns, index := templateStoreGrants(t, resources, fn)
		if !slices.Equal(patterns, use.prefixes) {
			t.Errorf("%s's LeadingKeys = %q, want %q: its code calls Store.%s", fn, patterns, use.prefixes, strings.Join(use.methods, ", Store."))
		}
		if index != use.index {
			t.Errorf("%s may Query the refresh-due index %t, want %t (its code lists due installations: %t)", fn, index, use.index, use.index)
		}
	}
}

// tokenUse are the KMS actions that open or seal tokens: whoever holds one of them (or a
// wildcard matching it) on the tokens key can read, or forge, every installation's tokens.
var tokenUse = []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"}

// strs is a scalar or a sequence of scalars as a list.
func strs(n *yaml.Node) []string {
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.ScalarNode:
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

// grants reports the actions of tokenUse (or want) that the action patterns allow.
func grants(patterns []string, want ...string) []string {
	var out []string
	for _, a := range want {
		for _, p := range patterns {
			if ok, _ := filepath.Match(strings.ToLower(p), strings.ToLower(a)); ok {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// statements lists a policy document's statements, taking the "then" branch of an !If.
func statements(doc *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, st := range node(doc, "Statement").Content {
		if st.Tag == "!If" && len(st.Content) == 3 {
			st = st.Content[1]
		}
		out = append(out, st)
	}
	return out
}

// TestTokensKeyPolicy: the account administers the tokens key but cannot use it; only roles on
// the refresher's and the worker's path (and the optional break-glass role) may decrypt, the
// callback's path may only seal, and each path belongs to exactly those functions.
func TestTokensKeyPolicy(t *testing.T) {
	resources, fns := functionResources(t)
	policy := node(resources, "TokensKey", "Properties", "KeyPolicy")
	if policy == nil {
		t.Fatal("TokensKey has no KeyPolicy")
	}
	decrypters := map[string]bool{}
	for _, st := range statements(policy) {
		sid := node(st, "Sid").Value
		if node(st, "Effect").Value != "Allow" {
			continue
		}
		actions := strs(node(st, "Action"))
		used := grants(actions, tokenUse...)
		principal := node(st, "Principal", "AWS")
		cond := node(st, "Condition", "ArnLike", "aws:PrincipalArn")
		switch {
		case len(used) == 0:
			// administration only
		case principal != nil && principal.Value == "BreakGlassRoleARN":
			decrypters["break-glass"] = true
		case cond == nil:
			t.Errorf("key policy statement %s gives %v to %s without naming the roles (aws:PrincipalArn)", sid, used, principal.Value)
		case strings.HasSuffix(cond.Value, "/token-users/*"):
			decrypters["token-users"] = true
		case strings.HasSuffix(cond.Value, "/token-sealers/*"):
			if d := grants(actions, "kms:Decrypt", "kms:ReEncryptFrom"); len(d) > 0 {
				t.Errorf("key policy statement %s lets the callback's roles %v", sid, d)
			}
		default:
			t.Errorf("key policy statement %s gives %v to roles %s, want only the token-users or token-sealers path", sid, used, cond.Value)
		}
		if principal != nil && strings.Contains(principal.Value, ":root") && cond == nil && len(used) > 0 {
			t.Errorf("the account root may use the key (%v) in statement %s", used, sid)
		}
	}
	if !decrypters["token-users"] || !decrypters["break-glass"] {
		t.Errorf("decrypting statements = %v, want the token-users path and the optional break-glass role", decrypters)
	}
	wantPath := map[string]string{"RefresherFunction": "token-users", "ApiCallFunction": "token-users", "CallbackFunction": "token-sealers"}
	for _, fn := range fns {
		got := ""
		if p := node(resources, fn, "Properties", "RolePath"); p != nil {
			for _, kind := range []string{"token-users", "token-sealers"} {
				if strings.Contains(p.Value, "/"+kind+"/") {
					got = kind
				}
			}
		}
		if got != wantPath[fn] {
			t.Errorf("%s role path is in %q, want %q", fn, got, wantPath[fn])
		}
	}
}

// TestOnCallCannotActAsACustomer: the documented on-call policy can neither put a job on the
// jobs queue nor invoke the worker nor use the tokens key; redrive, which must send to the
// jobs queue, is a separate policy; and direct invocation of the worker is off by default.
func TestOnCallCannotActAsACustomer(t *testing.T) {
	resources, _ := functionResources(t)
	onCall := node(resources, "OnCallPolicy", "Properties", "PolicyDocument")
	if onCall == nil {
		t.Fatal("template.yaml defines no OnCallPolicy")
	}
	for _, st := range statements(onCall) {
		actions := strs(node(st, "Action"))
		if bad := grants(actions, append([]string{"sqs:SendMessage", "sqs:SendMessageBatch", "lambda:InvokeFunction", "lambda:InvokeAsync", "dynamodb:PutItem", "dynamodb:UpdateItem"}, tokenUse...)...); len(bad) > 0 {
			t.Errorf("OnCallPolicy statement %s allows %v", node(st, "Sid").Value, bad)
		}
	}
	redrive := node(resources, "RedrivePolicy", "Properties", "PolicyDocument")
	if redrive == nil {
		t.Fatal("template.yaml defines no RedrivePolicy")
	}
	for _, st := range statements(redrive) {
		if bad := grants(strs(node(st, "Action")), append([]string{"lambda:InvokeFunction"}, tokenUse...)...); len(bad) > 0 {
			t.Errorf("RedrivePolicy statement %s allows %v", node(st, "Sid").Value, bad)
		}
	}
	if got := node(resources, "ApiCallFunction", "Properties", "Environment", "Variables", "DIRECT_INVOKE"); got == nil || got.Value != "WorkerDirectInvoke" {
		t.Errorf("ApiCallFunction DIRECT_INVOKE = %v, want !Ref WorkerDirectInvoke", got)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(pdkit.Template, &doc); err != nil {
		t.Fatal(err)
	}
	if def := node(&doc, "Parameters", "WorkerDirectInvoke", "Default"); def == nil || def.Value != "false" {
		t.Errorf("WorkerDirectInvoke default = %v, want \"false\"", def)
	}
}
