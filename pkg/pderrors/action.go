package pderrors

import (
	"fmt"
	"strconv"
)

// actionNames are the stable, lower-case names of the actions, indexed by Action.
var actionNames = [...]string{
	Succeed:         "succeed",
	Retry:           "retry",
	RefreshAndRetry: "refresh_and_retry",
	Reauthorize:     "reauthorize",
	DeadLetter:      "dead_letter",
	Pause:           "pause",
}

// String returns the action's stable name ("succeed", "retry", "refresh_and_retry",
// "reauthorize", "dead_letter", "pause"), or "action(N)" for a value outside the defined set.
func (a Action) String() string {
	if a.Valid() {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Valid reports whether a is one of the defined actions.
func (a Action) Valid() bool {
	return a >= Succeed && a <= Pause
}

// MarshalText encodes the action as its String name, so JSON logs (slog's JSONHandler,
// encoding/json) show "retry" rather than 1. It fails for an invalid action.
func (a Action) MarshalText() ([]byte, error) {
	if !a.Valid() {
		return nil, fmt.Errorf("pderrors: marshal invalid %s", a)
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText decodes a name produced by MarshalText. It fails for any other text and then
// leaves a unchanged.
func (a *Action) UnmarshalText(text []byte) error {
	for i, name := range actionNames {
		if string(text) == name {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("pderrors: unknown action %q", text)
}
