package booking_test

import (
	"context"
	"fmt"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// standard sets up department d1 (内科) with doctor doc1 (主任医师, fees by
// title: text 20 元, voice 30 元, no video) and doctor doc2 (主治医师, free
// text, with a doctor-level override 15 元 text and 50 元 video), and no
// release rule (the default: 7 days ahead at 08:00, one patient per slot).
func standard(t testing.TB, db *sqldb.DB) *fixture {
	f := newFixture(t, db)
	f.department("d1", "NK", "内科")
	f.department("d2", "WK", "外科")
	f.doctor("doc1", "d1", "张三", "主任医师", "高血压、冠心病")
	f.doctor("doc2", "d1", "李四", "主治医师", "糖尿病")
	f.doctor("doc3", "d2", "王五", "主任医师", "骨折")
	f.titleFees("主任医师", 2000, 3000, -1)
	f.titleFees("主治医师", 0, -1, -1)
	f.doctorFees("doc2", 1500, -1, 5000)
	return f
}

func TestBookingRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		svc := f.svc
		text := f.schedule("doc1", "2026-12-03", "08:00", "09:00", "text", 15, 0)  // 4 slots
		voice := f.schedule("doc1", "2026-12-03", "14:00", "15:00", "voice", 0, 3) // 3 slots of 20 min
		video := f.schedule("doc1", "2026-12-03", "16:00", "17:00", "video", 30, 0)
		later := f.schedule("doc1", "2026-12-10", "08:00", "09:00", "text", 15, 0)
		today := f.schedule("doc1", "2026-12-01", "08:00", "12:00", "text", 60, 0)

		t.Run("a fee by title: awaiting payment", func(t *testing.T) {
			b, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p1", VisitType: "text"})
			if err != nil {
				t.Fatal(err)
			}
			want := time.Date(2026, 12, 3, 8, 15, 0, 0, ihos.Shanghai)
			if b.Status != booking.StatusAwaitingPayment || b.StatusLabel != "待支付" || b.Fee != 2000 || b.Minutes != 30 ||
				!b.StartAt.Equal(want) || !b.EndAt.Equal(want.Add(15*time.Minute)) || b.HospitalID != hosp || b.DepartmentID != "d1" {
				t.Fatalf("booking %+v", b)
			}
			got, err := svc.Get(ctx, b.ID)
			if err != nil || got.Status != b.Status || !got.StartAt.Equal(want) || got.VisitTypeLabel != "图文问诊" {
				t.Fatalf("get %+v %v", got, err)
			}
		})
		t.Run("slot count cuts equal slots", func(t *testing.T) {
			b, err := svc.Book(ctx, booking.Request{SlotID: slot(voice, 2), PatientID: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			if want := time.Date(2026, 12, 3, 14, 40, 0, 0, ihos.Shanghai); !b.StartAt.Equal(want) || b.Fee != 3000 || b.VisitType != "voice" {
				t.Fatalf("booking %+v", b)
			}
			_, err = svc.Book(ctx, booking.Request{SlotID: slot(voice, 3), PatientID: "p1"})
			refused(t, err, ihos.EInvalid, "该医生在此时间没有出诊安排")
		})
		t.Run("outside the schedule", func(t *testing.T) {
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 4), PatientID: "p2"})
			refused(t, err, ihos.EInvalid, "该医生在此时间没有出诊安排")
			_, err = svc.Book(ctx, booking.Request{SlotID: slot(ihos.NewID(), 0), PatientID: "p2"})
			refused(t, err, ihos.EInvalid, "该医生在此时间没有出诊安排")
			_, err = svc.Book(ctx, booking.Request{SlotID: "nonsense", PatientID: "p2"})
			refused(t, err, ihos.ENotFound, "号源不存在")
		})
		t.Run("visit type", func(t *testing.T) {
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(video, 0), PatientID: "p2"})
			refused(t, err, ihos.EConflict, "该医生未开通视频问诊")
			_, err = svc.Book(ctx, booking.Request{SlotID: slot(text, 2), PatientID: "p2", VisitType: "video"})
			refused(t, err, ihos.EInvalid, "该时段为图文问诊，不提供视频问诊")
		})
		t.Run("not yet released", func(t *testing.T) {
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(later, 0), PatientID: "p2"})
			refused(t, err, ihos.EConflict, "尚未放号，12 月 3 日 08:00 开放预约")
			f.now = time.Date(2026, 12, 3, 8, 0, 0, 0, ihos.Shanghai)
			defer func() { f.now = time.Date(2026, 12, 1, 10, 0, 0, 0, ihos.Shanghai) }()
			if _, err := svc.Book(ctx, booking.Request{SlotID: slot(later, 0), PatientID: "p2"}); err != nil {
				t.Fatalf("at the release time: %v", err)
			}
		})
		t.Run("past", func(t *testing.T) {
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(today, 1), PatientID: "p2"}) // 09:00 < 10:00
			refused(t, err, ihos.EConflict, "该时段已过，请选择其他时段")
			if _, err := svc.Book(ctx, booking.Request{SlotID: slot(today, 3), PatientID: "p2"}); err != nil { // 11:00
				t.Fatal(err)
			}
		})
		t.Run("sold out, duplicate, cancel returns the unit", func(t *testing.T) {
			id := slot(text, 3)
			if _, err := svc.Book(ctx, booking.Request{SlotID: id, PatientID: "p3"}); err != nil {
				t.Fatal(err)
			}
			_, err := svc.Book(ctx, booking.Request{SlotID: id, PatientID: "p3"})
			refused(t, err, ihos.EConflict, "您已预约该时段，请勿重复预约")
			_, err = svc.Book(ctx, booking.Request{SlotID: id, PatientID: "p4"})
			refused(t, err, ihos.EConflict, "该时段已约满")
			bookings, err := svc.PatientBookings(ctx, "p3")
			if err != nil || len(bookings) != 1 {
				t.Fatalf("p3's bookings %v %v", bookings, err)
			}
			c, err := svc.Cancel(ctx, bookings[0].ID, "")
			if err != nil || c.Status != booking.StatusCancelled || c.StatusLabel != "已取消" || c.CancelReason != "患者取消" {
				t.Fatalf("cancel %+v %v", c, err)
			}
			if again, err := svc.Cancel(ctx, c.ID, ""); err != nil || again.Version != c.Version {
				t.Fatalf("second cancel %+v %v", again, err)
			}
			if counter, active, _ := svc.CountBooked(ctx, id); counter != 0 || active != 0 {
				t.Fatalf("after cancel: counter %d active %d", counter, active)
			}
			b, err := svc.Book(ctx, booking.Request{SlotID: id, PatientID: "p4"})
			if err != nil {
				t.Fatalf("the returned unit: %v", err)
			}
			// The same patient may book again after cancelling, once the unit is free.
			if _, err := svc.Cancel(ctx, b.ID, "改期"); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Book(ctx, booking.Request{SlotID: id, PatientID: "p3"}); err != nil {
				t.Fatalf("rebook after cancel: %v", err)
			}
		})
		t.Run("a cancelled visit that has begun", func(t *testing.T) {
			soon := f.schedule("doc1", "2026-12-01", "10:15", "10:45", "text", 30, 0)
			b, err := svc.Book(ctx, booking.Request{SlotID: slot(soon, 0), PatientID: "p5"})
			if err != nil {
				t.Fatal(err)
			}
			f.now = time.Date(2026, 12, 1, 10, 30, 0, 0, ihos.Shanghai)
			defer func() { f.now = time.Date(2026, 12, 1, 10, 0, 0, 0, ihos.Shanghai) }()
			_, err = svc.Cancel(ctx, b.ID, "")
			refused(t, err, ihos.EConflict, "就诊时间已过，不能取消预约")
		})
		t.Run("a disabled schedule", func(t *testing.T) {
			f.exec(`UPDATE online_schedules SET enabled = 0 WHERE id = ?`, text)
			defer f.exec(`UPDATE online_schedules SET enabled = 1 WHERE id = ?`, text)
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p6"})
			refused(t, err, ihos.EConflict, "该排班已停诊，暂不能预约")
		})
		t.Run("a doctor not online", func(t *testing.T) {
			f.exec(`UPDATE staff SET online = 0 WHERE id = 'doc1'`)
			defer f.exec(`UPDATE staff SET online = 1 WHERE id = 'doc1'`)
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p6"})
			refused(t, err, ihos.EConflict, "该医生暂未开通互联网诊疗")
		})
		t.Run("bad input", func(t *testing.T) {
			_, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 0)})
			if e, ok := err.(*ihos.Error); !ok || e.Code != ihos.EInvalid || e.Fields["patient_id"] != "请选择就诊人" {
				t.Fatalf("no patient: %v", err)
			}
			_, err = svc.Cancel(ctx, ihos.NewID(), "")
			refused(t, err, ihos.ENotFound, "预约不存在")
		})
	})
}

func TestFeesAndRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		svc := f.svc
		// doc2's own row (15 元 text, video 50 元) beats 主治医师's (free text).
		text := f.schedule("doc2", "2026-12-03", "08:00", "09:00", "text", 30, 0)
		video := f.schedule("doc2", "2026-12-03", "10:00", "11:00", "video", 30, 0)
		b, err := svc.Book(ctx, booking.Request{SlotID: slot(text, 0), PatientID: "p1"})
		if err != nil || b.Fee != 1500 || b.Status != booking.StatusAwaitingPayment {
			t.Fatalf("doctor override: %+v %v", b, err)
		}
		if b, err = svc.Book(ctx, booking.Request{SlotID: slot(video, 0), PatientID: "p1"}); err != nil || b.Fee != 5000 || b.Minutes != 20 {
			t.Fatalf("video: %+v %v", b, err)
		}
		// Without doc2's row the title's free text visit applies: booked at once.
		f.exec(`UPDATE consultation_settings SET enabled = 0 WHERE staff_id = 'doc2'`)
		if b, err = svc.Book(ctx, booking.Request{SlotID: slot(text, 1), PatientID: "p1"}); err != nil || b.Fee != 0 || b.Status != booking.StatusBooked || b.StatusLabel != "已预约" {
			t.Fatalf("title fee: %+v %v", b, err)
		}

		// A hospital rule (3 days ahead at 20:00, 2 per slot) and a department
		// rule for 外科 (1 day ahead at 07:30, 1 per slot).
		f.rule("", 3, "20:00", 2)
		f.rule("d2", 1, "07:30", 1)
		s4 := f.schedule("doc1", "2026-12-04", "08:00", "09:00", "text", 30, 0)
		_, err = svc.Book(ctx, booking.Request{SlotID: slot(s4, 0), PatientID: "p1"})
		refused(t, err, ihos.EConflict, "尚未放号，12 月 1 日 20:00 开放预约")
		f.now = time.Date(2026, 12, 1, 20, 0, 0, 0, ihos.Shanghai)
		for _, p := range []string{"p1", "p2"} {
			if _, err := svc.Book(ctx, booking.Request{SlotID: slot(s4, 0), PatientID: p}); err != nil {
				t.Fatalf("quota 2, %s: %v", p, err)
			}
		}
		_, err = svc.Book(ctx, booking.Request{SlotID: slot(s4, 0), PatientID: "p3"})
		refused(t, err, ihos.EConflict, "该时段已约满")
		s3 := f.schedule("doc3", "2026-12-03", "08:00", "09:00", "text", 30, 0)
		_, err = svc.Book(ctx, booking.Request{SlotID: slot(s3, 0), PatientID: "p1"})
		refused(t, err, ihos.EConflict, "尚未放号，12 月 2 日 07:30 开放预约")
		f.now = time.Date(2026, 12, 2, 7, 30, 0, 0, ihos.Shanghai)
		if _, err := svc.Book(ctx, booking.Request{SlotID: slot(s3, 0), PatientID: "p1"}); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Book(ctx, booking.Request{SlotID: slot(s3, 0), PatientID: "p2"})
		refused(t, err, ihos.EConflict, "该时段已约满")
	})
}

