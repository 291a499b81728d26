package pdsim

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"time"
)

// changeWindow is the v2 list parameters that select and order by change time: updated_since
// and updated_until (RFC 3339; "update_time >= since" and "update_time < until"), sort_by (id,
// update_time or add_time; default id) and sort_direction (asc or desc; default asc), as the
// v2 list endpoints of deals, persons, organizations and activities document them.
type changeWindow struct {
	since, until time.Time
	sortBy       string
	desc         bool
}

// parseChangeWindow reads the change-window parameters of a v2 list request. An error is the
// 400 message.
func parseChangeWindow(r *http.Request) (changeWindow, error) {
	q := r.URL.Query()
	var c changeWindow
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"updated_since", &c.since}, {"updated_until", &c.until}} {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return changeWindow{}, errors.New(p.name + " must be an RFC 3339 date-time")
		}
		*p.dst = t
	}
	switch c.sortBy = q.Get("sort_by"); c.sortBy {
	case "", "id", "update_time", "add_time":
	default:
		return changeWindow{}, errors.New("sort_by must be one of id, update_time, add_time")
	}
	switch q.Get("sort_direction") {
	case "", "asc":
	case "desc":
		c.desc = true
	default:
		return changeWindow{}, errors.New("sort_direction must be asc or desc")
	}
	return c, nil
}

// has reports whether r's update_time lies in the window. The API shows times to the second,
// so the comparison is on whole seconds, as a client sending a time it read back would expect.
func (c changeWindow) has(r *record) bool {
	u := r.updateTime.Truncate(time.Second)
	return (c.since.IsZero() || !u.Before(c.since)) && (c.until.IsZero() || u.Before(c.until))
}

// sortRecords orders xs (already by id) by the window's sort_by and sort_direction, ties by id.
func sortRecords[P any](c changeWindow, xs []P, base func(P) *record) {
	key := func(r *record) time.Time {
		switch c.sortBy {
		case "update_time":
			return r.updateTime.Truncate(time.Second)
		case "add_time":
			return r.addTime.Truncate(time.Second)
		}
		return time.Time{}
	}
	slices.SortStableFunc(xs, func(a, b P) int {
		ra, rb := base(a), base(b)
		n := cmp.Or(key(ra).Compare(key(rb)), cmp.Compare(ra.id, rb.id))
		if c.desc {
			return -n
		}
		return n
	})
}
