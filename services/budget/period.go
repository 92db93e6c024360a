package budget

import (
	"sync"
	"time"
)

// lifetimeStart is the start of every LIFETIME period.
var lifetimeStart = time.Unix(0, 0).UTC()

// Bounds returns the period of kind p that contains t, computed in loc:
// days start at local midnight, weeks on Monday, months on the first. end is
// zero for LIFETIME. Daylight-saving days are 23 or 25 hours long.
func Bounds(p Period, loc *time.Location, t time.Time) (start, end time.Time) {
	lt := t.In(loc)
	y, m, d := lt.Date()
	switch p {
	case PeriodDaily:
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case PeriodWeekly:
		back := (int(lt.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case PeriodMonthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	default:
		return lifetimeStart, time.Time{}
	}
}

var zones sync.Map // name -> *time.Location

// loadZone loads an IANA zone once and caches it.
func loadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, l)
	return l, nil
}

// bounds returns b's period containing t.
func (b *Budget) bounds(t time.Time) (time.Time, time.Time) {
	loc, err := loadZone(b.TimeZone)
	if err != nil {
		loc = time.UTC // validated on write; a zone removed from tzdata falls back to UTC
	}
	return Bounds(b.Period, loc, t)
}

// roll moves b into the period containing now, starting its counters again.
// Held money stays held. It reports whether anything changed.
func (b *Budget) roll(now time.Time) bool {
	start, _ := b.bounds(now)
	if micros(start) <= micros(b.PeriodStart) {
		return false
	}
	b.PeriodStart = start
	b.Spent = 0
	b.FiredPercent = 0
	b.HardStopped = false
	return true
}
