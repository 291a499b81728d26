package pdkit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxBytes is the README's budget: what a newcomer reads first; the rest is in docs/.
const readmeMaxBytes = 15 * 1024

// TestDocLinksResolve checks every relative link in README.md and docs/*.md: the file (or
// folder) exists inside the repository and, with a #fragment, the target Markdown file has a
// heading (or an <a id/name>) with that anchor under GitHub's rules.
func TestDocLinksResolve(t *testing.T) {
	files := docFiles(t, ".")
	if len(files) < 3 {
		t.Fatalf("found only %v: README.md and docs/*.md expected", files)
	}
	for _, problem := range checkDocLinks(t, ".", files) {
		t.Error(problem)
	}
}

// TestReadmeShort keeps the README within its budget and keeps the string CI's entry point
// promises: `.ci/run` runs exactly `make test`.
func TestReadmeShort(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > readmeMaxBytes {
		t.Errorf("README.md is %d bytes, budget %d: move details into docs/", len(b), readmeMaxBytes)
	}
	for _, want := range []string{"make run", "make test", "runs exactly `make test`"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}

// TestDocLinkCheckerFindsBrokenLinks runs the checker on a small tree with one broken link of
// each kind, so TestDocLinksResolve cannot pass by checking nothing.
func TestDocLinkCheckerFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n[ok](docs/a.md#on-call-pdctl) [ok2](#top) [gone](docs/missing.md)\n"+
		"[badanchor](docs/a.md#nope) `[code](docs/ignored.md)` [web](https://example.com/x)\n"+
		"```\n[fenced](docs/fenced.md)\n```\n[ref]: docs/a.md#dup-1\n[refbad]: docs/a.md#dup-2\n"+
		"[outside](../elsewhere.md) [dir](docs/) [self](README.md#top)\n")
	write("docs/a.md", "# A\n\n## On call: `pdctl`\n\n## Dup\n\n## Dup\n\n<a id=\"custom\"></a>\n[back](../README.md#top) [c](#custom)\n")
	got := checkDocLinks(t, dir, docFiles(t, dir))
	want := []string{
		"README.md: link docs/missing.md: no such file",
		"README.md: link docs/a.md#nope: no anchor \"nope\" in docs/a.md",
		"README.md: link docs/a.md#dup-2: no anchor \"dup-2\" in docs/a.md",
		"README.md: link ../elsewhere.md: outside the repository",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

// TestGitHubAnchor pins the heading-to-anchor rule on headings this repository uses.
func TestGitHubAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"Two commands":                                               "two-commands",
		"On call: `pdctl`":                                           "on-call-pdctl",
		"What `SUCCESS_URL` may trust":                               "what-success_url-may-trust",
		"Response classification (`pkg/pderrors`)":                   "response-classification-pkgpderrors",
		"Metrics, alarms and the dashboard":                          "metrics-alarms-and-the-dashboard",
		"Adaptive refresh: warm while in use, kept alive while idle": "adaptive-refresh-warm-while-in-use-kept-alive-while-idle",
		"Migrating API-token customers: `pdctl migrate`":             "migrating-api-token-customers-pdctl-migrate",
		"Data flow: a job":                                           "data-flow-a-job",
		"[Linked](x.md) *emphasis*":                                  "linked-emphasis",
		"Größe & Maß":                                                "größe--maß",
	} {
		if got := githubAnchor(heading); got != want {
			t.Errorf("githubAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, err := filepath.Rel(root, m)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

var (
	fenceRE      = regexp.MustCompile("(?ms)^ {0,3}(```|~~~).*?^ {0,3}(```|~~~)[^\n]*$")
	codeSpanRE   = regexp.MustCompile("`+[^`]*`+")
	commentRE    = regexp.MustCompile(`(?s)<!--.*?-->`)
	inlineLinkRE = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRE     = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	headingRE    = regexp.MustCompile(`(?m)^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	htmlAnchorRE = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	schemeRE     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// stripCode removes what Markdown does not read as links: fenced blocks, code spans, comments.
func stripCode(s string) string {
	s = fenceRE.ReplaceAllString(s, "")
	s = commentRE.ReplaceAllString(s, "")
	return codeSpanRE.ReplaceAllString(s, "")
}

// checkDocLinks returns one line per broken relative link in files (paths relative to root).
func checkDocLinks(t *testing.T, root string, files []string) []string {
	t.Helper()
	anchors := map[string]map[string]bool{}
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := anchors[rel]; ok {
			return a
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		a := markdownAnchors(string(b))
		anchors[rel] = a
		return a
	}
	var problems []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := stripCode(string(b))
		var targets []string
		for _, m := range inlineLinkRE.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, m := range refDefRE.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if schemeRE.MatchString(target) || strings.HasPrefix(target, "//") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			rel := f
			if path != "" {
				rel = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), path)))
				if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(path) {
					problems = append(problems, fmt.Sprintf("%s: link %s: outside the repository", f, target))
					continue
				}
				if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
					problems = append(problems, fmt.Sprintf("%s: link %s: no such file", f, target))
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(rel, ".md") {
				problems = append(problems, fmt.Sprintf("%s: link %s: an anchor into a file that is not Markdown", f, target))
				continue
			}
			if !anchorsOf(rel)[strings.ToLower(frag)] {
				problems = append(problems, fmt.Sprintf("%s: link %s: no anchor %q in %s", f, target, frag, rel))
			}
		}
	}
	return problems
}

// markdownAnchors lists the anchors GitHub gives a Markdown file's headings (repeats get -1,
// -2, ...), plus explicit <a id> and <a name> anchors.
func markdownAnchors(s string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	s = fenceRE.ReplaceAllString(s, "")
	for _, m := range headingRE.FindAllStringSubmatch(s, -1) {
		a := githubAnchor(m[2])
		n := seen[a]
		seen[a]++
		if n > 0 {
			a = fmt.Sprintf("%s-%d", a, n)
		}
		out[a] = true
	}
	for _, m := range htmlAnchorRE.FindAllStringSubmatch(s, -1) {
		out[m[1]] = true
	}
	return out
}

var mdLinkTextRE = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// githubAnchor is GitHub's heading anchor: the rendered text (links reduced to their text),
// lowercased, every character but letters, digits, spaces, hyphens and underscores dropped,
// spaces turned into hyphens.
func githubAnchor(heading string) string {
	text := mdLinkTextRE.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
