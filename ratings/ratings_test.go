package ratings_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/ratings"
	"ihos/sync"
)

const hosp = "h1"

// rig is a cloud database with the rows the visits, accounts and the
// hospital's master data would have written.
type rig struct {
	t   testing.TB
	db  *sqldb.DB
	svc *ratings.Service
	rep *sync.Replica
}

func newRig(t testing.TB, db *sqldb.DB) *rig {
	t.Helper()
	rep, err := sync.NewReplica(context.Background(), db, sync.Cloud, "cloud", sync.NewRegistry(ratings.Entities()...))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, db: db, rep: rep}
	r.svc = &ratings.Service{DB: db, Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
		return rep.Capture(ctx, tx, "", refs...)
	}}
	r.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES ('d1', ?, 'i1', 'NK', '内科', '临床', 1, 1, 1, ?, ?)`, hosp, stamp(), stamp())
	return r
}

func stamp() string { return ihos.FormatTime(time.Now()) }

func (r *rig) exec(q string, args ...any) {
	r.t.Helper()
	if err := r.db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	}); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

func (r *rig) doctor(id, name string) {
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, online, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'i1', 'd1', ?, ?, 'doctor', '主任医师', '', 1, 1, 1, ?, ?)`, id, hosp, "J"+id, name, stamp(), stamp())
}

// member puts patient (named name) on account.
func (r *rig) member(account, patient, name string) {
	r.exec(`INSERT INTO patients (id, hospital_id, name, version, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?)`, patient, hosp, name, stamp(), stamp())
	r.exec(`INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, birth_date, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'self', '1980-01-01', ?, ?)`, ihos.NewID(), account, hosp, patient, stamp(), stamp())
}

func (r *rig) visit(id, patient, doctor, status string) {
	r.exec(`INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'd1', 'text', ?, ?, 1, ?, ?)`, id, hosp, "B"+id, patient, doctor, status, stamp(), stamp(), stamp())
}

func code(err error) string { return ihos.ErrorCode(err) }

