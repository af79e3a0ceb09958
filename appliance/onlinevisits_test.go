package appliance

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// OnlineFixtureIDs names the master data the fixture's replicated rows refer
// to: two clinical departments, three doctors (Doc1 and Doc3 of Dept1, Doc2
// of Dept2; Doc3 only has an online schedule) and a pharmacist.
type OnlineFixtureIDs struct {
	Dept1, Dept2, Doc1, Doc2, Doc3, Pharmacist string
}

// OnlineFixtureDay is the fixture's day (Shanghai); the store test's clock
// stands at noon of it.
var OnlineFixtureDay = time.Date(2026, 3, 10, 0, 0, 0, 0, ihos.Shanghai)

// SeedOnlineVisits writes the rows the cloud would have replicated for a
// day of online visits (bookings, visits with their history and messages,
// prescriptions, EMRs, payments, refunds, an invoice) and a schedule of
// Doc3, as plain inserts the way replication applies them. The numbers the
// tests expect are worked out beside each row.
//
// On the day (D), Doc1: V1 图文 slot 09:00–09:15 booked D-1 20:00, accepted
// 09:05, ended 09:20 (wait 300 s, 900 s); V2 视频 10:00–10:15 booked 10:10
// (during the slot), accepted 10:12, ended 10:42 (wait 120 s, 1800 s); V3
// 语音 11:00–11:15 booked D-2, accepted 11:03, in progress (wait 180 s); V4
// 图文 11:30–11:45 waiting (overdue at noon); V5 图文 13:00–13:15 waiting.
// Doc2: V6 图文 09:00 cancelled by the patient; V7 语音 09:30–09:45 accepted
// 09:25 (early: wait 0), ended 09:45 (1200 s). The day before, Doc1: V8
// 图文 ended.
func SeedOnlineVisits(t testing.TB, db *sqldb.DB, ids OnlineFixtureIDs, day time.Time) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	at := func(h, m int) string {
		return ihos.FormatTime(day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute))
	}
	o := &onlineVisits{DB: db}
	hasCondition := o.columns(ctx, "bookings")["condition_desc"]
	hasEMR := o.columns(ctx, "emr_records")["visit_id"]

	for _, p := range []struct{ id, name, gender string }{{"ov-pat-1", "张三", "男"}, {"ov-pat-2", "李四", "女"}, {"ov-pat-3", "王小明", "男"}} {
		exec(`INSERT INTO patients (id, hospital_id, name, gender, birth_year, created_at, updated_at) VALUES (?, 'h1', ?, ?, 1980, ?, ?)`,
			p.id, p.name, p.gender, at(0, 0), at(0, 0))
	}
	type visit struct {
		n                        string
		doctor, dept, patient    string
		typ, status              string
		start, end, booked       string
		accepted, ended          any
		fee                      int64
		bookingStatus, cancelled string
	}
	vs := []visit{
		{"1", ids.Doc1, ids.Dept1, "ov-pat-1", "text", "ended", at(9, 0), at(9, 15), at(-4, 0), at(9, 5), at(9, 20), 3000, "booked", ""},
		{"2", ids.Doc1, ids.Dept1, "ov-pat-1", "video", "ended", at(10, 0), at(10, 15), at(10, 10), at(10, 12), at(10, 42), 5000, "booked", ""},
		{"3", ids.Doc1, ids.Dept1, "ov-pat-1", "voice", "in_progress", at(11, 0), at(11, 15), at(-40, 0), at(11, 3), nil, 4000, "booked", ""},
		{"4", ids.Doc1, ids.Dept1, "ov-pat-2", "text", "waiting", at(11, 30), at(11, 45), at(8, 0), nil, nil, 3000, "booked", ""},
		{"5", ids.Doc1, ids.Dept1, "ov-pat-2", "text", "waiting", at(13, 0), at(13, 15), at(8, 1), nil, nil, 3000, "booked", ""},
		{"6", ids.Doc2, ids.Dept2, "ov-pat-3", "text", "cancelled", at(9, 0), at(9, 15), at(7, 0), nil, at(8, 30), 3000, "cancelled", at(8, 30)},
		{"7", ids.Doc2, ids.Dept2, "ov-pat-3", "voice", "ended", at(9, 30), at(9, 45), at(7, 5), at(9, 25), at(9, 45), 4000, "booked", ""},
		{"8", ids.Doc1, ids.Dept1, "ov-pat-1", "text", "ended", at(-15, 0), at(-14, 45), at(-30, 0), at(-15, 1), at(-14, 50), 3000, "booked", ""},
	}
	for _, v := range vs {
		var cancelledAt any
		reason := ""
		if v.cancelled != "" {
			cancelledAt, reason = v.cancelled, "患者取消"
		}
		exec(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at,
			fee, minutes, status, cancel_reason, cancelled_at, created_at, updated_at) VALUES (?, 'h1', ?, 'ov-sch', ?, ?, ?, ?, ?, ?, ?, 15, ?, ?, ?, ?, ?)`,
			"ov-bk-"+v.n, "ov-sch:"+v.n, v.doctor, v.dept, v.patient, v.typ, v.start, v.end, v.fee, v.bookingStatus, reason, cancelledAt, v.booked, v.booked)
		exec(`INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at, accepted_at, ended_at,
			created_at, updated_at) VALUES (?, 'h1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			"ov-v-"+v.n, "ov-bk-"+v.n, v.patient, v.doctor, v.dept, v.typ, v.status, v.booked, v.accepted, v.ended, v.booked, v.booked)
	}
	if hasCondition {
		exec(`UPDATE bookings SET condition_desc = ?, past_history = ? WHERE id = 'ov-bk-1'`, "头晕一周，血压 150/95", "高血压 3 年，服用氨氯地平")
	}
	for i, e := range []struct{ visit, from, to, role, actor, reason, at string }{
		{"1", "", "waiting", "system", "system", "患者已进入候诊队列，请耐心等待医生接诊", at(-4, 0)},
		{"1", "waiting", "in_progress", "doctor", ids.Doc1, "医生已接诊，问诊开始", at(9, 5)},
		{"1", "in_progress", "ended", "doctor", ids.Doc1, "问诊已结束", at(9, 20)},
		{"6", "", "waiting", "system", "system", "患者已进入候诊队列，请耐心等待医生接诊", at(7, 0)},
		{"6", "waiting", "cancelled", "patient", "ov-pat-3", "问诊已取消：临时有事", at(8, 30)},
	} {
		exec(`INSERT INTO visit_events (id, hospital_id, visit_id, from_status, to_status, actor_role, actor_id, reason, at, updated_at)
			VALUES (?, 'h1', ?, ?, ?, ?, ?, ?, ?, ?)`, "ov-ev-"+string(rune('a'+i)), "ov-v-"+e.visit, e.from, e.to, e.role, e.actor, e.reason, e.at, e.at)
	}
	// V1's messages: 7 in all; patient 3 (one image, one voice), doctor 1, system 3.
	for i, m := range []struct{ role, kind, event string }{
		{"system", "text", "opened"}, {"patient", "text", ""}, {"patient", "image", ""}, {"system", "text", "accepted"},
		{"doctor", "text", ""}, {"patient", "voice", ""}, {"system", "text", "ended"},
	} {
		exec(`INSERT INTO visit_messages (id, hospital_id, visit_id, seq, patient_id, doctor_id, sender_role, sender_id, kind, event, body, created_at, updated_at)
			VALUES (?, 'h1', 'ov-v-1', ?, 'ov-pat-1', ?, ?, ?, ?, ?, '…', ?, ?)`, "ov-msg-"+string(rune('a'+i)), i+1, ids.Doc1, m.role, m.role, m.kind, m.event, at(9, i), at(9, i))
	}

	// Prescriptions. Doc1 signs RX1 (V1; rejected 09:30), RX2 (its revision;
	// approved 09:50, paid), RX4 (V2; approved, sent to the HIS); RX5 was
	// signed the day before the month began and approved at 00:30 on the 1st
	// (Shanghai; the day before in UTC). Doc2 signs RX3 (V7; under review).
	// Doc1: issued 3 in the month, approved 3; Doc2: issued 1; the
	// pharmacist: 4 reviews, 1 rejected.
	monthStart := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, ihos.Shanghai)
	items := `[{"code":"Y001","name":"氨氯地平片","spec":"5mg×28片","unit":"盒","price_fen":3200,"quantity":2,"amount_fen":6400},` +
		`{"code":"Y002","name":"阿司匹林肠溶片","spec":"100mg×30片","unit":"盒","price_fen":3200,"quantity":2,"amount_fen":6400}]`
	for _, rx := range []struct {
		id, series, prev             string
		rev                          int
		visit, doctor, dept, patient string
		status                       string
		signed, reviewed, reason     any
		reviewer                     string
	}{
		{"ov-rx-1", "ov-rx-1", "", 1, "1", ids.Doc1, ids.Dept1, "ov-pat-1", "rejected", at(9, 18), at(9, 30), "剂量偏大", ids.Pharmacist},
		{"ov-rx-2", "ov-rx-1", "ov-rx-1", 2, "1", ids.Doc1, ids.Dept1, "ov-pat-1", "paid", at(9, 40), at(9, 50), "", ids.Pharmacist},
		{"ov-rx-3", "ov-rx-3", "", 1, "7", ids.Doc2, ids.Dept2, "ov-pat-3", "under_review", at(9, 44), nil, "", ""},
		{"ov-rx-4", "ov-rx-4", "", 1, "2", ids.Doc1, ids.Dept1, "ov-pat-1", "sent_to_his", at(10, 40), at(10, 50), "", ids.Pharmacist},
		{"ov-rx-5", "ov-rx-5", "", 1, "8", ids.Doc1, ids.Dept1, "ov-pat-1", "approved",
			ihos.FormatTime(monthStart.Add(-2 * time.Hour)), ihos.FormatTime(monthStart.Add(30 * time.Minute)), "", ids.Pharmacist},
	} {
		var prev any
		if rx.prev != "" {
			prev = rx.prev
		}
		reason, _ := rx.reason.(string)
		exec(`INSERT INTO prescriptions (id, hospital_id, series_id, revision, previous_id, visit_id, patient_id, doctor_id, department_id, status,
			diagnosis, items, total_fen, signed_at, reviewer_id, reviewed_at, review_reason, created_at, updated_at)
			VALUES (?, 'h1', ?, ?, ?, ?, ?, ?, ?, ?, '原发性高血压', ?, 12800, ?, ?, ?, ?, ?, ?)`,
			rx.id, rx.series, rx.rev, prev, "ov-v-"+rx.visit, rx.patient, rx.doctor, rx.dept, rx.status, items,
			rx.signed, rx.reviewer, rx.reviewed, reason, rx.signed, rx.signed)
	}
	if hasEMR {
		// Doc1 signs V1's record and V2's; V3's is a draft: 2 signed.
		for _, e := range []struct {
			id, visit, status string
			signed            any
		}{{"ov-emr-1", "1", "signed", at(9, 25)}, {"ov-emr-2", "2", "signed", at(10, 45)}, {"ov-emr-3", "3", "draft", nil}} {
			exec(`INSERT INTO emr_records (id, hospital_id, visit_id, revision, patient_id, doctor_id, department_id, status, chief_complaint,
				present_illness, past_history, physical_exam, diagnoses, advice, signed_at, created_at, updated_at)
				VALUES (?, 'h1', ?, 1, 'ov-pat-1', ?, ?, ?, '头晕一周', '', '', '', '[]', '', ?, ?, ?)`,
				e.id, "ov-v-"+e.visit, ids.Doc1, ids.Dept1, e.status, e.signed, at(9, 22), at(9, 22))
		}
	}

	// Payments. Doc1: P1 (V1's fee, paid D-1 20:01 Shanghai, in the month),
	// P2 (V2's fee 50.00, 20.00 refunded), P3 (RX2, 128.00); P6 paid at
	// 23:59 the last day of the month before (not counted). Doc2: P4 (V6's
	// fee, refunded in full), P5 closed (not counted). Doc1: 3 payments,
	// 208.00 taken, 20.00 refunded, 188.00 income; Doc2: 1, 30.00, 30.00, 0.
	for _, p := range []struct {
		id, bt, business, doctor, dept, patient, status string
		total, refunded                                 int64
		paid                                            any
	}{
		{"ov-pay-1", ihos.PayConsultation, "ov-bk-1", ids.Doc1, ids.Dept1, "ov-pat-1", ihos.PaymentPaid, 3000, 0, at(-4, 1)},
		{"ov-pay-2", ihos.PayConsultation, "ov-bk-2", ids.Doc1, ids.Dept1, "ov-pat-1", ihos.PaymentPartiallyRefunded, 5000, 2000, at(10, 11)},
		{"ov-pay-3", ihos.PayPrescription, "ov-rx-2", ids.Doc1, ids.Dept1, "ov-pat-1", ihos.PaymentPaid, 12800, 0, at(9, 55)},
		{"ov-pay-4", ihos.PayConsultation, "ov-bk-6", ids.Doc2, ids.Dept2, "ov-pat-3", ihos.PaymentRefunded, 3000, 3000, at(7, 1)},
		{"ov-pay-5", ihos.PayConsultation, "ov-bk-x", ids.Doc2, ids.Dept2, "ov-pat-3", ihos.PaymentClosed, 9900, 0, nil},
		{"ov-pay-6", ihos.PayConsultation, "ov-bk-y", ids.Doc1, ids.Dept1, "ov-pat-1", ihos.PaymentPaid, 1000, 0,
			ihos.FormatTime(monthStart.Add(-time.Minute))},
	} {
		created := at(-5, 0)
		if s, ok := p.paid.(string); ok {
			created = s
		}
		exec(`INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, doctor_id, department_id, channel, subject,
			total, cash_pay, refunded, status, out_trade_no, deadline, created_at, paid_at, updated_at)
			VALUES (?, 'h1', ?, ?, ?, ?, ?, 'selfpay', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.id, p.bt, p.business, p.patient, p.doctor, p.dept, ihos.BusinessTypeLabels[p.bt], p.total, p.total, p.refunded, p.status,
			"T"+p.id, created, created, p.paid, created)
	}
	for _, r := range []struct {
		id, payment string
		amount      int64
	}{{"ov-rf-2", "ov-pay-2", 2000}, {"ov-rf-4", "ov-pay-4", 3000}} {
		exec(`INSERT INTO refunds (id, hospital_id, payment_id, out_refund_no, amount, cash_part, status, reason, created_at, done_at, updated_at)
			VALUES (?, 'h1', ?, ?, ?, ?, 'succeeded', '部分退费', ?, ?, ?)`, r.id, r.payment, "RF"+r.id, r.amount, r.amount, at(11, 0), at(11, 1), at(11, 1))
	}
	exec(`INSERT INTO invoices (id, hospital_id, payment_id, patient_id, business_type, bus_no, bill_batch_code, bill_no, total, cash_pay, status,
		issued_at, created_at, updated_at) VALUES ('ov-inv-1', 'h1', 'ov-pay-1', 'ov-pat-1', ?, 'ov-pay-1', '44010126', '0000123456', 3000, 3000, 'issued', ?, ?, ?)`,
		ihos.PayConsultation, at(-4, 2), at(-4, 2), at(-4, 2))
	exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, created_at, updated_at)
		VALUES ('ov-sch-3', 'h1', ?, ?, '14:00', '17:00', 'text', 15, ?, ?)`, ids.Doc3, day.Format(time.DateOnly), at(0, 0), at(0, 0))
}

