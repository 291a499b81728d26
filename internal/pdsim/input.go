package pdsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxJSONBytes bounds API request bodies.
const maxJSONBytes = 1 << 20

// inputError is a 400 message for invalid input, worded as Pipedrive words it (capitalised,
// with a full stop), which is why it is not built with errors.New.
type inputError string

// Error returns the message.
func (e inputError) Error() string { return string(e) }

// input is a decoded request body: JSON values (numbers as json.Number) or form strings.
type input map[string]any

// readInput decodes a JSON object body, or a form body when the Content-Type says so (the v1
// API accepts both). An error is the 400 message to answer with.
func readInput(w http.ResponseWriter, r *http.Request) (input, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBytes)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" {
		if err := r.ParseForm(); err != nil {
			return nil, inputError("Invalid form body")
		}
		in := input{}
		for k, v := range r.PostForm {
			if len(v) > 0 {
				in[k] = v[0]
			}
		}
		return in, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, inputError("Request body too large or unreadable")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return input{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var in input
	if err := dec.Decode(&in); err != nil || in == nil {
		return nil, inputError("Invalid JSON in request body")
	}
	if dec.More() {
		return nil, inputError("Invalid JSON in request body")
	}
	return in, nil
}

// str returns a string field; present is false when the key is absent.
func (in input) str(key string) (v string, present bool, err error) {
	raw, ok := in[key]
	if !ok || raw == nil {
		return "", ok, nil
	}
	s, isStr := raw.(string)
	if !isStr {
		return "", true, fmt.Errorf("%s must be a string", key)
	}
	return s, true, nil
}

// num returns a number field, accepting numeric strings (form bodies).
func (in input) num(key string) (v float64, present bool, err error) {
	return number(in, key, "a number", func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil
	})
}

// id returns an integer id field; null clears it (present, 0).
func (in input) id(key string) (v int64, present bool, err error) {
	return number(in, key, "an integer", func(s string) (int64, bool) {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil && n >= 0
	})
}

// number returns the field key parsed by parse, from a JSON number or, as form bodies send
// it, a string; null is present with the zero value. Another type, or text parse rejects,
// is the error "<key> must be <what>".
func number[T any](in input, key, what string, parse func(string) (T, bool)) (v T, present bool, err error) {
	raw, ok := in[key]
	if !ok || raw == nil {
		return v, ok, nil
	}
	var s string
	switch x := raw.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return v, true, fmt.Errorf("%s must be %s", key, what)
	}
	n, ok := parse(s)
	if !ok {
		return v, true, fmt.Errorf("%s must be %s", key, what)
	}
	return n, true, nil
}

// contacts returns an email or phone list: a string, a list of strings, or a list of
// {value, primary, label} objects.
func (in input) contacts(key string) (v []contact, present bool, err error) {
	raw, ok := in[key]
	if !ok || raw == nil {
		return nil, ok, nil
	}
	bad := fmt.Errorf("%s must be a string or a list of {value, primary, label}", key)
	switch x := raw.(type) {
	case string:
		if x == "" {
			return nil, true, nil
		}
		return []contact{{Value: x, Primary: true, Label: "work"}}, true, nil
	case []any:
		out := make([]contact, 0, len(x))
		for i, item := range x {
			switch it := item.(type) {
			case string:
				out = append(out, contact{Value: it, Primary: i == 0, Label: "work"})
			case map[string]any:
				c := contact{Label: "work"}
				if s, ok := it["value"].(string); ok {
					c.Value = s
				} else {
					return nil, true, bad
				}
				if p, ok := it["primary"].(bool); ok {
					c.Primary = p
				}
				if l, ok := it["label"].(string); ok && l != "" {
					c.Label = l
				}
				out = append(out, c)
			default:
				return nil, true, bad
			}
		}
		return out, true, nil
	}
	return nil, true, bad
}

// pathID parses the {id} path value, answering 400 (v2: a validation error) when it is not a
// positive integer.
func pathID(w http.ResponseWriter, r *http.Request, v apiVersion) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeInputError(w, v, "id must be a positive integer")
		return 0, false
	}
	return id, true
}

// parsePage reads v1 start/limit or v2 cursor/limit. An error is the 400 message.
func parsePage(r *http.Request, v apiVersion) (start, limit int, err error) {
	q := r.URL.Query()
	limit = 100
	if s := q.Get("limit"); s != "" {
		n, convErr := strconv.Atoi(s)
		if convErr != nil || n < 1 || n > 500 {
			return 0, 0, errors.New("limit must be an integer between 1 and 500")
		}
		limit = n
	}
	if v == v1 {
		if s := q.Get("start"); s != "" {
			n, convErr := strconv.Atoi(s)
			if convErr != nil || n < 0 {
				return 0, 0, errors.New("start must be a non-negative integer")
			}
			start = n
		}
		return start, limit, nil
	}
	if c := q.Get("cursor"); c != "" {
		start, err = decodeCursor(c)
		if err != nil {
			return 0, 0, inputError("Invalid cursor")
		}
	}
	return start, limit, nil
}

// encodeCursor makes an opaque v2 cursor for an offset.
func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(offset)))
}

// decodeCursor reverses encodeCursor.
func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), "offset:")
	if !ok {
		return 0, errors.New("bad cursor")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("bad cursor")
	}
	return n, nil
}

// listBody renders a list answer with v1 pagination or a v2 cursor. v1 answers an empty list
// with data null, as Pipedrive does.
func listBody[T any](v apiVersion, items []T, start, limit int) map[string]any {
	end := min(start+limit, len(items))
	var slice []T
	if start < len(items) {
		slice = items[start:end]
	}
	more := end < len(items)
	if v == v1 {
		p := map[string]any{"start": start, "limit": limit, "more_items_in_collection": more}
		if more {
			p["next_start"] = end
		}
		var data any = slice
		if len(slice) == 0 {
			data = nil
		}
		return map[string]any{"success": true, "data": data, "additional_data": map[string]any{"pagination": p}}
	}
	var next any
	if more {
		next = encodeCursor(end)
	}
	if slice == nil {
		slice = []T{}
	}
	return map[string]any{"success": true, "data": slice, "additional_data": map[string]any{"next_cursor": next}}
}
