package payments

import (
	"context"
	"net/url"
	"testing"
	"time"

	"ihos"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// statRow is a payments row as the replica receives it, written directly.
type statRow struct {
	id, dept, doctor, patient, channel, bt, status string
	total, fund, account, cash, refunded           int64
	created, paid                                  time.Time
	deleted                                        bool
}

// sh is a wall-clock time in Shanghai.
func sh(day, clock string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", day+" "+clock, ihos.Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func insertStatRows(t testing.TB, db *sqldb.DB, rows ...statRow) {
	t.Helper()
	for _, r := range rows {
		var paid, deleted any
		if !r.paid.IsZero() {
			paid = ihos.FormatTime(r.paid)
		}
		if r.deleted {
			deleted = ihos.FormatTime(r.created)
		}
		_, err := db.ExecContext(context.Background(), `INSERT INTO payments (id, hospital_id, business_type, business_id, patient_id, doctor_id,
			department_id, channel, subject, total, fund_pay, account_pay, cash_pay, refunded, refunding, status, out_trade_no, insurance_key,
			ins_status, cash_status, transaction_id, needs_confirm, ending, deadline, attempts, last_error, version, created_at, paid_at, updated_at, deleted_at)
			VALUES (?, 'H1', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, '', 'none', 'done', ?, 0, '', ?, 0, '', 1, ?, ?, ?, ?)`,
			r.id, r.bt, "B-"+r.id, r.patient, r.doctor, r.dept, r.channel, ihos.BusinessTypeLabels[r.bt], r.total, r.fund, r.account, r.cash,
			r.refunded, r.status, "T"+r.id, "WX"+r.id, ihos.FormatTime(r.created.Add(30*time.Minute)), ihos.FormatTime(r.created), paid,
			ihos.FormatTime(r.created), deleted)
		if err != nil {
			t.Fatalf("insert %s: %v", r.id, err)
		}
	}
}

func insertDepartment(t testing.TB, db *sqldb.DB, id, name string) {
	t.Helper()
	now := ihos.FormatTime(time.Now())
	if _, err := db.ExecContext(context.Background(), `INSERT INTO departments (id, institution_id, code, name, created_at, updated_at)
		VALUES (?, 'I1', ?, ?, ?, ?)`, id, "C"+id, name, now, now); err != nil {
		t.Fatal(err)
	}
}

// statFixture is three Shanghai days of payments in two departments, with
// payments just outside the period on either side, ones that took no money
// and a deleted one.
func statFixture(t testing.TB, db *sqldb.DB) {
	t.Helper()
	insertDepartment(t, db, "D1", "内科")
	insertStatRows(t, db,
		// 00:30 in Shanghai is the previous day in UTC: it belongs to the 10th.
		statRow{id: "p1", dept: "D1", doctor: "DOC1", patient: "P1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			total: 1000, cash: 1000, created: sh("2025-03-10", "00:20"), paid: sh("2025-03-10", "00:30")},
		statRow{id: "p2", dept: "D1", doctor: "DOC1", patient: "P2", channel: ihos.ChannelInsuranceMobile, bt: ihos.PayPrescription, status: ihos.PaymentPaid,
			total: 3000, fund: 2000, account: 500, cash: 500, created: sh("2025-03-10", "23:40"), paid: sh("2025-03-10", "23:50")},
		statRow{id: "p3", dept: "D2", doctor: "DOC2", patient: "P1", channel: ihos.ChannelSelfPay, bt: ihos.PayNursingOrder, status: ihos.PaymentPartiallyRefunded,
			total: 2000, cash: 2000, refunded: 500, created: sh("2025-03-11", "07:59"), paid: sh("2025-03-11", "08:00")},
		statRow{id: "p4", dept: "D2", doctor: "DOC2", patient: "P3", channel: ihos.ChannelInsuranceSite, bt: ihos.PayVisitFee, status: ihos.PaymentRefunded,
			total: 1500, fund: 1000, account: 300, cash: 200, refunded: 1500, created: sh("2025-03-12", "11:58"), paid: sh("2025-03-12", "12:00")},
		// No money taken: not counted.
		statRow{id: "p5", dept: "D1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentFailed,
			total: 500, cash: 500, created: sh("2025-03-11", "09:00")},
		statRow{id: "p6", dept: "D2", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentCreated,
			total: 700, cash: 700, created: sh("2025-03-11", "10:00")},
		// Outside the period: 00:10 on the 13th is still the 12th in UTC.
		statRow{id: "p7", dept: "D1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			total: 900, cash: 900, created: sh("2025-03-13", "00:05"), paid: sh("2025-03-13", "00:10")},
		statRow{id: "p8", dept: "D1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			total: 800, cash: 800, created: sh("2025-03-09", "23:50"), paid: sh("2025-03-09", "23:59")},
		// Created on the 12th but paid at 00:01 on the 13th: counted on the 13th, not in the period.
		statRow{id: "p9", dept: "D1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			total: 600, cash: 600, created: sh("2025-03-12", "23:59"), paid: sh("2025-03-13", "00:01")},
		statRow{id: "p10", dept: "D1", channel: ihos.ChannelSelfPay, bt: ihos.PayConsultation, status: ihos.PaymentPaid,
			total: 400, cash: 400, created: sh("2025-03-11", "12:00"), paid: sh("2025-03-11", "12:01"), deleted: true},
	)
}

func mustFilter(t testing.TB, q string) Filter {
	t.Helper()
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFilter(v)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func byKey(rows []StatsRow) map[string]StatsRow {
	m := map[string]StatsRow{}
	for _, r := range rows {
		m[r.Key] = r
	}
	return m
}

func TestStats(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		statFixture(t, db)
		s := &Service{DB: db}
		st, err := s.Stats(ctx, mustFilter(t, "from=2025-03-10&to=2025-03-12"))
		if err != nil {
			t.Fatal(err)
		}
		want := Sums{Count: 4, Total: 7500, Fund: 3000, Account: 800, Cash: 3700, Refunded: 2000}
		if st.Overall != want {
			t.Errorf("overall %+v, want %+v", st.Overall, want)
		}
		if st.Overall.Net() != 5500 {
			t.Errorf("net %d", st.Overall.Net())
		}
		wantDays := []StatsRow{
			{Key: "2025-03-10", Label: "2025-03-10 周一", Sums: Sums{Count: 2, Total: 4000, Fund: 2000, Account: 500, Cash: 1500}},
			{Key: "2025-03-11", Label: "2025-03-11 周二", Sums: Sums{Count: 1, Total: 2000, Cash: 2000, Refunded: 500}},
			{Key: "2025-03-12", Label: "2025-03-12 周三", Sums: Sums{Count: 1, Total: 1500, Fund: 1000, Account: 300, Cash: 200, Refunded: 1500}},
		}
		if len(st.Days) != len(wantDays) {
			t.Fatalf("days %+v", st.Days)
		}
		for i, d := range wantDays {
			if st.Days[i] != d {
				t.Errorf("day %d: %+v, want %+v", i, st.Days[i], d)
			}
		}
		depts := byKey(st.Departments)
		if d := depts["D1"]; d.Label != "内科" || d.Sums != (Sums{Count: 2, Total: 4000, Fund: 2000, Account: 500, Cash: 1500}) {
			t.Errorf("D1 %+v", d)
		}
		if d := depts["D2"]; d.Label != "D2" || d.Sums != (Sums{Count: 2, Total: 3500, Fund: 1000, Account: 300, Cash: 2200, Refunded: 2000}) {
			t.Errorf("D2 %+v", d)
		}
		if len(st.Departments) != 2 || st.Departments[0].Key != "D1" {
			t.Errorf("departments not largest first: %+v", st.Departments)
		}
		ch := byKey(st.Channels)
		if c := ch[ihos.ChannelSelfPay]; c.Label != "自费支付" || c.Count != 2 || c.Total != 3000 || c.Refunded != 500 {
			t.Errorf("selfpay %+v", c)
		}
		if c := ch[ihos.ChannelInsuranceMobile]; c.Count != 1 || c.Fund != 2000 || c.Account != 500 {
			t.Errorf("insurance_mobile %+v", c)
		}
		if c := ch[ihos.ChannelInsuranceSite]; c.Label != "医保电子凭证" || c.Count != 1 || c.Total != 1500 {
			t.Errorf("insurance_site %+v", c)
		}
		if bt := byKey(st.BusinessTypes); bt[ihos.PayPrescription].Label != "处方" || bt[ihos.PayPrescription].Total != 3000 || len(bt) != 4 {
			t.Errorf("business types %+v", st.BusinessTypes)
		}

		// The 13th alone: the payment paid at 00:10 and the one created on the
		// 12th but paid after midnight.
		st, err = s.Stats(ctx, mustFilter(t, "from=2025-03-13&to=2025-03-13"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Overall.Count != 2 || st.Overall.Total != 1500 || len(st.Days) != 1 {
			t.Errorf("the 13th: %+v %+v", st.Overall, st.Days)
		}

		// Filters narrow the sums; a department-scoped actor sees their own.
		st, err = s.Stats(ctx, mustFilter(t, "from=2025-03-10&to=2025-03-12&channel=selfpay&status=failed"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Overall.Count != 2 || st.Overall.Total != 3000 {
			t.Errorf("selfpay only (status ignored): %+v", st.Overall)
		}
		scoped := ihos.WithActor(ctx, ihos.Actor{UserID: "u", Username: "dept", Scoped: true, DepartmentID: "D2"})
		st, err = s.Stats(scoped, mustFilter(t, "from=2025-03-01&to=2025-03-31"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Overall.Count != 2 || st.Overall.Total != 3500 || len(st.Departments) != 1 || len(st.Days) != 31 {
			t.Errorf("scoped to D2: %+v, %d departments, %d days", st.Overall, len(st.Departments), len(st.Days))
		}

		// An empty period still lists its days.
		st, err = s.Stats(ctx, mustFilter(t, "from=2024-02-27&to=2024-03-01"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Overall.Count != 0 || len(st.Days) != 4 || st.Days[2].Key != "2024-02-29" || len(st.Departments) != 0 {
			t.Errorf("empty period: %+v %+v", st.Overall, st.Days)
		}
	})
}

func TestStatsRefusesBadPeriods(t *testing.T) {
	s := &Service{DB: sqldbtest.SQLite(t)}
	ctx := context.Background()
	for _, q := range []string{"", "from=2025-03-10", "from=2025-03-10&to=2025-03-09", "from=2024-01-01&to=2025-06-30"} {
		if _, err := s.Stats(ctx, mustFilter(t, q)); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Errorf("%q: %v, want invalid", q, err)
		}
	}
	// The page's filter defaults to this month so far.
	s.Now = func() time.Time { return sh("2025-03-01", "03:00") }
	f, err := s.statsFilter(url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	if from, to := console.Dates(f.From, f.To); from != "2025-03-01" || to != "2025-03-01" {
		t.Errorf("default period %s to %s", from, to)
	}
}
