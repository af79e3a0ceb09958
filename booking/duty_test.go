package booking_test

import (
	"context"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// A doctor accepts a booked visit only around the sitting of its slot:
// 15 minutes before it starts to 30 minutes after it ends, as the schedule
// stands at the time.
func TestCheckOnDuty(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		sched := f.schedule("doc1", "2026-12-03", "08:00", "09:00", "text", 15, 0)
		b, err := f.svc.Book(ctx, booking.Request{SlotID: slot(sched, 3), PatientID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		at := func(hhmm string) time.Time {
			tm, _ := time.ParseInLocation("2006-01-02 15:04", "2026-12-03 "+hhmm, ihos.Shanghai)
			return tm
		}
		for _, c := range []struct {
			now time.Time
			ok  bool
		}{
			{time.Date(2026, 12, 1, 10, 0, 0, 0, ihos.Shanghai), false}, // the day it was booked
			{at("07:44"), false},
			{at("07:45"), true}, // 15 minutes early
			{at("08:00"), true}, // a slot before the booked one: still the sitting
			{at("09:30"), true}, // 30 minutes over
			{at("09:31"), false},
		} {
			f.now = c.now
			err := f.svc.CheckOnDuty(ctx, b.ID)
			if c.ok && err != nil {
				t.Fatalf("at %s: %v", c.now, err)
			}
			if !c.ok {
				refused(t, err, ihos.EForbidden, "不在您的出诊时间内，不能接诊")
			}
		}
		// The sitting moved on the console: the new time applies at once.
		f.now = at("08:30")
		f.exec(`UPDATE online_schedules SET start_time = '14:00', end_time = '15:00' WHERE id = ?`, sched)
		refused(t, f.svc.CheckOnDuty(ctx, b.ID), ihos.EForbidden, "不在您的出诊时间内，不能接诊")
		// Stopped sittings and unknown bookings have no time at all.
		f.exec(`UPDATE online_schedules SET start_time = '08:00', end_time = '09:00', enabled = 0 WHERE id = ?`, sched)
		refused(t, f.svc.CheckOnDuty(ctx, b.ID), ihos.EForbidden, "不在您的出诊时间内，不能接诊")
		refused(t, f.svc.CheckOnDuty(ctx, "nope"), ihos.EForbidden, "不在您的出诊时间内，不能接诊")
	})
}