func message(err error) string {
	var e *ihos.Error
	if errors.As(err, &e) {
		return e.Message
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestRateRules checks each rule of rating: valid input, the visit's own
// account only (anyone else's is not found), ended visits only, once.
func TestRateRules(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		r.doctor("doc1", "张医生")
		r.member("A1", "P1", "张三")
		r.member("A2", "P2", "欧阳娜娜")
		r.visit("V1", "P1", "doc1", "ended")
		r.visit("V2", "P1", "doc1", "waiting")
		r.visit("V3", "P1", "doc1", "cancelled")
		r.visit("V4", "P2", "doc1", "ended")
		r.visit("V5", "P1", "doc1", "in_progress")

		for _, c := range []struct {
			in    ratings.Input
			field string
		}{
			{ratings.Input{Score: 0}, "score"},
			{ratings.Input{Score: 6}, "score"},
			{ratings.Input{Score: 5, Comment: strings.Repeat("好", 501)}, "comment"},
			{ratings.Input{Score: 5, Tags: []string{"态度亲切", "随便写的"}}, "tags"},
			{ratings.Input{Score: 5, Tags: ratings.Tags[:6]}, "tags"},
		} {
			_, err := r.svc.Rate(ctx, "A1", "V1", c.in)
			var e *ihos.Error
			if !errors.As(err, &e) || e.Code != ihos.EInvalid || e.Fields[c.field] == "" {
				t.Errorf("%+v: %v, want invalid %s", c.in, err, c.field)
			}
		}
		good := ratings.Input{Score: 4, Comment: "  医生很耐心  ", Tags: []string{"耐心细致", "解答专业", "耐心细致", "态度和蔼"}}
		for _, c := range []struct {
			account, visit, code, msg string
		}{
			{"A2", "V1", ihos.ENotFound, "问诊不存在"}, // another account's visit
			{"A1", "nope", ihos.ENotFound, "问诊不存在"},
			{"A1", "V2", ihos.EConflict, "问诊结束后才能评价"},
			{"A1", "V5", ihos.EConflict, "问诊结束后才能评价"},
			{"A1", "V3", ihos.EConflict, "已取消的问诊不能评价"},
		} {
			if _, err := r.svc.Rate(ctx, c.account, c.visit, good); code(err) != c.code || message(err) != c.msg {
				t.Errorf("%s rates %s: %v, want %s %s", c.account, c.visit, err, c.code, c.msg)
			}
		}
		rt, err := r.svc.Rate(ctx, "A1", "V1", good)
		if err != nil {
			t.Fatal(err)
		}
		if rt.Score != 4 || rt.Comment != "医生很耐心" || fmt.Sprint(rt.Tags) != "[耐心细致 解答专业 态度亲切]" || rt.DoctorID != "doc1" || rt.PatientID != "P1" {
			t.Fatalf("rating %+v", rt)
		}
		if _, err := r.svc.Rate(ctx, "A1", "V1", ratings.Input{Score: 1}); code(err) != ihos.EConflict || message(err) != "已评价" {
			t.Fatalf("second rating: %v", err)
		}
		if _, err := r.svc.Rate(ctx, "A2", "V4", ratings.Input{Score: 5}); err != nil {
			t.Fatal(err)
		}
		// The aggregate the doctor list reads.
		var count, sum int64
		if err := db.QueryRow(`SELECT rating_count, score_sum FROM doctor_stats WHERE doctor_id = 'doc1'`).Scan(&count, &sum); err != nil || count != 2 || sum != 9 {
			t.Fatalf("stats %d %d %v", count, sum, err)
		}
		sm, err := r.svc.Doctor(ctx, "doc1", 10, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if sm.Average != 4.5 || sm.Count != 2 || len(sm.Items) != 2 || sm.Items[0].Patient != "欧***" || sm.Items[1].Patient != "张*" ||
			sm.Items[1].Comment != "医生很耐心" || len(sm.Items[0].Tags) != 0 {
			t.Fatalf("summary %+v", sm)
		}
		if page, err := r.svc.Doctor(ctx, "doc1", 10, sm.Items[0].CreatedAt); err != nil || len(page.Items) != 1 || page.Items[0].Patient != "张*" {
			t.Fatalf("next page %+v %v", page, err)
		}
		if got, err := r.svc.OfVisit(ctx, "A1", "V1"); err != nil || got.ID != rt.ID {
			t.Fatalf("own rating %+v %v", got, err)
		}
		if _, err := r.svc.OfVisit(ctx, "A2", "V1"); code(err) != ihos.ENotFound {
			t.Fatalf("another's rating: %v", err)
		}
		// Replicated to the appliance without the account; audited.
		var payload string
		if err := db.QueryRow(`SELECT payload FROM sync_capture WHERE payload LIKE ?`, "%"+rt.ID+"%").Scan(&payload); err != nil {
			t.Fatalf("captured: %v", err)
		}
		if !strings.Contains(payload, `"entity":"ratings"`) || strings.Contains(payload, "account_id") || strings.Contains(payload, "A1") {
			t.Fatalf("payload %s", payload)
		}
		var audited int
		db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE resource = 'ratings' AND record_id = ?`, rt.ID).Scan(&audited)
		if audited != 1 {
			t.Fatalf("%d audit entries", audited)
		}
	})
}

// envelope is a change of visit rows as the feed sees it.
func envelope(snapshot bool, rows ...map[string]string) *sync.Envelope {
	env := &sync.Envelope{ChangeID: ihos.NewID(), Hospital: hosp, Origin: "cloud", Side: sync.Cloud, At: time.Now().UTC(), Snapshot: snapshot}
	for _, v := range rows {
		vals := map[string]*string{}
		for k, s := range v {
			vals[k] = &s
		}
		env.Rows = append(env.Rows, sync.RowChange{Entity: "visits", ID: v["id"], Version: 1, Values: vals})
	}
	return env
}

// TestFollowCountsEndedVisits: each ended visit counts once into its
// doctor's volume, however often its row passes the feed.
func TestFollowCountsEndedVisits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		follow := func(envs ...*sync.Envelope) {
			t.Helper()
			if err := db.Tx(ctx, func(tx *sql.Tx) error { return ratings.Follow(ctx, tx, envs) }); err != nil {
				t.Fatal(err)
			}
		}
		ended := map[string]string{"id": "V1", "doctor_id": "doc1", "status": "ended"}
		follow(envelope(false, map[string]string{"id": "V1", "doctor_id": "doc1", "status": "in_progress"}))
		follow(envelope(false, ended), envelope(false, map[string]string{"id": "V2", "doctor_id": "doc1", "status": "ended"}))
		follow(envelope(false, ended))                                                                 // the row again (another change of it)
		follow(envelope(true, map[string]string{"id": "V3", "doctor_id": "doc1", "status": "ended"}))  // a resync: not news
		follow(envelope(false, map[string]string{"id": "V4", "doctor_id": "doc2", "status": "ended"})) // another doctor
		for doc, want := range map[string]int{"doc1": 2, "doc2": 1} {
			var n int
			if err := db.QueryRow(`SELECT visit_count FROM doctor_stats WHERE doctor_id = ?`, doc).Scan(&n); err != nil || n != want {
				t.Errorf("%s: %d visits (%v), want %d", doc, n, err, want)
			}
		}
	})
}

// Sizes of the doctor list measurement.
const doctors, n = 40, 10000

// seedVolume writes doctors doc00…doc39 with 10,000 ratings, 10,000 ended
// visits and 10,000 bookings, and their aggregate, as years of use leave
// them: each doctor's ratings average between 3 and 5, doc39 has the most visits.
func seedVolume(t testing.TB, ctx context.Context, r *rig, db *sqldb.DB) {
	t.Helper()
	for i := range doctors {
		r.doctor(fmt.Sprintf("doc%02d", i), fmt.Sprintf("医生%02d", i))
	}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UTC()
		var args []any
		flush := func(q string, per int) error {
			if len(args) == 0 {
				return nil
			}
			_, err := tx.Exec(q+strings.TrimSuffix(strings.Repeat("("+strings.TrimSuffix(strings.Repeat("?, ", per), ", ")+"), ", len(args)/per), ", "), args...)
			args = args[:0]
			return err
		}
		for i := range n {
			doc := fmt.Sprintf("doc%02d", i%doctors)
			score := 3 + (i%doctors)*2/doctors
			if i%7 == 0 {
				score = min(5, score+1)
			}
			at := ihos.FormatTime(now.Add(-time.Duration(i) * time.Minute))
			v := fmt.Sprintf("BV%05d", i)
			args = append(args, ihos.NewID(), hosp, v, doc, "P1", score, "", "[]", 1, at, at)
			if len(args) >= 11*200 {
				if err := flush(`INSERT INTO ratings (id, hospital_id, visit_id, doctor_id, patient_id, score, comment, tags, version, created_at, updated_at) VALUES `, 11); err != nil {
					return err
				}
			}
		}
		if err := flush(`INSERT INTO ratings (id, hospital_id, visit_id, doctor_id, patient_id, score, comment, tags, version, created_at, updated_at) VALUES `, 11); err != nil {
			return err
		}
		for i := range n {
			doc := fmt.Sprintf("doc%02d", i%doctors)
			if i%3 == 0 {
				doc = "doc39" // the busiest
			}
			at := ihos.FormatTime(now.Add(-time.Duration(i) * time.Minute))
			args = append(args, fmt.Sprintf("BV%05d", i), hosp, "B"+fmt.Sprint(i), "P1", doc, "d1", "text", "ended", at, 1, at, at)
			if len(args) >= 12*200 {
				if err := flush(`INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at, version, created_at, updated_at) VALUES `, 12); err != nil {
					return err
				}
			}
		}
		if err := flush(`INSERT INTO visits (id, hospital_id, booking_id, patient_id, doctor_id, department_id, visit_type, status, booked_at, version, created_at, updated_at) VALUES `, 12); err != nil {
			return err
		}
		// As many bookings (the list's "consultations").
		for i := range n {
			doc := fmt.Sprintf("doc%02d", i%doctors)
			at := ihos.FormatTime(now.Add(-time.Duration(i) * time.Minute))
			args = append(args, "B"+fmt.Sprint(i), hosp, "slot"+fmt.Sprint(i), "s1", doc, "d1", "P1", "text", at, at, "booked", 1, at, at)
			if len(args) >= 14*150 {
				if err := flush(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at, status, version, created_at, updated_at) VALUES `, 14); err != nil {
					return err
				}
			}
		}
		if err := flush(`INSERT INTO bookings (id, hospital_id, slot_id, schedule_id, staff_id, department_id, patient_id, visit_type, start_at, end_at, status, version, created_at, updated_at) VALUES `, 14); err != nil {
			return err
		}
		// The aggregate as Rate and Follow keep it.
		_, err := tx.Exec(`INSERT INTO doctor_stats (doctor_id, rating_count, score_sum, visit_count, updated_at)
			SELECT r.doctor_id, COUNT(*), SUM(r.score), (SELECT COUNT(*) FROM visits v WHERE v.doctor_id = r.doctor_id AND v.status = 'ended'), ?
			FROM ratings r GROUP BY r.doctor_id`, stamp())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDoctorListTenThousandRatings measures the public doctor list sorted by
