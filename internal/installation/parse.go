package installation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Problems ParseNumber reports; callers put the field's name in front ("company_id is …").
var (
	ErrIDMissing     = errors.New("is required")
	ErrIDNotNumber   = errors.New("is not a number or a string of digits")
	ErrIDNotPositive = errors.New("must be a positive integer")
)

// ParseNumber reads one Pipedrive id from JSON: a number (a whole one written as 123.0 or
// 1.23e5 too, as some senders do) or a string of digits. The result is positive; anything else
// (missing, null, fraction, zero, negative, object, overflow) is one of the ErrID… errors.
// Every entry point that takes ids from outside (uninstall body, manual refresher input,
// webhook meta) parses them here, so they accept the same inputs.
func ParseNumber(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, ErrIDMissing
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal([]byte(s), &s); err != nil {
			return 0, ErrIDNotNumber
		}
		s = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		switch {
		case ferr != nil || math.IsNaN(f) || math.IsInf(f, 0):
			return 0, ErrIDNotNumber
		case f != math.Trunc(f) || f < 1 || f > math.MaxInt64/2:
			return 0, ErrIDNotPositive
		}
		n = int64(f)
	}
	if n <= 0 {
		return 0, ErrIDNotPositive
	}
	return n, nil
}

// ParseID reads "COMPANY:USER", the form ID.String prints and every log line and alert uses.
func ParseID(s string) (ID, error) {
	c, u, ok := strings.Cut(strings.TrimSpace(s), ":")
	company, err1 := strconv.ParseInt(c, 10, 64)
	user, err2 := strconv.ParseInt(u, 10, 64)
	id := ID{CompanyID: company, UserID: user}
	if !ok || err1 != nil || err2 != nil || !id.Valid() {
		return ID{}, fmt.Errorf("%q is not COMPANY:USER (two positive numbers, e.g. 3408256:5206648)", s)
	}
	return id, nil
}
