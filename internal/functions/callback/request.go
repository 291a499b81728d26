package callback

import (
	"errors"

	"github.com/pdkit/pipedrive-lambda-kit/internal/oauthstate"
)

// stateReason names a state verification failure for the log.
func stateReason(err error) string {
	switch {
	case errors.Is(err, oauthstate.ErrStateExpired):
		return "state_expired"
	case errors.Is(err, oauthstate.ErrStateForged):
		return "state_forged"
	case errors.Is(err, oauthstate.ErrStateUnbound):
		return "state_unbound"
	}
	return "state_malformed"
}
