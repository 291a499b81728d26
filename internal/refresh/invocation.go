package refresh

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/pdkit/pipedrive-lambda-kit/internal/installation"
)

// The modes of an Invocation.
const (
	// ModeSchedule: the scheduler's call (any payload that is not one of the others, {} or
	// empty): refresh everything due, in every shard.
	ModeSchedule = "schedule"
	// ModeShard: {"shard":n}, what a fanning-out run sends: refresh what is due in shard n.
	ModeShard = "shard"
	// ModeManual: {"company_id":…,"user_id":…,"force":…}: refresh one installation now.
	ModeManual = "manual"
)

// Invocation is what the refresher function was asked to do.
type Invocation struct {
	Mode  string
	Shard int             // ModeShard
	ID    installation.ID // ModeManual
	Force bool            // ModeManual
}

// ParseInvocation reads the refresher function's payload. An input holding company_id,
// user_id or force is a manual invocation: both ids are required (positive integers, as
// numbers or strings; installation.ParseNumber), force is optional (default false), and
// nothing else is accepted. {"shard":n} needs a non-negative integer. Malformed input is an
// *InputError; it never quotes more of the input than a field name.
func ParseInvocation(in json.RawMessage) (Invocation, error) {
	shard, isShard, err := parseShard(in)
	switch {
	case err != nil:
		return Invocation{Mode: ModeShard}, err
	case isShard:
		return Invocation{Mode: ModeShard, Shard: shard}, nil
	}
	manual, id, force, err := parseInput(in)
	if !manual {
		return Invocation{Mode: ModeSchedule}, err
	}
	return Invocation{Mode: ModeManual, ID: id, Force: force}, err
}

// ErrBadInput matches (errors.Is) every *InputError.
var ErrBadInput = errors.New("refresher: malformed input")

// InputError is returned for a malformed manual invocation; Lambda reports its errorType as
// "InputError". Problem never quotes more of the input than a field name.
type InputError struct{ Problem string }

// Error describes the problem; it quotes no input beyond a field name.
func (e *InputError) Error() string { return "refresher: malformed input: " + e.Problem }

// Is makes errors.Is(err, ErrBadInput) true.
func (e *InputError) Is(target error) bool { return target == ErrBadInput }

// ShardPayload is the payload of a fanned-out invocation over shard, {"shard":n}: what
// ParseInvocation reads as ModeShard.
func ShardPayload(shard int) ([]byte, error) { return json.Marshal(shardInput{Shard: &shard}) }

// shardInput is a fanned-out invocation: {"shard":n}.
type shardInput struct {
	Shard *int `json:"shard"`
}

// manualInput is a manual invocation: {"company_id":…,"user_id":…,"force":true}.
type manualInput struct {
	CompanyID json.RawMessage `json:"company_id"`
	UserID    json.RawMessage `json:"user_id"`
	Force     *bool           `json:"force"`
}

// parseShard recognises a fanned-out invocation, {"shard":n} and nothing else; n must be a
// non-negative integer.
func parseShard(in json.RawMessage) (shard int, ok bool, err error) {
	in = bytes.TrimSpace(in)
	var keys map[string]json.RawMessage
	if len(in) == 0 || in[0] != '{' || json.Unmarshal(in, &keys) != nil {
		return 0, false, nil
	}
	if _, has := keys["shard"]; !has {
		return 0, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.DisallowUnknownFields()
	var m shardInput
	if err := dec.Decode(&m); err != nil || m.Shard == nil || *m.Shard < 0 {
		return 0, true, &InputError{Problem: `want {"shard":<non-negative integer>}`}
	}
	return *m.Shard, true, nil
}

// parseInput tells a manual invocation from the scheduler's and validates the former.
func parseInput(in json.RawMessage) (manual bool, id installation.ID, force bool, err error) {
	in = bytes.TrimSpace(in)
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return false, id, false, nil
	}
	if !json.Valid(in) {
		return false, id, false, &InputError{Problem: "not JSON"}
	}
	var keys map[string]json.RawMessage
	if in[0] != '{' || json.Unmarshal(in, &keys) != nil {
		return false, id, false, nil // a scheduler payload that is not an object
	}
	_, hasCompany := keys["company_id"]
	_, hasUser := keys["user_id"]
	_, hasForce := keys["force"]
	if !hasCompany && !hasUser && !hasForce {
		return false, id, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.DisallowUnknownFields()
	var m manualInput
	if err := dec.Decode(&m); err != nil {
		return true, id, false, &InputError{Problem: `want {"company_id":<id>,"user_id":<id>,"force":<bool>}: ` + err.Error()}
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int64
	}{{"company_id", m.CompanyID, &id.CompanyID}, {"user_id", m.UserID, &id.UserID}} {
		if *f.dst, err = installation.ParseNumber(f.raw); err != nil {
			// The field's name, never its value.
			problem := f.name + " must be a positive integer"
			if errors.Is(err, installation.ErrIDMissing) {
				problem = f.name + " is required"
			}
			return true, installation.ID{}, false, &InputError{Problem: problem}
		}
	}
	return true, id, m.Force != nil && *m.Force, nil
}
