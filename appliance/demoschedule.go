package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/masterdata"
)

// demoFees are the demo hospital's online consultation fees (fen) per doctor
// title: 图文, 语音, 视频. Real hospitals set theirs on 在线问诊设置 under the
// province's price list; these are in the usual range of such lists.
var demoFees = map[string][3]int64{
	"主任医师":  {5000, 6000, 8000},
	"副主任医师": {3000, 4000, 5000},
	"主治医师":  {2000, 2500, 3000},
	"住院医师":  {1000, 1500, 2000},
}

// demoScheduleDays is how many days ahead, today included, the demo doctors'
// sittings are kept: every demo start tops them up, so `make run` can be
// booked on any day it is started.
const demoScheduleDays = 7

// seedDemoConsultation writes the demo's 在线问诊设置 (fees and minutes per
// title) and a hospital-wide 放号规则 (released 7 days ahead at 00:00, 5
// patients per slot). First demo start only.
func seedDemoConsultation(ctx context.Context, s *admin.Store) error {
	settings, _ := s.Resource("consultation_settings")
	for _, title := range []string{"主任医师", "副主任医师", "主治医师", "住院医师"} {
		fees := demoFees[title]
		rec := admin.Record{"title": title}
		for i, vt := range masterdata.VisitTypes {
			rec[vt+"_enabled"] = true
			rec[vt+"_fee"] = fees[i]
			rec[vt+"_minutes"] = int64(30)
		}
		if _, err := s.Create(ctx, settings, rec); err != nil {
			return fmt.Errorf("consultation settings %s: %w", title, err)
		}
	}
	rules, _ := s.Resource("release_rules")
	if _, err := s.Create(ctx, rules, admin.Record{"days_ahead": int64(demoScheduleDays), "release_time": "00:00", "quota": int64(5)}); err != nil {
		return fmt.Errorf("release rule: %w", err)
	}
	return nil
}

// demoSittings keeps the demo doctor's sittings (在线问诊排班) for today and
// the next days: 图文 all day, 视频 in the evening, so the demo can be booked
// and seen whenever it runs. Sittings already there are left alone.
func (a *App) demoSittings(ctx context.Context, jobNo string) {
	sys := asSystem(ctx)
	var staffID string
	if err := a.Node.DB.QueryRowContext(ctx, `SELECT id FROM staff WHERE job_no = ? AND deleted_at IS NULL`, jobNo).Scan(&staffID); err != nil {
		slog.WarnContext(ctx, "demo: no doctor for the demo sittings", "job_no", jobNo, "err", err)
		return
	}
	res, _ := a.Store.Resource("online_schedules")
	today := time.Now().In(ihos.Shanghai)
	for d := range demoScheduleDays {
		day := today.AddDate(0, 0, d).Format(time.DateOnly)
		// A slot is bookable until it starts and a sitting may be seen from
		// 15 minutes before it, so a sitting's last slot must start no
		// earlier than 15 minutes before the next sitting does: 15-minute
		// slots until 23:30, then six short ones until 23:59 (the next day's
		// sitting opens at 23:45). Some slot can then be booked and seen at
		// once at any time of day.
		for _, sit := range []struct {
			start, end, vt string
			minutes, count int64
		}{
			{"00:00", "23:30", masterdata.VisitText, 15, 0},
			{"23:30", "23:59", masterdata.VisitText, 0, 6},
			{"18:00", "21:00", masterdata.VisitVideo, 30, 0},
		} {
			var n int
			a.Node.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM online_schedules WHERE staff_id = ? AND visit_date = ? AND visit_type = ? AND start_time = ? AND deleted_at IS NULL`,
				staffID, day, sit.vt, sit.start).Scan(&n)
			if n > 0 {
				continue
			}
			rec := admin.Record{"staff_id": staffID, "visit_date": day, "start_time": sit.start,
				"end_time": sit.end, "visit_type": sit.vt, "note": "演示排班"}
			if sit.count > 0 {
				rec["slot_count"] = sit.count
			} else {
				rec["slot_minutes"] = sit.minutes
			}
			if _, err := a.Store.Create(sys, res, rec); err != nil {
				slog.WarnContext(ctx, "demo: sitting not created", "day", day, "err", err)
			}
		}
	}
}

// asSystem is ctx acting as the system with a system administrator's rights:
// what demo seeding writes through the generic store.
func asSystem(ctx context.Context) context.Context {
	return ihos.WithActor(ctx, ihos.Actor{UserID: ihos.System.UserID, Username: ihos.System.Username, Name: ihos.System.Name, Role: auth.RoleSysAdmin})
}
