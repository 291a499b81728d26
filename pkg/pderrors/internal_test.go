package pderrors

import (
	"strings"
	"testing"
	"time"
)

// TestRuleWordsNormalised: a rule word that normalize would change can never match.
func TestRuleWordsNormalised(t *testing.T) {
	words := [][]string{wordsMalformedAuth, wordsScopeMismatch, wordsWebhookLimit, wordsDailyBudget, wordsInvalidGrant, wordsMaintenance}
	for _, r := range oauthRules {
		words = append(words, r.words)
		if !r.action.Valid() || r.reason == "" {
			t.Errorf("rule %v = %v/%q, want a valid action and a reason", r.words, r.action, r.reason)
		}
	}
	for _, ws := range words {
		for _, w := range ws {
			if got := string(normalize(nil, w)); got != w {
				t.Errorf("normalize(%q) = %q, want the word unchanged", w, got)
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Invalid grant: `refresh_token` is invalid", "invalid grant refresh token is invalid"},
		{"  INVALID GRANT: refresh token is invalid.", "invalid grant refresh token is invalid "},
		{"application/x-www-form-urlencoded", "application x www form urlencoded"},
		{"Ünïcode ‘quoted’", "ünïcode quoted "},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(normalize(nil, tt.in)); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := normalize(nil, strings.Repeat("a", 2*maxMatchText)); len(got) != maxMatchText {
		t.Errorf("len(normalize(<%d bytes>)) = %d, want %d", 2*maxMatchText, len(got), maxMatchText)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 7\t", 7 * time.Second, true},
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"2.", 2 * time.Second, true},
		{"0.0000000001", 0, true},
		{"99999999999999999999", maxHintSeconds * time.Second, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1e3", 0, false},
		{".5", 0, false},
		{"7s", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSeconds(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSeconds(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCleanMessageFastPath: isClean lets through only what rebuildMessage leaves unchanged, and
// rebuildMessage's output is clean.
func TestCleanMessageFastPath(t *testing.T) {
	inputs := []string{
		"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "a\nb", "a\u00a0b", "a\x00b", "a\xffb",
		"Invalid grant: `refresh_token` is invalid",
		"refresh token 1:1:9f8e7d6c5b4a39281706fedcba is invalid",
		"1:1:9f8e7d6c5b4a39281706fedcba",
		strings.Repeat("é", 200), strings.Repeat("é", 201), strings.Repeat("ab ", 100), strings.Repeat("a", 199) + " b",
	}
	for _, s := range inputs {
		slow := rebuildMessage(s)
		if isClean(s) && slow != s {
			t.Errorf("isClean(%q) = true, but rebuildMessage = %q", s, slow)
		}
		if slow != "" && !isClean(slow) {
			t.Errorf("isClean(rebuildMessage(%q) = %q) = false, want true", s, slow)
		}
		if got := cleanMessage(s); got != slow {
			t.Errorf("cleanMessage(%q) = %q, want %q", s, got, slow)
		}
	}
}
