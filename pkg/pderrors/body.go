package pderrors

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits that keep classification cheap and its output safe to log.
const (
	// maxDecodeBody: Pipedrive error bodies are a few hundred bytes; a larger body is not an
	// error shape we know, so it is classified by status alone rather than decoded.
	maxDecodeBody = 64 << 10
	// maxMatchText bounds the normalised text the message rules search.
	maxMatchText = 1024
	// maxMessageRunes bounds Decision.Message.
	maxMessageRunes = 200
	// maxScanBody bounds the raw scan of a non-JSON page (the OAuth 503 maintenance page).
	maxScanBody = 16 << 10
)

// errorBody holds the fields of both Pipedrive error shapes that carry text:
// OAuth {"success":false,"message":"…","error":"invalid_grant"},
// API {"success":false,"error":"…","error_info":"…","data":null,"additional_data":null},
// and RFC 6749 {"error":"…","error_description":"…"}, plus the machine codes Pipedrive adds:
// "code" (v2's "ERR_SCHEMA_VALIDATION_FAILED", a plan limit's "feature_capping_…") and
// "errorCode" (403, 401, or a string). Codes of another JSON type than a string are ignored;
// "success" is not needed to decide and is not decoded.
type errorBody struct {
	Message          string          `json:"message"`
	ErrorDescription string          `json:"error_description"`
	Error            string          `json:"error"`
	Code             json.RawMessage `json:"code"`
	ErrorCode        json.RawMessage `json:"errorCode"`
}

// featureCappingPrefix starts the code of a plan-limit answer ("feature_capping_deals_limit").
const featureCappingPrefix = "feature_capping"

// parsedBody is what the classifiers need from a response body.
type parsedBody struct {
	// text is message, error_description and error, normalised for matching (see normalize).
	text string
	// message is the text for Decision.Message: cleaned, length-limited, safe to log.
	message string
	// html is true for an HTML page (by Content-Type or by a leading '<').
	html bool
	// featureCapped is true when "code" or "errorCode" is a feature_capping_* string.
	featureCapped bool
}

// parseBody reads the body's message fields when it is a JSON object and notes whether it is
// an HTML page. Empty, truncated, non-object or oversized bodies yield no text, so the caller
// falls back on the status. It allocates nothing for a nil header and an empty body.
func parseBody(header http.Header, body []byte) parsedBody {
	var p parsedBody
	b := trimLeft(body)
	if len(b) > 0 && b[0] == '<' {
		p.html = true
	} else if ct := headerValue(header, "Content-Type"); ct != "" && containsFold(ct, "html") {
		p.html = true
	}
	if p.html || len(b) == 0 || b[0] != '{' || len(b) > maxDecodeBody {
		return p
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		// A field of an unexpected type (say "error":{…}) is skipped and the others are still
		// filled: keep them. Any other error (truncated or invalid JSON) means no text.
		if _, ok := err.(*json.UnmarshalTypeError); !ok {
			return p
		}
	}
	t := make([]byte, 0, min(len(eb.Message)+len(eb.ErrorDescription)+len(eb.Error)+3, maxMatchText+utf8.UTFMax))
	t = normalize(t, eb.Message)
	t = normalize(t, eb.ErrorDescription)
	t = normalize(t, eb.Error)
	p.text = string(t)
	p.featureCapped = isFeatureCapping(eb.Code) || isFeatureCapping(eb.ErrorCode)
	switch {
	case strings.TrimSpace(eb.Message) != "":
		p.message = cleanMessage(eb.Message)
	case strings.TrimSpace(eb.ErrorDescription) != "":
		p.message = cleanMessage(eb.ErrorDescription)
	default:
		p.message = cleanMessage(eb.Error)
	}
	return p
}

// isFeatureCapping reports whether a raw JSON code is a string starting with feature_capping
// (any case).
func isFeatureCapping(raw json.RawMessage) bool {
	if len(raw) < len(featureCappingPrefix)+2 || raw[0] != '"' {
		return false
	}
	var code string
	if json.Unmarshal(raw, &code) != nil || len(code) < len(featureCappingPrefix) {
		return false
	}
	return strings.EqualFold(code[:len(featureCappingPrefix)], featureCappingPrefix)
}

// trimLeft drops leading white space and a UTF-8 byte order mark.
func trimLeft(b []byte) []byte {
	for len(b) > 0 {
		switch {
		case b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n':
			b = b[1:]
		case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
			b = b[3:]
		default:
			return b
		}
	}
	return b
}

