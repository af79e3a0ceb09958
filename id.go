package ihos

import (
	"time"

	"github.com/google/uuid"
)

// NewID returns a new UUIDv7 as a string. IDs are made in the application, never by
// the database, so records created offline on the appliance and on the cloud never
// collide, and v7's time prefix keeps primary-key inserts append-mostly.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// TimeFormat is how times are stored: UTC, fixed width, so text order is time order
// on every database engine.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t for storage.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime parses a stored time.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeFormat, s) }

// Shanghai is the zone every time is shown in.
var Shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()
