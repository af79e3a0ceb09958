package notices_test

import (
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/notices"
	"ihos/sync"
	"ihos/visits"
)

const hosp = "h1"

func stamp() string { return ihos.FormatTime(time.Now()) }

func exec(t testing.TB, db *sqldb.DB, q string, args ...any) {
	t.Helper()
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// seed writes doctor doc1 (张医生), patient P1 (王小明) on accounts A1 and A2
// (a child on both parents' accounts), P2 on A3, and visit V1 of P1 with doc1.
func seed(t testing.TB, db *sqldb.DB) {
	exec(t, db, `INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, online, enabled, version, created_at, updated_at)
		VALUES ('doc1', ?, 'i1', 'd1', 'J1', '张', 'doctor', '主任医师', 1, 1, 1, ?, ?)`, hosp, stamp(), stamp())
	for _, p := range [][2]string{{"P1", "王小明"}, {"P2", "李四"}} {
		exec(t, db, `INSERT INTO patients (id, hospital_id, name, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)`, p[0], hosp, p[1], stamp(), stamp())
	}
	for _, m := range [][2]string{{"A1", "P1"}, {"A2", "P1"}, {"A3", "P2"}} {
		exec(t, db, `INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, birth_date, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'child', '2020-01-01', ?, ?)`, ihos.NewID(), m[0], hosp, m[1], stamp(), stamp())
	}
	exec(t, db, `INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at, version, created_at, updated_at)
		VALUES ('V1', ?, 'B1', 'P1', 'doc1', 'd1', 'text', 'in_progress', ?, 2, ?, ?)`, hosp, stamp(), stamp(), stamp())
	exec(t, db, `INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, version, created_at, updated_at)
		VALUES ('L1', ?, 'P2', 'HIS-P2', 'id_number', 100, 'linked', 1, ?, ?)`, hosp, stamp(), stamp())
}

// change is one envelope of rows: entity, id, then column/value pairs.
type row struct {
	entity, id string
	vals       map[string]string
}

func env(snapshot bool, side sync.Side, rows ...row) *sync.Envelope {
	e := &sync.Envelope{ChangeID: ihos.NewID(), Hospital: hosp, Origin: "n", Side: side, At: time.Now().UTC(), Snapshot: snapshot}
	for _, r := range rows {
		vals := map[string]*string{}
		for k, v := range r.vals {
			vals[k] = &v
		}
		e.Rows = append(e.Rows, sync.RowChange{Entity: r.entity, ID: r.id, Version: 1, Values: vals})
	}
	return e
}

func follow(t testing.TB, db *sqldb.DB, f *notices.Feed, envs ...*sync.Envelope) {
	t.Helper()
	if err := db.Tx(context.Background(), func(tx *sql.Tx) error { return f.Follow(context.Background(), tx, envs) }); err != nil {
		t.Fatal(err)
	}
}

func process(t testing.TB, svc *notices.Service) int {
	t.Helper()
	total := 0
	for {
		n, err := svc.Process(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func list(t testing.TB, svc *notices.Service, rc notices.Recipient) []*notices.Notice {
	t.Helper()
	l, err := svc.List(context.Background(), rc, notices.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func titles(ns []*notices.Notice) string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Title)
	}
	return strings.Join(out, "|")
}

var (
	a1  = notices.Recipient{Kind: notices.ToPatient, ID: "A1"}
	a2  = notices.Recipient{Kind: notices.ToPatient, ID: "A2"}
	a3  = notices.Recipient{Kind: notices.ToPatient, ID: "A3"}
	doc = notices.Recipient{Kind: notices.ToStaff, ID: "doc1"}
)

func msg(id, role, kind, body string) row {
	return row{"visit_messages", id, map[string]string{"visit_id": "V1", "patient_id": "P1", "doctor_id": "doc1", "sender_role": role, "kind": kind, "body": body}}
}

// TestNoticesFromChanges drives every kind of notice from the changes that
// make it, as the change feed delivers them.
func TestNoticesFromChanges(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		seed(t, db)
		feed := notices.NewFeed()
		svc := &notices.Service{DB: db}

		// Changes that make no notice are not even queued.
		follow(t, db, feed,
			env(false, sync.Cloud, row{"bookings", "B0", map[string]string{"patient_id": "P1", "status": "awaiting_payment"}}),
			env(false, sync.Cloud, row{"payments", "PAY0", map[string]string{"patient_id": "P1", "status": "paying", "refunded": "0"}}),
			env(false, sync.Cloud, msg("M0", "system", "text", "问诊开始")),
			env(true, sync.Appliance, row{"invoices", "I0", map[string]string{"patient_id": "P1", "status": "issued"}}), // a resync
			env(false, sync.Cloud, row{"departments", "d1", map[string]string{"name": "内科"}}))
		var queued int
		db.QueryRow(`SELECT COUNT(*) FROM notice_feed`).Scan(&queued)
		if queued != 0 {
			t.Fatalf("%d queued", queued)
		}
		select {
		case <-feed.Kick():
			t.Fatal("kicked for nothing")
		default:
		}

		follow(t, db, feed,
			env(false, sync.Cloud, row{"bookings", "B1", map[string]string{"patient_id": "P1", "staff_id": "doc1", "status": "booked", "visit_type": "text", "start_at": "2026-12-02T01:30:00.000000Z"}}),
			env(false, sync.Cloud, row{"payments", "PAY1", map[string]string{"patient_id": "P1", "business_type": "consultation", "subject": "图文问诊", "total": "2000", "refunded": "0", "status": "paid"}}),
			env(false, sync.Cloud, row{"visits", "V1", map[string]string{"patient_id": "P1", "doctor_id": "doc1", "visit_type": "text", "status": "waiting"}}),
			env(false, sync.Cloud, row{"visits", "V1", map[string]string{"patient_id": "P1", "doctor_id": "doc1", "visit_type": "text", "status": "in_progress"}}),
		)
		select {
		case <-feed.Kick():
		default:
			t.Fatal("no kick")
		}
		if n := process(t, svc); n != 4 {
			t.Fatalf("processed %d", n)
		}
		want := "医生已接诊|支付成功|预约成功"
		if got := titles(list(t, svc, a1)); got != want {
			t.Fatalf("A1: %s", got)
		}
		if got := titles(list(t, svc, a2)); got != want { // the other parent's account hears too
			t.Fatalf("A2: %s", got)
		}
		if got := list(t, svc, a1); got[1].Body != "问诊费（图文问诊）已支付 20.00 元。" || got[2].Body != "您已成功预约张医生 12月2日 09:30 的图文问诊，请按时进入问诊。" ||
			got[0].Link != "/h5/#/visit/V1" || got[0].Read || got[0].Kind != notices.KindAccepted {
			t.Fatalf("bodies %q %q %+v", got[1].Body, got[2].Body, got[0])
		}
		if got := list(t, svc, doc); titles(got) != "新的候诊患者" || got[0].Body != "王小明的图文问诊已进入候诊队列。" || got[0].Link != "/doctor/#/visit/V1" {
			t.Fatalf("doctor %s %+v", titles(got), got)
		}
		if got := titles(list(t, svc, a3)); got != "" {
			t.Fatalf("A3 got %s", got)
		}

		// The doctor's messages coalesce into one unread notice per visit.
		follow(t, db, feed, env(false, sync.Cloud, msg("M1", "doctor", "text", "您好，请问最近血压如何？")))
		follow(t, db, feed, env(false, sync.Cloud, msg("M2", "doctor", "image", "")), env(false, sync.Cloud, msg("M3", "doctor", "text", "请按时服药")))
		follow(t, db, feed, env(false, sync.Cloud, msg("M4", "patient", "text", "好的谢谢医生")))
		process(t, svc)
		l := list(t, svc, a1)
		if l[0].Kind != notices.KindMessage || l[0].Title != "张医生发来 3 条新消息" || l[0].Body != "请按时服药" || l[0].Count != 3 || l[0].SubjectID != "V1" || len(l) != 4 {
			t.Fatalf("coalesced %+v (%d)", l[0], len(l))
		}
		if l := list(t, svc, doc); l[0].Title != "王小明发来新消息" || l[0].Body != "好的谢谢医生" || len(l) != 2 {
			t.Fatalf("doctor's message notice %+v", l[0])
		}
		if n, _ := svc.Unread(ctx, a1); n != 4 {
			t.Fatalf("unread %d", n)
		}
		// Read: another account's ids are passed over.
		other := list(t, svc, doc)[0].ID
		if n, err := svc.MarkRead(ctx, a1, []string{l[0].ID, other}, false); err != nil || n != 1 {
			t.Fatalf("mark read: %d %v", n, err)
		}
		if n, _ := svc.Unread(ctx, doc); n != 2 {
			t.Fatalf("doctor unread %d", n)
		}
		if n, _ := svc.Unread(ctx, a1); n != 3 {
			t.Fatalf("unread after read %d", n)
		}
		// Once it is read, the next message makes a new notice.
		follow(t, db, feed, env(false, sync.Cloud, msg("M5", "doctor", "voice", "")))
		process(t, svc)
		l = list(t, svc, a1)
		if l[0].Title != "张医生发来新消息" || l[0].Body != "[语音]" || l[0].Read || !l[1].Read || l[1].Count != 3 {
			t.Fatalf("after read: %+v %+v", l[0], l[1])
		}
		if unread, err := svc.List(ctx, a1, notices.Query{Unread: true}); err != nil || len(unread) != 4 {
			t.Fatalf("unread list %d %v", len(unread), err)
		}
		if after, err := svc.List(ctx, a1, notices.Query{After: l[1].Seq}); err != nil || len(after) != 1 || after[0].ID != l[0].ID {
			t.Fatalf("after %d: %+v %v", l[1].Seq, after, err)
		}

		// Prescriptions, refunds, e-invoices (the hospital's), EMR, reports.
		follow(t, db, feed,
			env(false, sync.Cloud, row{"prescriptions", "RX1", map[string]string{"visit_id": "V1", "patient_id": "P1", "doctor_id": "doc1", "status": "rejected", "review_reason": "剂量过大"}}),
			env(false, sync.Cloud, row{"prescriptions", "RX2", map[string]string{"visit_id": "V1", "patient_id": "P1", "doctor_id": "doc1", "status": "approved", "total_fen": "12345"}}),
			env(false, sync.Cloud, row{"payments", "PAY1", map[string]string{"patient_id": "P1", "business_type": "consultation", "subject": "图文问诊", "total": "2000", "refunded": "500", "status": "partially_refunded"}}),
			env(false, sync.Cloud, row{"emr_records", "E1", map[string]string{"visit_id": "V1", "status": "signed", "revision": "1"}}),
		)
		follow(t, db, feed,
			env(false, sync.Appliance, row{"invoices", "I1", map[string]string{"payment_id": "PAY1", "patient_id": "P1", "business_type": "consultation", "total": "2000", "bill_no": "0000123", "status": "issued"}}),
			env(false, sync.Appliance, row{"his_results", "R1", map[string]string{"patient_his_id": "HIS-P2", "result_status": "F", "service_name": "血常规"}}),
			env(false, sync.Appliance, row{"his_results", "R2", map[string]string{"patient_his_id": "HIS-P2", "result_status": "P", "service_name": "尿常规"}}),
		)
		process(t, svc)
		if got := titles(list(t, svc, a1)[:5]); got != "电子票据已开具|电子病历已签署|退款成功|处方审核通过|处方未通过审核" {
			t.Fatalf("A1: %s", got)
		}
		l = list(t, svc, a1)
		if l[0].Body != "问诊费 20.00 元的电子票据已开具（票据号码 0000123），可在“我的订单”中查看。" || l[2].Body != "问诊费（图文问诊）已退款 5.00 元，款项将原路退回。" ||
			l[3].Body != "您的处方已由药师审核通过，金额 123.45 元，请及时支付。" || l[1].Body != "张医生已签署本次问诊的电子病历，可在问诊详情中查看。" {
			t.Fatalf("bodies: %q %q %q %q", l[0].Body, l[1].Body, l[2].Body, l[3].Body)
		}
		// The prescribing doctor hears of both reviews, newest first.
		if ds := list(t, svc, doc); len(ds) < 2 || ds[0].Title != "处方审核通过" || ds[0].Body != "药师已审核通过您开具的处方，等待患者支付。" ||
			ds[1].Title != "处方被药师驳回" || ds[1].Body != "驳回原因：剂量过大。请修改后重新提交。" {
			t.Fatalf("doctor %+v", ds)
		}
		if got := list(t, svc, a3); titles(got) != "检查检验报告已出" || got[0].Body != "血常规报告已出，请及时查看。" {
			t.Fatalf("A3: %s", titles(got))
		}
		if n, err := svc.MarkRead(ctx, a1, nil, true); err != nil || n == 0 {
			t.Fatalf("read all %d %v", n, err)
		}
		if n, _ := svc.Unread(ctx, a1); n != 0 {
			t.Fatalf("unread after all %d", n)
		}
		if _, err := svc.MarkRead(ctx, a1, nil, false); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Fatalf("nothing to mark: %v", err)
		}
	})
}

