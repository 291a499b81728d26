package installation

import "errors"

// Domain errors: what a store of installations reports when the caller can act on the outcome.
// They live here, not in the DynamoDB adapter, so that logic which branches on them
// (internal/refresh, the functions) depends on the domain only; internal/tokenstore returns
// them wrapped and re-exports them under its own names. Test with errors.Is.
var (
	// ErrNotFound: no installation (or record) with that key exists.
	ErrNotFound = errors.New("installation: not found")
	// ErrConflict: the installation changed since the caller read it (version mismatch).
	ErrConflict = errors.New("installation: version conflict")
	// ErrLeaseLost: the caller does not hold the refresh lease: it expired and another owner
	// took it (or nobody holds it). errors.Is(ErrLeaseLost, ErrConflict) is true.
	ErrLeaseLost error = &conflictError{"installation: lease lost to another owner"}
	// ErrLeaseHeld: another owner holds an unexpired refresh lease.
	ErrLeaseHeld = errors.New("installation: lease held by another owner")
	// ErrNotActive: the installation needs reauthorization or was uninstalled.
	ErrNotActive = errors.New("installation: not active")
	// ErrTokenInClear: a token attribute is stored in clear (planted by someone who can write
	// the table, or written before encryption) and the store refuses such tokens.
	ErrTokenInClear = errors.New("installation: token stored in clear")
)

// conflictError is a sentinel that also matches ErrConflict.
type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrConflict }
