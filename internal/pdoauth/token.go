package pdoauth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// FallbackExpiresIn is the lifetime assumed when a token answer has no usable expires_in:
// half the documented hour, so a refresher renews well before the real expiry.
const FallbackExpiresIn = 30 * time.Minute

// Token is one token answer. It never prints its tokens: String, GoString and LogValue (value
// receivers, so a Token and a *Token alike) redact them, so it may be logged or formatted with
// %v safely.
type Token struct {
	// AccessToken authorizes API calls for one user of one company; opaque.
	AccessToken string
	// RefreshToken renews the access token. After Refresh it is the token to store: the new
	// one when the server rotated it, else the one that was passed in.
	RefreshToken string
	// TokenType is the server's token_type, normally "Bearer".
	TokenType string
	// ExpiresIn is the server's expires_in (FallbackExpiresIn if missing or not positive).
	ExpiresIn time.Duration
	// ExpiresAt is when the access token expires, measured from just before the request.
	ExpiresAt time.Time
	// Scopes are the granted scopes (the comma-separated scope field, split).
	Scopes []string
	// APIDomain is the validated base URL for API calls (no trailing slash), e.g.
	// "https://acme.pipedrive.com"; empty when the answer had none.
	APIDomain string
}

// String describes the token without its secrets.
func (t Token) String() string {
	return fmt.Sprintf("pdoauth.Token{type=%s expires_at=%s scopes=%s api_domain=%s access_token=%s refresh_token=%s}",
		t.TokenType, t.ExpiresAt.UTC().Format(time.RFC3339), strings.Join(t.Scopes, ","), t.APIDomain,
		redacted(t.AccessToken), redacted(t.RefreshToken))
}

// GoString is String, so %#v does not print the tokens either.
func (t Token) GoString() string { return t.String() }

// LogValue implements slog.LogValuer: the token's metadata, never the tokens.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_type", t.TokenType),
		slog.Time("expires_at", t.ExpiresAt),
		slog.String("scopes", strings.Join(t.Scopes, ",")),
		slog.String("api_domain", t.APIDomain),
		slog.Bool("has_refresh_token", t.RefreshToken != ""),
	)
}

func redacted(s string) string {
	if s == "" {
		return "<empty>"
	}
	return "<redacted>"
}

// tokenJSON is the success body. Fields whose type varies in the wild get lenient types.
type tokenJSON struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    seconds   `json:"expires_in"`
	Scope        scopeList `json:"scope"`
	APIDomain    string    `json:"api_domain"`
}

// parseToken reads a 2xx token body. It does not validate api_domain.
func parseToken(body []byte, start time.Time) (*Token, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	var tj tokenJSON
	if err := json.Unmarshal(body, &tj); err != nil {
		// The error text can quote body bytes; report only where it failed.
		return nil, fmt.Errorf("%w: %s", ErrMalformedResponse, jsonProblem(err))
	}
	if tj.AccessToken == "" {
		return nil, ErrMissingAccessToken
	}
	expiresIn := time.Duration(tj.ExpiresIn) * time.Second
	if expiresIn <= 0 {
		expiresIn = FallbackExpiresIn
	}
	return &Token{
		AccessToken:  tj.AccessToken,
		RefreshToken: tj.RefreshToken,
		TokenType:    tj.TokenType,
		ExpiresIn:    expiresIn,
		ExpiresAt:    start.Add(expiresIn),
		Scopes:       []string(tj.Scope),
		APIDomain:    strings.TrimSpace(tj.APIDomain),
	}, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at offset %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has JSON type %s", e.Field, e.Value)
	default:
		return "invalid JSON"
	}
}

// seconds decodes expires_in given as a number or a numeric string; anything else is 0.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	str := strings.Trim(string(b), `"`)
	if n, err := strconv.ParseFloat(str, 64); err == nil && n > 0 && n < 1<<31 {
		*s = seconds(n)
	}
	return nil
}

// scopeList decodes scope given as a comma- or space-separated string or a JSON array.
type scopeList []string