// seedMasterData adds the departments and staff of the fixture.
func seedMasterData(t *testing.T, db *sqldb.DB) OnlineFixtureIDs {
	ctx := context.Background()
	now := ihos.FormatTime(time.Now())
	for i, d := range []struct{ id, code, name string }{{"ov-d1", "XNK", "心血管内科"}, {"ov-d2", "EK", "儿科"}, {"ov-d3", "YJK", "药剂科"}} {
		if _, err := db.ExecContext(ctx, `INSERT INTO departments (id, institution_id, code, name, sort_order, created_at, updated_at) VALUES (?, 'inst', ?, ?, ?, ?, ?)`,
			d.id, d.code, d.name, (i+1)*10, now, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []struct{ id, dept, job, name, kind, title string }{
		{"ov-doc1", "ov-d1", "D1001", "王伟", "doctor", "主任医师"}, {"ov-doc2", "ov-d2", "D1002", "李芳", "doctor", "主治医师"},
		{"ov-doc3", "ov-d1", "D1003", "赵强", "doctor", "副主任医师"}, {"ov-ph1", "ov-d3", "P1001", "孙丽", "pharmacist", "主管药师"},
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO staff (id, institution_id, department_id, job_no, name, kind, title, online, created_at, updated_at)
			VALUES (?, 'inst', ?, ?, ?, ?, ?, 1, ?, ?)`, s.id, s.dept, s.job, s.name, s.kind, s.title, now, now); err != nil {
			t.Fatal(err)
		}
	}
	return OnlineFixtureIDs{Dept1: "ov-d1", Dept2: "ov-d2", Doc1: "ov-doc1", Doc2: "ov-doc2", Doc3: "ov-doc3", Pharmacist: "ov-ph1"}
}

// TestOnlineVisitReports checks the numbers of 线上就诊记录, 医师工作量统计 and
// 医师接诊情况查询 exactly against seeded replicated rows, the department
// administrator's confinement, and the audit of every query.
func TestOnlineVisitReports(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ids := seedMasterData(t, db)
		day := OnlineFixtureDay
		SeedOnlineVisits(t, db, ids, day)
		noon := day.Add(12 * time.Hour)
		o := &onlineVisits{DB: db, Now: func() time.Time { return noon }}
		admin := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u-admin", Username: "yiwuke", Role: "hospital_admin"})
		scoped := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u-dept", Username: "ek_admin", Role: "dept_admin", DepartmentID: ids.Dept2, Scoped: true})
		hasEMR := o.columns(context.Background(), "emr_records")["visit_id"]
		t.Logf("emr_records: %v; bookings.condition_desc: %v", hasEMR, o.columns(context.Background(), "bookings")["condition_desc"])
		filter := func(q string) onlineFilter {
			t.Helper()
			v, _ := url.ParseQuery(q)
			f, err := parseOnlineFilter(v)
			if err != nil {
				t.Fatalf("filter %q: %v", q, err)
			}
			return f
		}
		ids8 := func(l *visitList) string {
			var out []string
			for _, r := range l.Rows {
				out = append(out, strings.TrimPrefix(r.ID, "ov-v-"))
			}
			return strings.Join(out, ",")
		}

		t.Run("list", func(t *testing.T) {
			for q, want := range map[string]string{
				"from=2026-03-10&to=2026-03-10":                          "5,4,3,2,7,6,1",
				"from=2026-03-09&to=2026-03-10":                          "5,4,3,2,7,6,1,8",
				"from=2026-03-09&to=2026-03-09&by=booked":                "1", // booked 20:00 the day before; V8 was booked on the 8th
				"from=2026-03-10&to=2026-03-10&status=overdue":           "4",
				"from=2026-03-10&to=2026-03-10&status=waiting":           "5,4",
				"from=2026-03-10&to=2026-03-10&type=voice":               "3,7",
				"patient=小明":                                             "7,6",
				"department=ov-d2":                                       "7,6",
				"doctor=ov-doc1&type=text&from=2026-03-01&to=2026-03-31": "5,4,1,8",
			} {
				l, err := o.listVisits(admin, filter(q))
				if err != nil {
					t.Fatal(err)
				}
				if got := ids8(l); got != want || l.Total != strings.Count(want, ",")+1 {
					t.Errorf("%s: %s (total %d), want %s", q, got, l.Total, want)
				}
			}
			// The department administrator of 儿科 sees 儿科 only, whatever they ask.
			l, err := o.listVisits(scoped, filter("department=ov-d1"))
			if err != nil {
				t.Fatal(err)
			}
			if got := ids8(l); got != "7,6" {
				t.Errorf("scoped list: %s", got)
			}
			l, _ = o.listVisits(admin, filter("from=2026-03-10&to=2026-03-10&status=waiting"))
			if r := l.Rows[1]; r.ID != "ov-v-4" || !r.Overdue || r.StatusLabel != "已超时" || r.PatientName != "李四" || r.DoctorName != "王伟" ||
				r.DepartmentName != "心血管内科" || r.SlotText != "2026-03-10 11:30–11:45" || r.TypeLabel != "图文问诊" {
				t.Errorf("V4 row: %+v", r)
			}
			if r := l.Rows[0]; r.Overdue || r.StatusLabel != "待接诊" {
				t.Errorf("V5 row: %+v", r)
			}
			opts, err := o.filterOptions(scoped, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(opts["Departments"]) != 1 || opts["Departments"][0].Label != "儿科" || len(opts["Doctors"]) != 1 || opts["Doctors"][0].Label != "李芳（儿科）" {
				t.Errorf("scoped options %+v", opts)
			}
			if opts, err = o.filterOptions(admin, true); err != nil || len(opts["Doctors"]) != 4 || len(opts["Statuses"]) != 5 {
				t.Errorf("options %+v %v", opts, err)
			}
			for _, bad := range []string{"from=2026-3-1", "type=phone", "status=done", "from=2026-03-10&to=2026-03-01", "from=2024-01-01&to=2026-01-01"} {
				v, _ := url.ParseQuery(bad)
				if _, err := parseOnlineFilter(v); ihos.ErrorCode(err) != ihos.EInvalid {
					t.Errorf("%s: %v", bad, err)
				}
			}
		})

		t.Run("detail", func(t *testing.T) {
			d, err := o.visitDetail(admin, "ov-v-1")
			if err != nil {
				t.Fatal(err)
			}
			if d.Visit.Status != "ended" || d.Visit.AcceptedAt.IsZero() || d.Visit.PatientGender != "男" {
				t.Errorf("visit %+v", d.Visit)
			}
			if m := d.Messages; m != (messageCounts{Total: 7, Patient: 3, Doctor: 1, System: 3, Images: 1, Voices: 1}) {
				t.Errorf("messages %+v", m)
			}
			if len(d.Events) != 3 || d.Events[0].ToLabel != "待接诊" || d.Events[1].FromLabel != "待接诊" || d.Events[1].ToLabel != "问诊中" ||
				d.Events[1].ActorName != "王伟" || d.Events[2].ToLabel != "已结束" {
				t.Errorf("events %+v", d.Events)
			}
			if b := d.Booking; b == nil || b.Fee != 3000 || b.StatusLabel != "已预约" {
				t.Errorf("booking %+v", b)
			} else if d.HasCondition && (b.Condition != "头晕一周，血压 150/95" || b.PastHistory != "高血压 3 年，服用氨氯地平") {
				t.Errorf("condition %+v", b)
			}
			if len(d.Prescriptions) != 2 || d.Prescriptions[0].StatusLabel != "已驳回" || d.Prescriptions[0].ReviewReason != "剂量偏大" ||
				d.Prescriptions[0].ReviewerName != "孙丽" || d.Prescriptions[1].Revision != 2 || d.Prescriptions[1].StatusLabel != "已支付" ||
				!strings.Contains(d.Prescriptions[1].Drugs, "氨氯地平片 5mg×28片 ×2盒") {
				t.Errorf("prescriptions %+v", d.Prescriptions)
			}
			if d.HasEMR != hasEMR || (hasEMR && (len(d.EMR) != 1 || d.EMR[0].StatusLabel != "已签名" || d.EMR[0].DoctorName != "王伟")) {
				t.Errorf("emr %v %+v", d.HasEMR, d.EMR)
			}
			if len(d.Payments) != 2 || d.Payments[0].ID != "ov-pay-1" || d.Payments[1].ID != "ov-pay-3" || d.Payments[1].BusinessLabel != "处方" {
				t.Errorf("payments %+v", d.Payments)
			}
			if len(d.Invoices) != 1 || d.Invoices[0].BillNo != "0000123456" || d.Invoices[0].StatusLabel != "已开票" {
				t.Errorf("invoices %+v", d.Invoices)
			}
			d2, err := o.visitDetail(admin, "ov-v-2")
			if err != nil {
				t.Fatal(err)
			}
			if len(d2.Refunds) != 1 || d2.Refunds[0].Amount != 2000 || d2.Refunds[0].StatusLabel != "退款成功" {
				t.Errorf("V2 refunds %+v", d2.Refunds)
			}
			d6, err := o.visitDetail(scoped, "ov-v-6")
			if err != nil {
				t.Fatal(err)
			}
			if len(d6.Events) != 2 || d6.Events[1].ActorLabel != "患者" || d6.Events[1].ActorName != "王小明" || d6.Booking.CancelReason != "患者取消" {
				t.Errorf("V6 %+v %+v", d6.Events, d6.Booking)
			}
			if _, err := o.visitDetail(scoped, "ov-v-1"); ihos.ErrorCode(err) != ihos.ENotFound {
				t.Errorf("scoped detail of another department: %v", err)
			}
		})

		t.Run("workload", func(t *testing.T) {
			f := filter("")
			if err := f.withPeriod(noon, monthStart); err != nil {
				t.Fatal(err)
			}
			if from, to := console.Dates(f.From, f.To); from != "2026-03-01" || to != "2026-03-10" {
				t.Fatalf("default period %s – %s", from, to)
			}
			w, err := o.workload(admin, f)
			if err != nil {
				t.Fatal(err)
			}
			emr := func(n int) int {
				if hasEMR {
					return n
				}
				return 0
			}
			want := map[string]workCounts{
				"ov-doc1": {Text: 2, Video: 1, RxIssued: 3, RxApproved: 3, EMRSigned: emr(2), PaidCount: 3, Paid: 20800, Refunded: 2000},
				"ov-doc2": {Voice: 1, RxIssued: 1, PaidCount: 1, Paid: 3000, Refunded: 3000},
				"ov-doc3": {},
				"ov-ph1":  {Reviews: 4, ReviewsRejected: 1},
			}
			var order []string
			for _, r := range w.Rows {
				order = append(order, r.Key)
				if r.workCounts != want[r.Key] {
					t.Errorf("%s: %+v, want %+v", r.Key, r.workCounts, want[r.Key])
				}
			}
			if got := strings.Join(order, ","); got != "ov-doc1,ov-doc3,ov-doc2,ov-ph1" {
				t.Errorf("rows %s", got)
			}
			total := workCounts{Text: 2, Voice: 1, Video: 1, RxIssued: 4, RxApproved: 3, Reviews: 4, ReviewsRejected: 1, EMRSigned: emr(2),
				PaidCount: 4, Paid: 23800, Refunded: 5000}
			if w.Total.workCounts != total || w.Total.Visits() != 4 || w.Total.Net() != 18800 || w.Total.ReviewsApproved() != 3 {
				t.Errorf("total %+v", w.Total)
			}
			if len(w.Departments) != 3 || w.Departments[0].Name != "心血管内科" || w.Departments[0].Net() != 18800 || w.Departments[0].Visits() != 3 ||
				w.Departments[2].Name != "药剂科" || w.Departments[2].Reviews != 4 {
				t.Errorf("departments %+v", w.Departments)
			}
			// The day alone: V8, RX5 and P1 fall out.
			day1 := filter("from=2026-03-10&to=2026-03-10")
			w, err = o.workload(admin, day1)
			if err != nil {
				t.Fatal(err)
			}
			if w.Total.Visits() != 3 || w.Total.RxApproved != 2 || w.Total.Reviews != 3 || w.Total.Paid != 20800 || w.Total.Net() != 15800 {
				t.Errorf("day total %+v", w.Total)
			}
			// Department administrator of 儿科: Doc2 only.
			w, err = o.workload(scoped, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(w.Rows) != 1 || w.Rows[0].Key != "ov-doc2" || w.Total.Net() != 0 || w.Total.Paid != 3000 {
				t.Errorf("scoped workload %+v", w.Rows)
			}
			tables := workloadTables(w)
			if len(tables) != 2 || tables[0].Rows[len(tables[0].Rows)-1][0] != "合计（2026-03-01 至 2026-03-10）" {
				t.Errorf("export tables %+v", tables)
			}
		})

		t.Run("reception", func(t *testing.T) {
			f := filter("")
			if err := f.withPeriod(noon, sameDay); err != nil {
				t.Fatal(err)
			}
			r, err := o.reception(admin, f)
			if err != nil {
				t.Fatal(err)
			}
			type nums struct {
				Total, Waiting, Overdue, InProgress, Ended, Cancelled int
				Wait, Dur                                             int64
			}
			get := func(c receptionCounts) nums {
				return nums{c.Total, c.Waiting, c.Overdue, c.InProgress, c.Ended, c.Cancelled, c.AvgWait(), c.AvgDuration()}
			}
			want := map[string]nums{
				"ov-doc1": {5, 1, 1, 1, 2, 0, 200, 1350}, // waits 300, 120, 180; durations 900, 1800
				"ov-doc3": {0, 0, 0, 0, 0, 0, -1, -1},    // scheduled, no visit
				"ov-doc2": {2, 0, 0, 0, 1, 1, 0, 1200},   // accepted early: wait 0
			}
			var order []string
			for _, row := range r.Rows {
				order = append(order, row.Key)
				if got := get(row.receptionCounts); got != want[row.Key] {
					t.Errorf("%s: %+v, want %+v", row.Key, got, want[row.Key])
				}
			}
			if got := strings.Join(order, ","); got != "ov-doc1,ov-doc3,ov-doc2" {
				t.Errorf("rows %s", got)
			}
			if got := get(r.Total); got != (nums{7, 1, 1, 1, 3, 1, 150, 1300}) { // 600/4, 3900/3
				t.Errorf("total %+v", got)
			}
			if r.Rows[0].AvgWaitText() != "3 分 20 秒" || r.Rows[0].AvgDurationText() != "22 分 30 秒" || r.Rows[1].AvgWaitText() != "—" {
				t.Errorf("texts %q %q %q", r.Rows[0].AvgWaitText(), r.Rows[0].AvgDurationText(), r.Rows[1].AvgWaitText())
			}
			// Voice visits only: V3 (Doc1, in progress) and V7 (Doc2); the
			// schedule alone lists no one when a type is asked.
			r, err = o.reception(admin, filter("from=2026-03-10&to=2026-03-10&type=voice"))
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rows) != 2 || get(r.Total) != (nums{2, 0, 0, 1, 1, 0, 90, 1200}) {
				t.Errorf("voice %+v", r.Total)
			}
			r, err = o.reception(scoped, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Rows) != 1 || r.Rows[0].Key != "ov-doc2" {
				t.Errorf("scoped reception %+v", r.Rows)
			}
			if tb := receptionTable(r); len(tb.Rows) != 2 || tb.Rows[0][9] != int64(0) || tb.Rows[0][10] != int64(1200) {
				t.Errorf("export %+v", tb.Rows)
			}
		})

		// Every query above wrote nothing; the pages audit theirs (the browser
		// test reads the log); the audit call itself works with the actor.
		if err := o.audit(admin, "view", "online_visits", "", "查询线上就诊记录：全部"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE action = 'view' AND resource = 'online_visits' AND actor_name = 'yiwuke'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("audit entries: %d %v", n, err)
		}
	})
}