// normalize appends s to dst in the form the message rules match against: lower case, every
// run of characters that is not a letter or a digit (backticks, quotes, '_', '-', ':',
// white space) turned into one space. So "Invalid grant: `refresh_token` is invalid" and
// "INVALID GRANT: refresh token is invalid" both read "invalid grant refresh token is invalid".
// Output stops at maxMatchText bytes.
func normalize(dst []byte, s string) []byte {
	space := len(dst) == 0 || dst[len(dst)-1] == ' '
	for _, r := range s {
		if len(dst) >= maxMatchText {
			break
		}
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') {
				dst = append(dst, c)
				space = false
				continue
			}
		} else if unicode.IsLetter(r) || unicode.IsDigit(r) {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
			space = false
			continue
		}
		if !space {
			dst = append(dst, ' ')
			space = true
		}
	}
	return dst
}

// hasAll reports whether the normalised text contains every one of the words.
func hasAll(text string, words []string) bool {
	if text == "" {
		return false
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// cleanMessage makes a Pipedrive message fit for logs: white space and control characters
// collapsed to single spaces, words that look like tokens replaced by "[redacted]" (Pipedrive's
// documented messages hold none, but a message is echoed to logs and must never carry one),
// at most maxMessageRunes runes, "…" marking a cut.
func cleanMessage(s string) string {
	if isClean(s) {
		return s // the usual case: nothing to change, nothing to allocate
	}
	return rebuildMessage(s)
}

// rebuildMessage is cleanMessage's work for a message that needs it.
func rebuildMessage(s string) string {
	// A message longer than this is cut anyway; bound the work.
	if limit := 4 * maxMessageRunes * utf8.UTFMax; len(s) > limit {
		s = s[:limit] // a rune split here decodes as RuneError and is dropped below
	}
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	})
	for i, f := range fields {
		if looksLikeSecret(f) {
			pre, _, post := secretCore(f)
			fields[i] = pre + "[redacted]" + post
		}
	}
	out := strings.Join(fields, " ")
	if utf8.RuneCountInString(out) <= maxMessageRunes {
		return out
	}
	cut, n := 0, 0
	for cut = range out {
		if n == maxMessageRunes-1 {
			break
		}
		n++
	}
	return out[:cut] + "…"
}

// isClean reports whether cleanMessage would return s unchanged: words separated by single
// spaces, no other white space or control characters, no token-like word, not too long.
func isClean(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > maxMessageRunes {
		return false
	}
	prevSpace, word := true, 0
	for i, r := range s {
		switch {
		case r == ' ':
			if prevSpace || looksLikeSecret(s[word:i]) {
				return false
			}
			prevSpace, word = true, i+1
		case unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError:
			return false
		default:
			prevSpace = false
		}
	}
	return !prevSpace && !looksLikeSecret(s[word:])
}

// wrappers are the quotes, brackets and punctuation a message may put around a token
// ("…", '…', `…`, (…), […], {…}, <…>, a trailing comma or full stop).
const wrappers = "\"'`([{<>}]),;!?"

// secretCore splits a word into the quotes or brackets around it and the core between them.
func secretCore(w string) (pre, core, post string) {
	core = strings.TrimLeft(w, wrappers)
	pre = w[:len(w)-len(core)]
	trimmed := strings.TrimRight(core, wrappers+".")
	post = core[len(trimmed):]
	return pre, trimmed, post
}

// looksLikeSecret reports whether a word has the shape of an access or refresh token, an API
// token or an authorization code: 24 or more characters from the token alphabet, with both
// letters and digits, once quotes or brackets around it are set aside.
func looksLikeSecret(w string) bool {
	_, w, _ = secretCore(w)
	if len(w) < 24 {
		return false
	}
	var letter, digit bool
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9':
			digit = true
		case strings.IndexByte("._~+/=:-", c) >= 0:
		default:
			return false
		}
	}
	return letter && digit
}

// headerValue returns the first value of the header key (given in canonical form), also when
// the map was built by hand with a non-canonical key. It allocates nothing.
func headerValue(h http.Header, key string) string {
	if len(h) == 0 {
		return ""
	}
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// containsFold reports whether s contains the lower-case ASCII needle, ignoring ASCII case.
func containsFold[T string | []byte](s T, lowerNeedle string) bool {
	n := len(lowerNeedle)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerNeedle[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