// TestConcurrentBooking races many patients for few slots through the
// service: every unit is sold once, the rest are told the slot is full, and
// the counters agree with the bookings.
func TestConcurrentBooking(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		f.rule("", 7, "08:00", 2)
		sched := f.schedule("doc1", "2026-12-03", "08:00", "09:40", "text", 10, 0) // 10 slots × 2
		var (
			wg     stdsync.WaitGroup
			mu     stdsync.Mutex
			booked int
			full   int
			other  []error
		)
		start := make(chan struct{})
		for i := range 300 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Every patient tries twice, the second time a duplicate or full.
				for range 2 {
					_, err := f.svc.Book(ctx, booking.Request{SlotID: slot(sched, i%10), PatientID: fmt.Sprintf("p%d", i)})
					mu.Lock()
					switch e, _ := err.(*ihos.Error); {
					case err == nil:
						booked++
					case e != nil && (e.Message == "该时段已约满" || e.Message == "您已预约该时段，请勿重复预约"):
						full++
					default:
						other = append(other, err)
					}
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if booked != 20 || len(other) > 0 {
			t.Fatalf("booked %d, refused %d, errors %v", booked, full, other)
		}
		for i := range 10 {
			if counter, active, err := f.svc.CountBooked(ctx, slot(sched, i)); err != nil || counter != 2 || active != 2 {
				t.Fatalf("slot %d: counter %d active %d %v", i, counter, active, err)
			}
		}
	})
}

