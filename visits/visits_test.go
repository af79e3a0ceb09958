package visits_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/entities"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
	"ihos/visits"
)

var (
	patient  = visits.Party{Role: visits.RolePatient, ID: "P1"}
	patient2 = visits.Party{Role: visits.RolePatient, ID: "P2"}
	doctor   = visits.Party{Role: visits.RoleDoctor, ID: "D1"}
	doctor2  = visits.Party{Role: visits.RoleDoctor, ID: "D2"}
)

// newService returns a service on db with a real sync replica capturing its
// rows, and a hub.
func newService(t testing.TB, db *sqldb.DB) *visits.Service {
	t.Helper()
	ctx := context.Background()
	r, err := sync.NewReplica(ctx, db, sync.Cloud, "cloud", entities.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return &visits.Service{DB: db, Hub: visits.NewHub(), Dir: t.TempDir(),
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error { return r.Capture(ctx, tx, "", refs...) }}
}

var bookings int

// open opens a visit of patient P1 (or p) with doctor D1 (or d) booked at
// booked.
func open(t testing.TB, s *visits.Service, p, d visits.Party, booked time.Time) *visits.Visit {
	t.Helper()
	bookings++
	v, err := s.Open(context.Background(), visits.VisitSpec{HospitalID: "h1", BookingID: fmt.Sprintf("B%d-%d", time.Now().UnixNano(), bookings),
		PatientID: p.ID, DoctorID: d.ID, DepartmentID: "dep1", Type: visits.TypeText, BookedAt: booked})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// refused checks that err is an *ihos.Error with code and exactly msg.
func refused(t *testing.T, what string, err error, code, msg string) {
	t.Helper()
	if ihos.ErrorCode(err) != code || ihos.ErrorMessage(err) != msg {
		t.Errorf("%s: got %v, want %s %q", what, err, code, msg)
	}
}

func TestStateMachine(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		now := time.Now()
		v := open(t, s, patient, doctor, now)
		if v.Status != visits.StatusWaiting || v.StatusLabel != "候诊中" {
			t.Fatalf("opened: %+v", v)
		}
		// Opening the same booking again returns the visit.
		again, err := s.Open(ctx, visits.VisitSpec{HospitalID: "h1", BookingID: v.BookingID, PatientID: "P1", DoctorID: "D1", Type: visits.TypeText, BookedAt: now})
		if err != nil || again.ID != v.ID {
			t.Fatalf("reopen: %v %+v", err, again)
		}
		_, err = s.Open(ctx, visits.VisitSpec{HospitalID: "h1", BookingID: "x", PatientID: "P1", DoctorID: "D1", Type: "phone", BookedAt: now})
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["type"] != "问诊类型无效，应为图文、语音或视频" {
			t.Errorf("bad type: %v", err)
		}

		// waiting: not ended, accepted only by its own doctor.
		_, err = s.End(ctx, doctor, v.ID, "")
		refused(t, "end waiting", err, ihos.EConflict, "医生尚未接诊，不能结束问诊")
		_, err = s.Accept(ctx, doctor2, v.ID)
		refused(t, "accept by another doctor", err, ihos.EForbidden, "这不是您的问诊，不能接诊")
		_, err = s.Accept(ctx, patient, v.ID)
		refused(t, "accept by the patient", err, ihos.EForbidden, "只有医生可以接诊")
		_, err = s.Cancel(ctx, patient2, v.ID, "")
		refused(t, "cancel by another patient", err, ihos.EForbidden, "这不是您的问诊，不能取消")
		_, err = s.Accept(ctx, doctor, "nope")
		refused(t, "accept unknown", err, ihos.ENotFound, "问诊不存在")

		// waiting → in_progress
		v, err = s.Accept(ctx, doctor, v.ID)
		if err != nil || v.Status != visits.StatusInProgress || v.AcceptedAt.IsZero() {
			t.Fatalf("accept: %v %+v", err, v)
		}
		_, err = s.Accept(ctx, doctor, v.ID)
		refused(t, "accept twice", err, ihos.EConflict, "该问诊已接诊，正在进行中")
		_, err = s.Cancel(ctx, patient, v.ID, "")
		refused(t, "cancel in progress", err, ihos.EConflict, "医生已接诊，不能取消问诊")
		_, err = s.End(ctx, patient, v.ID, "")
		refused(t, "end by the patient", err, ihos.EForbidden, "只有接诊医生可以结束问诊")
		_, err = s.End(ctx, doctor2, v.ID, "")
		refused(t, "end by another doctor", err, ihos.EForbidden, "这不是您的问诊，不能结束")

		// in_progress → ended, and nothing after.
		v, err = s.End(ctx, doctor, v.ID, "已给出建议")
		if err != nil || v.Status != visits.StatusEnded || v.EndedAt.IsZero() {
			t.Fatalf("end: %v %+v", err, v)
		}
		_, err = s.End(ctx, doctor, v.ID, "")
		refused(t, "end twice", err, ihos.EConflict, "该问诊已结束")
		_, err = s.Accept(ctx, doctor, v.ID)
		refused(t, "accept ended", err, ihos.EConflict, "该问诊已结束，不能接诊")
		_, err = s.Cancel(ctx, patient, v.ID, "")
		refused(t, "cancel ended", err, ihos.EConflict, "该问诊已结束，不能取消")

		// waiting → cancelled, and nothing after.
		w := open(t, s, patient, doctor, now)
		w, err = s.Cancel(ctx, patient, w.ID, "临时有事")
		if err != nil || w.Status != visits.StatusCancelled {
			t.Fatalf("cancel: %v %+v", err, w)
		}
		_, err = s.Cancel(ctx, patient, w.ID, "")
		refused(t, "cancel twice", err, ihos.EConflict, "该问诊已取消")
		_, err = s.Accept(ctx, doctor, w.ID)
		refused(t, "accept cancelled", err, ihos.EConflict, "该问诊已取消，不能接诊")
		_, err = s.End(ctx, doctor, w.ID, "")
		refused(t, "end cancelled", err, ihos.EConflict, "该问诊已取消，不能结束")
		// The doctor may decline a waiting visit.
		x := open(t, s, patient, doctor, now)
		if _, err := s.Cancel(ctx, doctor, x.ID, "不属于本科室"); err != nil {
			t.Fatal(err)
		}

		// The history, append only, and the system messages that told the
		// parties.
		h, err := s.History(ctx, patient, v.ID)
		if err != nil || len(h) != 3 {
			t.Fatalf("history: %v %+v", err, h)
		}
		for i, want := range [][2]string{{"", "waiting"}, {"waiting", "in_progress"}, {"in_progress", "ended"}} {
			if h[i].From != want[0] || h[i].To != want[1] {
				t.Errorf("history[%d] = %+v, want %v", i, h[i], want)
			}
		}
		if h[1].ActorRole != "doctor" || h[1].ActorID != "D1" {
			t.Errorf("accepted by %+v", h[1])
		}
		msgs, err := s.Messages(ctx, doctor, v.ID, 0, 0)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("messages: %v %d", err, len(msgs))
		}
		for i, ev := range []string{visits.EventOpened, visits.EventAccepted, visits.EventEnded} {
			if msgs[i].Event != ev || msgs[i].SenderRole != visits.RoleSystem || msgs[i].Seq != int64(i+1) {
				t.Errorf("message %d: %+v", i, msgs[i])
			}
		}
		if !strings.Contains(msgs[2].Body, "已给出建议") {
			t.Errorf("end reason missing: %q", msgs[2].Body)
		}
		_, err = s.History(ctx, patient2, v.ID)
		refused(t, "history of another patient", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")

		// Each change went to the outbox for the appliance, and to the
		// audit log.
		var outbox, audits int
		db.QueryRow(`SELECT (SELECT COUNT(*) FROM sync_outbox) + (SELECT COUNT(*) FROM sync_capture)`).Scan(&outbox)
		db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = 'visits'`).Scan(&audits)
		if outbox != 3+2+1+1 || audits != 3+2+1+1 { // 3 opened, accepted + ended, 2 cancelled
			t.Errorf("outbox %d, audit %d", outbox, audits)
		}
	})
}

func TestPostRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		v := open(t, s, patient, doctor, time.Now())
		text := func(s string) visits.MessageInput { return visits.MessageInput{Kind: visits.KindText, Body: s} }

		if _, err := s.Post(ctx, patient, v.ID, text("医生您好，我上周复查的结果出来了")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Post(ctx, doctor, v.ID, text("您好"))
		refused(t, "doctor before accepting", err, ihos.EConflict, "请先接诊，再给患者发消息")
		_, err = s.Post(ctx, patient2, v.ID, text("我也想问"))
		refused(t, "another patient", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
		_, err = s.Post(ctx, doctor2, v.ID, text("我来看看"))
		refused(t, "another doctor", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
		_, err = s.Messages(ctx, doctor2, v.ID, 0, 0)
		refused(t, "another doctor reads", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
		_, err = s.Post(ctx, patient, v.ID, text("   "))
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["body"] != "消息内容不能为空" {
			t.Errorf("empty: %v", err)
		}
		_, err = s.Post(ctx, patient, v.ID, visits.MessageInput{Kind: "video"})
		if e := (*ihos.Error)(nil); !errors.As(err, &e) || e.Fields["kind"] == "" {
			t.Errorf("bad kind: %v", err)
		}
		if _, err := s.Accept(ctx, doctor, v.ID); err != nil {
			t.Fatal(err)
		}
		m, err := s.Post(ctx, doctor, v.ID, text("您好，请把检查单拍照发给我"))
		if err != nil || m.Seq != 4 || m.SenderRole != "doctor" {
			t.Fatalf("doctor post: %v %+v", err, m)
		}
		if _, err := s.End(ctx, doctor, v.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = s.Post(ctx, patient, v.ID, text("谢谢医生"))
		refused(t, "after end", err, ihos.EConflict, "问诊已结束，不能再发送消息")
		_, err = s.Post(ctx, doctor, v.ID, text("不客气"))
		refused(t, "doctor after end", err, ihos.EConflict, "问诊已结束，不能再发送消息")
		w := open(t, s, patient, doctor, time.Now())
		s.Cancel(ctx, patient, w.ID, "")
		_, err = s.Post(ctx, patient, w.ID, text("还在吗"))
		refused(t, "after cancel", err, ihos.EConflict, "问诊已取消，不能再发送消息")

		// opened, patient, accepted, doctor, ended; after seq 2 only the rest.
		msgs, err := s.Messages(ctx, patient, v.ID, 2, 0)
		if err != nil || len(msgs) != 3 || msgs[0].Seq != 3 || msgs[1].Body != "您好，请把检查单拍照发给我" || msgs[2].Event != visits.EventEnded {
			t.Fatalf("after 2: %v %+v", err, msgs)
		}
	})
}

func TestQueuePosition(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
		// Opened out of booking order: the queue follows the booking time.
		c := open(t, s, visits.Party{Role: visits.RolePatient, ID: "P3"}, doctor, t0.Add(3*time.Minute))
		a := open(t, s, patient, doctor, t0.Add(1*time.Minute))
		b := open(t, s, patient2, doctor, t0.Add(2*time.Minute))
		other := open(t, s, patient, doctor2, t0)
		pos := func(p visits.Party, v *visits.Visit) int {
			t.Helper()
			n, err := s.QueuePosition(ctx, p, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if pos(patient, a) != 1 || pos(patient2, b) != 2 || pos(doctor, c) != 3 || pos(patient, other) != 1 {
			t.Fatalf("positions %d %d %d %d", pos(patient, a), pos(patient2, b), pos(doctor, c), pos(patient, other))
		}
		_, err := s.QueuePosition(ctx, patient, b.ID)
		refused(t, "another patient's position", err, ihos.EForbidden, "您不是该问诊的患者或医生，无权查看或操作")
		list, err := s.Waiting(ctx, doctor, "D1")
		if err != nil || len(list) != 3 || list[0].ID != a.ID || list[2].ID != c.ID || list[2].QueuePosition != 3 {
			t.Fatalf("worklist: %v %+v", err, list)
		}
		_, err = s.Waiting(ctx, doctor2, "D1")
		refused(t, "another doctor's worklist", err, ihos.EForbidden, "只能查看自己的候诊患者")
		s.Accept(ctx, doctor, a.ID)
		if pos(patient2, b) != 1 || pos(doctor, c) != 2 || pos(patient, a) != 0 {
			t.Fatalf("after accept: %d %d %d", pos(patient2, b), pos(doctor, c), pos(patient, a))
		}
		s.Cancel(ctx, patient2, b.ID, "")
		if pos(doctor, c) != 1 {
			t.Fatalf("after cancel: %d", pos(doctor, c))
		}
	})
}

// TestConcurrentPosts: many writers in one visit get seq 1…n without a gap
// or a repeat, and feed positions in the same order.
func TestConcurrentPosts(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		v := open(t, s, patient, doctor, time.Now())
		s.Accept(ctx, doctor, v.ID)
		const writers, each = 8, 15
		var wg stdsync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				by := patient
				if i%2 == 1 {
					by = doctor
				}
				for j := range each {
					if _, err := s.Post(ctx, by, v.ID, visits.MessageInput{Kind: visits.KindText, Body: fmt.Sprintf("%d-%d", i, j)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		msgs, err := s.Messages(ctx, doctor, v.ID, 0, 0)
		if err != nil || len(msgs) != 2+writers*each {
			t.Fatalf("%v: %d messages", err, len(msgs))
		}
		for i, m := range msgs {
			if m.Seq != int64(i+1) || (i > 0 && m.Feed <= msgs[i-1].Feed) {
				t.Fatalf("message %d: seq %d feed %d (previous feed %d)", i, m.Seq, m.Feed, msgs[max(i-1, 0)].Feed)
			}
		}
	})
}
