package pdsim

import (
	"time"

	"github.com/pdkit/pipedrive-lambda-kit/internal/fakeclock"
)

// Clock is a fake clock for tests (see fakeclock.Clock): it stands still until Advance or Set
// moves it. Pass its Now method as Config.Now. It is safe for concurrent use; build one with
// NewClock.
type Clock = fakeclock.Clock

// NewClock returns a Clock reading t.
func NewClock(t time.Time) *Clock {
	return fakeclock.New(t)
}
