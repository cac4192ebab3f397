package ondisk

import "time"

// FAT timestamps have no time zone: Windows, Linux's vfat and mtools all
// read and write them as local time. The conversions here take the zone
// explicitly; nil means time.Local (the tests run with TZ=UTC).
//
// Layout: a date is bits 15-9 year since 1980, 8-5 month, 4-0 day; a time is
// bits 15-11 hours, 10-5 minutes, 4-0 seconds/2; the creation time's extra
// byte counts 10 ms units, 0..199, adding the odd second and hundredths.

// Earliest and latest instants a FAT timestamp can hold (in its zone).
const (
	minFATYear = 1980
	maxFATYear = 2107
)

func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.Local
	}
	return loc
}

// EncodeTime converts t to a FAT date, time and 10 ms count (0..199) in
// zone loc. Instants before 1980 become 1980-01-01 00:00:00, after 2107 the
// last representable instant, 2107-12-31 23:59:59.99.
func EncodeTime(t time.Time, loc *time.Location) (date, tm uint16, cs uint8) {
	t = t.In(zone(loc))
	y := t.Year()
	switch {
	case y < minFATYear:
		return 0<<9 | 1<<5 | 1, 0, 0
	case y > maxFATYear:
		return (maxFATYear-minFATYear)<<9 | 12<<5 | 31, 23<<11 | 59<<5 | 29, 199
	}
	date = uint16(y-minFATYear)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	cs = uint8(t.Second()%2*100 + t.Nanosecond()/10_000_000)
	return date, tm, cs
}

// DecodeTime converts a FAT date, time and 10 ms count to a time in zone
// loc. Date 0 (never set) gives the zero time.Time. Out-of-range fields
// from a corrupt entry (month 0 or 13, second 62, cs 250) are clamped or
// carried over, never rejected.
func DecodeTime(date, tm uint16, cs uint8, loc *time.Location) time.Time {
	if date == 0 {
		return time.Time{}
	}
	month := max(min(int(date>>5&0x0F), 12), 1)
	day := max(int(date&0x1F), 1)
	if cs > 199 {
		cs = 0
	}
	sec := int(tm&0x1F)*2 + int(cs)/100
	return time.Date(minFATYear+int(date>>9), time.Month(month), day,
		int(tm>>11), int(tm>>5&0x3F), sec, int(cs)%100*10_000_000, zone(loc))
}