// TestNoticesOnceAcrossRestart: a change queued by the feed makes its
// notices once, whether the cloud stops before the worker ran or after, and
// a change delivered again makes none.
func TestNoticesOnceAcrossRestart(t *testing.T) {
	for _, engine := range []string{sqldb.SQLite, sqldb.MySQL} {
		t.Run(engine, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "cloud.db")
			if engine == sqldb.MySQL {
				dsn = sqldbtest.MySQLDSN(t)
			}
			ctx := context.Background()
			open := func() *sqldb.DB {
				db, err := sqldb.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				return db
			}
			db := open()
			seed(t, db)
			paid := env(false, sync.Cloud, row{"payments", "PAY1", map[string]string{"patient_id": "P1", "business_type": "consultation", "total": "2000", "refunded": "0", "status": "paid"}})
			accepted := env(false, sync.Cloud, row{"visits", "V1", map[string]string{"patient_id": "P1", "doctor_id": "doc1", "status": "in_progress"}})
			follow(t, db, notices.NewFeed(), paid, accepted)
			db.Close() // stopped before the worker ran

			db = open()
			svc := &notices.Service{DB: db}
			if n := process(t, svc); n != 2 {
				t.Fatalf("after restart processed %d", n)
			}
			if got := titles(list(t, svc, a1)); got != "医生已接诊|支付成功" {
				t.Fatalf("A1: %s", got)
			}
			// The same changes again (a redelivery): nothing new.
			follow(t, db, notices.NewFeed(), paid, accepted)
			db.Close()

			db = open()
			defer db.Close()
			svc = &notices.Service{DB: db}
			if n := process(t, svc); n != 2 {
				t.Fatalf("second restart processed %d", n)
			}
			if n := process(t, svc); n != 0 {
				t.Fatalf("processed again %d", n)
			}
			if got := titles(list(t, svc, a1)); got != "医生已接诊|支付成功" {
				t.Fatalf("A1 after redelivery: %s", got)
			}
			var total, seq int64
			db.QueryRow(`SELECT COUNT(*) FROM notices`).Scan(&total)
			db.QueryRow(`SELECT value FROM notice_state WHERE name = 'seq'`).Scan(&seq)
			if total != 4 || seq != 4 { // A1 and A2, two each
				t.Fatalf("%d notices, seq %d", total, seq)
			}
		})
	}
}

