package booking

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"ihos"
	"ihos/internal/masterdata"
)

// A doctor may not see patients outside their schedule (DESIGN §7): the
// visit of a booking is accepted only around the sitting its slot belongs
// to, from DutyEarly before the sitting starts (a doctor who logs in a
// little early) to DutyLate after it ends (a sitting that runs over).
const (
	DutyEarly = 15 * time.Minute
	DutyLate  = 30 * time.Minute
)

// msgOffDuty refuses accepting a visit outside the doctor's sitting.
const msgOffDuty = "不在您的出诊时间内，不能接诊"

// CheckOnDuty refuses, at the current time, a doctor accepting the visit of
// booking id outside the sitting (online schedule) the booking's slot
// belongs to, as the schedule stands now: a sitting moved or stopped on the
// console applies at once. A booking without a sitting (deleted, or no such
// booking) has no time the doctor may see it.
func (s *Service) CheckOnDuty(ctx context.Context, id string) error {
	var sched string
	err := s.row(ctx, `SELECT schedule_id FROM bookings WHERE id = ? AND deleted_at IS NULL`, id).Scan(&sched)
	if errors.Is(err, sql.ErrNoRows) {
		return ihos.Errorf(ihos.EForbidden, msgOffDuty)
	}
	if err != nil {
		return ihos.Internal(err)
	}
	sc, err := s.loadSchedule(ctx, sched)
	if err != nil {
		return ihos.Internal(err)
	}
	if sc == nil || !sc.Enabled {
		return ihos.Errorf(ihos.EForbidden, msgOffDuty)
	}
	day, err := time.ParseInLocation(time.DateOnly, sc.Date, ihos.Shanghai)
	from, ok1 := masterdata.ClockMinutes(sc.Start)
	to, ok2 := masterdata.ClockMinutes(sc.End)
	if err != nil || !ok1 || !ok2 {
		return ihos.Errorf(ihos.EForbidden, msgOffDuty)
	}
	start := day.Add(time.Duration(from)*time.Minute - DutyEarly)
	end := day.Add(time.Duration(to)*time.Minute + DutyLate)
	if now := s.now(); now.Before(start) || now.After(end) {
		return ihos.Errorf(ihos.EForbidden, msgOffDuty)
	}
	return nil
}