// rating and by volume over 10,000 ratings and 10,000 ended visits: it reads
// the aggregate, one row per doctor, so it costs what the list without
// ratings costs. A sample rated through Rate shows the aggregate matches a
// recount.
func TestDoctorListTenThousandRatings(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		r := newRig(t, db)
		seedVolume(t, ctx, r, db)
		// A sample through Rate: the aggregate stays equal to a recount.
		r.member("A1", "P9", "李四")
		for i := range 20 {
			v := fmt.Sprintf("RV%02d", i)
			r.visit(v, "P9", "doc00", "ended")
			if _, err := r.svc.Rate(ctx, "A1", v, ratings.Input{Score: 1 + i%5}); err != nil {
				t.Fatal(err)
			}
		}
		var cnt, sum, recount, resum int64
		db.QueryRow(`SELECT rating_count, score_sum FROM doctor_stats WHERE doctor_id = 'doc00'`).Scan(&cnt, &sum)
		db.QueryRow(`SELECT COUNT(*), SUM(score) FROM ratings WHERE doctor_id = 'doc00'`).Scan(&recount, &resum)
		if cnt != recount || sum != resum {
			t.Fatalf("aggregate %d/%d, recount %d/%d", cnt, sum, recount, resum)
		}

		svc := &booking.Service{DB: db}
		timeIt := func(q booking.DoctorQuery) (*booking.DoctorPage, time.Duration) {
			t.Helper()
			const rounds = 20
			var page *booking.DoctorPage
			start := time.Now()
			for range rounds {
				var err error
				if page, err = svc.Doctors(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			return page, time.Since(start) / rounds
		}
		plain, tPlain := timeIt(booking.DoctorQuery{PageSize: 20})
		byRating, tRating := timeIt(booking.DoctorQuery{Sort: "rating", PageSize: 20})
		byVolume, tVolume := timeIt(booking.DoctorQuery{Sort: "volume", PageSize: 20})
		// For comparison, what counting at every request would cost (the
		// aggregate's query, on the raw tables).
		start := time.Now()
		for range 20 {
			rows, err := db.QueryContext(ctx, `SELECT s.id, (SELECT AVG(score) FROM ratings r WHERE r.doctor_id = s.id) a,
				(SELECT COUNT(*) FROM visits v WHERE v.doctor_id = s.id AND v.status = 'ended') c FROM staff s ORDER BY a DESC LIMIT 20`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
		}
		t.Logf("%s: doctor list over %d ratings / %d ended visits: plain %v, sort=rating %v, sort=volume %v per request (counting per request instead: %v for the counts alone)",
			db.Engine, n, n, tPlain, tRating, tVolume, time.Since(start)/20)
		if plain.Total != doctors || len(byRating.Items) != 20 {
			t.Fatalf("pages %d %d", plain.Total, len(byRating.Items))
		}
		ratingsOf := func(p *booking.DoctorPage) []float64 {
			var out []float64
			for _, d := range p.Items {
				out = append(out, d.Rating)
			}
			return out
		}
		if got := ratingsOf(byRating); !slices.IsSortedFunc(got, func(a, b float64) int { return -cmpFloat(a, b) }) || got[0] < 4 {
			t.Fatalf("by rating: %v", got)
		}
		for i := 1; i < len(byVolume.Items); i++ {
			if byVolume.Items[i].VisitCount > byVolume.Items[i-1].VisitCount {
				t.Fatalf("by volume out of order at %d", i)
			}
		}
		var busiest int64
		db.QueryRow(`SELECT COUNT(*) FROM visits WHERE doctor_id = 'doc39' AND status = 'ended'`).Scan(&busiest)
		if top := byVolume.Items[0]; top.ID != "doc39" || top.VisitCount != busiest || top.RatingCount != n/doctors {
			t.Fatalf("top by volume %+v (%d %d)", top.Doctor, top.VisitCount, top.RatingCount)
		}
		// Sorting reads one aggregate row per doctor: no slower than a small
		// multiple of the plain list (generous for a busy test machine).
		if tRating > 5*tPlain+20*time.Millisecond || tVolume > 5*tPlain+20*time.Millisecond {
			t.Fatalf("sorting is slow: plain %v, rating %v, volume %v", tPlain, tRating, tVolume)
		}
	})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// BenchmarkDoctorList measures the public doctor list, plain and sorted by
// rating and by volume, over 10,000 ratings, ended visits and bookings
// (make bench).
func BenchmarkDoctorList(b *testing.B) {
	for _, engine := range []string{sqldb.SQLite, sqldb.MySQL} {
		b.Run(engine, func(b *testing.B) {
			db := sqldbtest.SQLite(b)
			if engine == sqldb.MySQL {
				db = sqldbtest.MySQL(b)
			}
			ctx := context.Background()
			seedVolume(b, ctx, newRig(b, db), db)
			svc := &booking.Service{DB: db}
			for _, sort := range []string{"", "rating", "volume"} {
				b.Run("sort="+sort, func(b *testing.B) {
					for b.Loop() {
						if _, err := svc.Doctors(ctx, booking.DoctorQuery{Sort: sort, PageSize: 20}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