// TestStreamFill: a stream sends the notices made after it opened, each
// once, with the unread count; a patient session's stream carries its own
// account's only.
func TestStreamFill(t *testing.T) {
	db := sqldbtest.SQLite(t)
	seed(t, db)
	feed := notices.NewFeed()
	hub := visits.NewHub()
	svc := &notices.Service{DB: db, Visits: &visits.Service{Hub: hub}}
	follow(t, db, feed, env(false, sync.Cloud, row{"visits", "V1", map[string]string{"patient_id": "P1", "doctor_id": "doc1", "status": "in_progress"}}))
	process(t, svc) // before the stream opens: not sent

	req := httptest.NewRequest("GET", "/api/events", nil)
	req = req.WithContext(ihos.WithActor(req.Context(), ihos.Actor{UserID: "A1", Role: "patient"}))
	fill := svc.Stream(req, visits.Party{Role: visits.RolePatient, ID: "P1"})
	type ev struct {
		name string
		p    notices.Pushed
	}
	var got []ev
	emit := func(name string, v any) { got = append(got, ev{name, v.(notices.Pushed)}) }
	if err := fill(context.Background(), emit); err != nil || len(got) != 0 {
		t.Fatalf("at open: %v %v", got, err)
	}
	follow(t, db, feed, env(false, sync.Cloud, msg("M1", "doctor", "text", "您好")))
	process(t, svc)
	follow(t, db, feed, env(false, sync.Cloud, msg("M2", "doctor", "text", "在吗")))
	process(t, svc)
	if err := fill(context.Background(), emit); err != nil {
		t.Fatal(err)
	}
	// The notice was made, then updated: it comes once, as it stands now.
	if len(got) != 1 || got[0].name != "notice" || got[0].p.Title != "张医生发来 2 条新消息" || got[0].p.Unread != 2 {
		t.Fatalf("pushed %+v", got)
	}
	got = nil
	if err := fill(context.Background(), emit); err != nil || len(got) != 0 {
		t.Fatalf("again: %+v %v", got, err)
	}
	// A staff tool acting for P1 hears both accounts'.
	fillAll := svc.Stream(httptest.NewRequest("GET", "/api/events?notice_after=0", nil), visits.Party{Role: visits.RolePatient, ID: "P1"})
	if err := fillAll(context.Background(), emit); err != nil || len(got) != 4 {
		t.Fatalf("both accounts from 0: %d %v", len(got), err)
	}
}
