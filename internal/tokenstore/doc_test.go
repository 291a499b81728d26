package tokenstore_test

import (
	"os"
	"strings"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/tokenstore"
)

// TestDocNamesEveryKind: the package documentation describes every kind of item the Store
// writes: each key prefix of MethodKeyPrefixes has a section starting `pk "<prefix>`.
func TestDocNamesEveryKind(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	seen := map[string]bool{}
	for method, prefixes := range tokenstore.MethodKeyPrefixes {
		for _, p := range prefixes {
			if !seen[p] && !strings.Contains(doc, `pk "`+p) {
				t.Errorf("doc.go has no section for items keyed %q (written by %s)", p, method)
			}
			seen[p] = true
			if !strings.Contains(doc, method) {
				t.Errorf("doc.go does not name %s, which writes %q items", method, p)
			}
		}
	}
	if len(seen) < 7 {
		t.Errorf("MethodKeyPrefixes names %d prefixes, want at least 7: %v", len(seen), seen)
	}
}