func (l *scopeList) UnmarshalJSON(b []byte) error {
	var parts []string
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
	} else {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			if string(b) == "null" {
				return nil
			}
			return err
		}
		parts = strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	*l = (*l)[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// EnvAllowLoopback names the environment variable that, set to "true", makes every Client of
// this package and of pdapi accept a loopback api_domain (see APIDomainPolicy). The local
// stack (internal/localstack) and the tests set it, for the simulator on 127.0.0.1;
// template.yaml never does, so the deployed functions accept Pipedrive hosts only.
const EnvAllowLoopback = "PIPEDRIVE_ALLOW_LOOPBACK"

// LoopbackAllowedByEnv reports whether EnvAllowLoopback is "true" in the process environment.
func LoopbackAllowedByEnv() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvAllowLoopback))
	return v
}

// pipedriveSuffix is what every api_domain host Pipedrive hands out ends with
// ("https://acme.pipedrive.com").
const pipedriveSuffix = ".pipedrive.com"

// APIDomainPolicy decides which api_domain values an access token may be sent to. The zero
// value is the production policy: https to a host under pipedrive.com, on port 443 or none.
type APIDomainPolicy struct {
	// AllowLoopback also accepts http or https on 127.0.0.1, ::1 or localhost, any port: the
	// Pipedrive simulator in tests and the local stack. Never set in the deployed functions.
	AllowLoopback bool
}

// ValidateAPIDomain is APIDomainPolicy{}.Validate: Pipedrive hosts only.
func ValidateAPIDomain(raw string) (string, error) { return APIDomainPolicy{}.Validate(raw) }

// Validate checks that raw is a base URL an access token may be sent to and returns it
// without a trailing slash. Accepted: https://<name>.pipedrive.com with port 443 or none
// (the host's suffix is matched exactly on the parsed host, so
// "https://acme.pipedrive.com.attacker.io" and "https://acme-pipedrive.com" fail), with an
// optional "/" path; and, with AllowLoopback, http(s) to a loopback name. Rejected: other
// hosts and schemes, other ports, user info, a path, query or fragment. The error wraps
// ErrUntrustedAPIDomain.
func (p APIDomainPolicy) Validate(raw string) (string, error) {
	fail := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrUntrustedAPIDomain, why)
	}
	if raw == "" {
		return fail("empty")
	}
	if len(raw) > 253+len("https://:65535/") {
		return fail("too long")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fail("not a URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "" {
		return fail("user info, query or fragment")
	}
	if u.Path != "" && u.Path != "/" {
		return fail("has a path")
	}
	host := u.Hostname()
	if host == "" {
		return fail("no host")
	}
	if p.AllowLoopback && isLoopback(host) && (u.Scheme == "http" || u.Scheme == "https") {
		return u.Scheme + "://" + u.Host, nil
	}
	if u.Scheme != "https" {
		return fail(fmt.Sprintf("scheme %q", u.Scheme))
	}
	if port := u.Port(); port != "" && port != "443" {
		return fail(fmt.Sprintf("port %q", port))
	}
	// Hostname keeps the case and a trailing dot as given: compare the canonical form, and
	// require one non-empty label of letters, digits and hyphens before the suffix.
	h := strings.ToLower(host)
	label, ok := strings.CutSuffix(h, pipedriveSuffix)
	if !ok || !validLabels(label) {
		return fail(fmt.Sprintf("host %q is not under pipedrive.com", host))
	}
	return "https://" + h + portSuffix(u.Port()), nil
}

// validLabels reports whether s is one or more dot-separated DNS labels (letters, digits,
// hyphens; not starting or ending with a hyphen).
func validLabels(s string) bool {
	if s == "" {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func portSuffix(port string) string {
	if port == "" {
		return ""
	}
	return ":" + port
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}

// CheckBaseURL refuses an OAuth server URL that would carry the client secret and the tokens
// in clear: it must be https (with a host, no user info, query or fragment). Plain http is
// accepted only for a loopback host (the simulator) and only with allowLoopback (the local
// flag, EnvAllowLoopback).
func CheckBaseURL(raw string, allowLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("pdoauth: OAuth URL %q: want https://host, e.g. %s", raw, DefaultBaseURL)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopback && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return fmt.Errorf("pdoauth: OAuth URL %q: plain http only for a loopback simulator with %s=true", raw, EnvAllowLoopback)
	}
	return fmt.Errorf("pdoauth: OAuth URL %q: must be https: the client secret and the tokens must never travel in clear", raw)
}