func TestDoctorDirectory(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		svc := f.svc
		f.exec(`INSERT INTO doctor_profiles (id, hospital_id, staff_id, intro, specialty, notice, accepting, enabled, version, created_at, updated_at)
			VALUES (?, ?, 'doc1', '从医三十年', '高血压、心力衰竭', '请上传近期检查', 1, 1, 1, ?, ?)`, ihos.NewID(), hosp, stamp(), stamp())
		s1 := f.schedule("doc1", "2026-12-03", "08:00", "09:00", "text", 30, 0)
		f.schedule("doc1", "2026-12-20", "08:00", "09:00", "text", 30, 0)  // not released: not a next slot
		f.schedule("doc1", "2026-12-03", "10:00", "11:00", "video", 30, 0) // video not offered to 主任医师
		if _, err := svc.Book(ctx, booking.Request{SlotID: slot(s1, 0), PatientID: "p1"}); err != nil {
			t.Fatal(err)
		}

		page, err := svc.Doctors(ctx, booking.DoctorQuery{})
		if err != nil || page.Total != 3 || len(page.Items) != 3 {
			t.Fatalf("all: %+v %v", page, err)
		}
		names := func(q booking.DoctorQuery) []string {
			t.Helper()
			p, err := svc.Doctors(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range p.Items {
				out = append(out, d.Name)
			}
			return out
		}
		for _, c := range []struct {
			q    booking.DoctorQuery
			want string
		}{
			{booking.DoctorQuery{Department: "d1"}, "[张三 李四]"},
			{booking.DoctorQuery{Department: "WK"}, "[王五]"},
			{booking.DoctorQuery{Title: "主任医师"}, "[张三 王五]"},
			{booking.DoctorQuery{Q: "心力"}, "[张三]"}, // the profile's expertise
			{booking.DoctorQuery{Q: "糖尿"}, "[李四]"}, // the staff record's
			{booking.DoctorQuery{Q: "李"}, "[李四]"},  // the name
			{booking.DoctorQuery{Q: "100%"}, "[]"}, // wildcards are literal
			{booking.DoctorQuery{Sort: "consultations", Title: "主任医师"}, "[张三 王五]"},
			{booking.DoctorQuery{HospitalID: "other"}, "[]"},
		} {
			if got := fmt.Sprint(names(c.q)); got != c.want {
				t.Errorf("%+v: %s, want %s", c.q, got, c.want)
			}
		}
		f.exec(`UPDATE staff SET online = 0 WHERE id = 'doc3'`)
		if got := fmt.Sprint(names(booking.DoctorQuery{})); got != "[张三 李四]" {
			t.Errorf("doc3 offline: %s", got)
		}

		d, err := svc.Doctor(ctx, "doc1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Specialty != "高血压、心力衰竭" || d.Intro != "从医三十年" || d.Notice != "请上传近期检查" || d.DepartmentName != "内科" || d.Consultations != 1 {
			t.Fatalf("homepage %+v", d)
		}
		if fmt.Sprint(d.Fees) != "[{text 图文问诊 2000 20.00 30} {voice 语音问诊 3000 30.00 15}]" {
			t.Fatalf("fees %v", d.Fees)
		}
		// One free slot left on 12-03 (08:30); the 12-20 ones are not released,
		// the video ones not offered.
		if len(d.NextSlots) != 1 || d.NextSlots[0].ID != slot(s1, 1) || d.NextSlots[0].Label != "12月3日 08:30-09:00" {
			t.Fatalf("next slots %+v", d.NextSlots)
		}
		if _, err := svc.Doctor(ctx, "doc3"); err == nil {
			t.Fatal("an offline doctor's homepage")
		}

		slots, err := svc.Slots(ctx, "doc1", "2026-12-03")
		if err != nil || len(slots) != 4 {
			t.Fatalf("slots %+v %v", slots, err)
		}
		if slots[0].Status != booking.SlotFull || slots[0].Message != "该时段已约满" || slots[1].Status != booking.SlotAvailable || slots[1].Remaining != 1 {
			t.Fatalf("slots %+v", slots[:2])
		}
		slots, err = svc.Slots(ctx, "doc1", "2026-12-20")
		if err != nil || len(slots) != 2 || slots[0].Status != booking.SlotNotReleased || slots[0].Message != "尚未放号，12 月 13 日 08:00 开放预约" {
			t.Fatalf("unreleased slots %+v %v", slots, err)
		}
		_, err = svc.Slots(ctx, "doc1", "12/20")
		if e, ok := err.(*ihos.Error); !ok || e.Fields["date"] == "" {
			t.Fatalf("bad date: %v", err)
		}
	})
}

// TestConcurrentCancel returns a cancelled booking's unit exactly once,
// however many cancels race.
func TestConcurrentCancel(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		f := standard(t, db)
		f.rule("", 7, "08:00", 2)
		sched := f.schedule("doc1", "2026-12-03", "08:00", "08:30", "text", 30, 0)
		first, err := f.svc.Book(ctx, booking.Request{SlotID: slot(sched, 0), PatientID: "p1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Book(ctx, booking.Request{SlotID: slot(sched, 0), PatientID: "p2"}); err != nil {
			t.Fatal(err)
		}
		var wg stdsync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := f.svc.Cancel(ctx, first.ID, "")
				if err == nil && b.Status != booking.StatusCancelled {
					err = fmt.Errorf("status %s", b.Status)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if counter, active, err := f.svc.CountBooked(ctx, slot(sched, 0)); err != nil || counter != 1 || active != 1 {
			t.Fatalf("counter %d active %d %v", counter, active, err)
		}
		var version int64
		if err := db.QueryRow(`SELECT version FROM bookings WHERE id = ?`, first.ID).Scan(&version); err != nil || version != 2 {
			t.Fatalf("version %d %v", version, err)
		}
	})
}
