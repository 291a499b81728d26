package pderrors

import (
	"net/http"
	"time"
)

// maxHintSeconds saturates parsed delta-seconds well above MaxRetryAfter and well below the
// point where a time.Duration overflows.
const maxHintSeconds = 1 << 32

// waitHint returns the server's wait hint from the headers, capped at MaxRetryAfter, and the
// uncapped Retry-After alone (for the daily-budget rule). The hint is the larger of:
//   - Retry-After as delta-seconds, or as an HTTP-date measured from the response's own Date
//     header (the package has no clock; an HTTP-date without a usable Date header gives no hint);
//   - x-ratelimit-reset, seconds until Pipedrive's rate window resets.
//
// A negative, unparsable or past value gives no hint. It allocates nothing for a nil header.
func waitHint(h http.Header) (hint, retryAfter time.Duration) {
	if len(h) == 0 {
		return 0, 0
	}
	retryAfter = parseRetryAfter(headerValue(h, "Retry-After"), headerValue(h, "Date"))
	reset, _ := parseSeconds(headerValue(h, "X-Ratelimit-Reset"))
	return capHint(max(retryAfter, reset)), retryAfter
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date
// made relative by the response's Date value. It returns 0 for anything else.
func parseRetryAfter(v, date string) time.Duration {
	if v == "" {
		return 0
	}
	if d, ok := parseSeconds(v); ok {
		return d
	}
	if date == "" {
		return 0
	}
	at, err := http.ParseTime(trimSpace(v))
	if err != nil {
		return 0
	}
	now, err := http.ParseTime(trimSpace(date))
	if err != nil {
		return 0
	}
	return max(at.Sub(now), 0)
}

// parseSeconds reads non-negative decimal seconds, "7" or "1.5", surrounded by optional white
// space. Values beyond maxHintSeconds saturate. A sign, an exponent or any other character
// makes it fail.
func parseSeconds(v string) (time.Duration, bool) {
	v = trimSpace(v)
	var secs, nanos int64
	i := 0
	for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
		secs = min(secs*10+int64(v[i]-'0'), maxHintSeconds)
	}
	if i == 0 {
		return 0, false
	}
	if i < len(v) && v[i] == '.' {
		i++
		scale := int64(time.Second)
		for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
			scale /= 10
			nanos += int64(v[i]-'0') * scale
		}
	}
	if i != len(v) {
		return 0, false
	}
	return time.Duration(secs)*time.Second + time.Duration(nanos), true
}

// capHint keeps a hint within [0, MaxRetryAfter].
func capHint(d time.Duration) time.Duration {
	return min(max(d, 0), MaxRetryAfter)
}

// trimSpace trims ASCII white space, the only kind a header value carries.
func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
