package budget

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestBounds(t *testing.T) {
	t.Parallel()
	paris := mustZone(t, "Europe/Paris")
	tokyo := mustZone(t, "Asia/Tokyo")
	ny := mustZone(t, "America/New_York")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name       string
		period     Period
		loc        *time.Location
		at         time.Time
		start, end string // RFC3339 in UTC
	}{
		{"month end in January", PeriodMonthly, time.UTC, utc("2026-01-31T23:59:59Z"), "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"leap February", PeriodMonthly, time.UTC, utc("2028-02-29T12:00:00Z"), "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		{"December rolls the year", PeriodMonthly, time.UTC, utc("2026-12-31T23:00:00Z"), "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"already April in Paris", PeriodMonthly, paris, utc("2026-03-31T22:30:00Z"), "2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z"},
		{"still March in New York", PeriodMonthly, ny, utc("2026-04-01T02:00:00Z"), "2026-03-01T05:00:00Z", "2026-04-01T04:00:00Z"},
		{"Tokyo day", PeriodDaily, tokyo, utc("2026-05-10T16:00:00Z"), "2026-05-10T15:00:00Z", "2026-05-11T15:00:00Z"},
		{"23-hour DST day", PeriodDaily, paris, utc("2026-03-29T12:00:00Z"), "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		{"week starts Monday", PeriodWeekly, time.UTC, utc("2026-11-29T23:00:00Z"), "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"},
		{"Monday itself", PeriodWeekly, time.UTC, utc("2026-11-30T00:00:00Z"), "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"},
		{"week across a month end", PeriodWeekly, paris, utc("2026-04-01T10:00:00Z"), "2026-03-29T22:00:00Z", "2026-04-05T22:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start, end := Bounds(tc.period, tc.loc, tc.at)
			require.Equal(t, tc.start, start.UTC().Format(time.RFC3339))
			require.Equal(t, tc.end, end.UTC().Format(time.RFC3339))
			require.False(t, tc.at.Before(start))
			require.True(t, tc.at.Before(end))
		})
	}
	start, end := Bounds(PeriodLifetime, paris, utc("2026-06-01T00:00:00Z"))
	require.Equal(t, int64(0), start.Unix())
	require.True(t, end.IsZero())
}

func TestRollKeepsHeldMoney(t *testing.T) {
	t.Parallel()
	b := Budget{Period: PeriodMonthly, TimeZone: "Europe/Paris", Limit: 100, Spent: 70, Reserved: 20, FiredPercent: 50, HardStopped: true}
	jan := time.Date(2026, 1, 31, 23, 0, 0, 0, mustZone(t, "Europe/Paris"))
	b.PeriodStart, _ = b.bounds(jan)
	require.False(t, b.roll(jan.Add(59*time.Minute)), "still January in Paris")
	require.True(t, b.roll(jan.Add(61*time.Minute)), "February in Paris")
	require.Equal(t, int64(0), b.Spent)
	require.Equal(t, int64(20), b.Reserved)
	require.Equal(t, int32(0), b.FiredPercent)
	require.False(t, b.HardStopped)
	require.False(t, b.roll(jan.Add(2*time.Hour)))
}
