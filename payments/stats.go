package payments

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"ihos"
	"ihos/internal/console"
)

// TakingStatuses are the statuses of payments whose money was taken: only
// these count in the statistics. A refunded payment still counts, with its
// refunds shown beside it, so the day's takings do not change afterwards.
var TakingStatuses = []string{ihos.PaymentPaid, ihos.PaymentPartiallyRefunded, ihos.PaymentRefunded}

// MaxStatsDays bounds the range of one statistics query.
const MaxStatsDays = 366

// Sums are the counts and amounts (fen) of a group of payments.
type Sums struct {
	Count    int   `json:"count"`
	Total    int64 `json:"total"`
	Fund     int64 `json:"fund_pay"`
	Account  int64 `json:"account_pay"`
	Cash     int64 `json:"cash_pay"`
	Refunded int64 `json:"refunded"`
}

// Net is what was taken and not given back.
func (s Sums) Net() int64 { return s.Total - s.Refunded }

func (s *Sums) add(o Sums) {
	s.Count += o.Count
	s.Total += o.Total
	s.Fund += o.Fund
	s.Account += o.Account
	s.Cash += o.Cash
	s.Refunded += o.Refunded
}

// StatsRow is the sums of one day, department, channel or business type.
type StatsRow struct {
	Key   string `json:"key"`
	Label string `json:"label"`
	Sums
}

// Stats are the insurance operating statistics (医保运营统计) of a period:
// the takings overall, per day (Asia/Shanghai), per department, per channel
// and per business type. A payment belongs to the moment it was paid.
type Stats struct {
	From          time.Time  `json:"from"`
	To            time.Time  `json:"to"` // exclusive
	Overall       Sums       `json:"overall"`
	Days          []StatsRow `json:"days"` // every day of the period, oldest first
	Departments   []StatsRow `json:"departments"`
	Channels      []StatsRow `json:"channels"`
	BusinessTypes []StatsRow `json:"business_types"`
}

// Stats sums the payments paid in [f.From, f.To) with a taking status,
// narrowed by f's channel, department, doctor, patient and business type
// (f.Status and paging are ignored). A department-scoped actor sees only
// their department.
//
// The database groups by UTC hour (the first 13 characters of the stored
// RFC 3339 time, which both SQLite and MariaDB cut the same way) and Go rolls
// the hours up into Shanghai days: no engine-specific date function, and exact
// because Shanghai is a whole number of hours from UTC.
func (s *Service) Stats(ctx context.Context, f Filter) (*Stats, error) {
	if f.From.IsZero() || f.To.IsZero() {
		return nil, ihos.Errorf(ihos.EInvalid, "请选择统计的起止日期")
	}
	if !f.To.After(f.From) {
		return nil, ihos.Errorf(ihos.EInvalid, "结束日期不能早于开始日期")
	}
	if f.To.Sub(f.From) > MaxStatsDays*24*time.Hour {
		return nil, ihos.Errorf(ihos.EInvalid, "统计区间最长 %d 天", MaxStatsDays)
	}
	f.Status = ""
	const at = "COALESCE(paid_at, created_at)"
	const hour = "SUBSTR(" + at + ", 1, 13)"
	cond, args := adminWhere(ctx, f, at)
	cond += " AND status IN (?, ?, ?)"
	for _, st := range TakingStatuses {
		args = append(args, st)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+hour+`, department_id, channel, business_type,
		COUNT(*), SUM(total), SUM(fund_pay), SUM(account_pay), SUM(cash_pay), SUM(refunded)
		FROM payments`+cond+` GROUP BY `+hour+`, department_id, channel, business_type`, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	days, depts, channels, types := map[string]*Sums{}, map[string]*Sums{}, map[string]*Sums{}, map[string]*Sums{}
	at1 := func(m map[string]*Sums, k string, v Sums) {
		if m[k] == nil {
			m[k] = &Sums{}
		}
		m[k].add(v)
	}
	st := &Stats{From: f.From, To: f.To}
	for rows.Next() {
		var h, dept, ch, bt string
		var v Sums
		if err := rows.Scan(&h, &dept, &ch, &bt, &v.Count, &v.Total, &v.Fund, &v.Account, &v.Cash, &v.Refunded); err != nil {
			return nil, ihos.Internal(err)
		}
		t, err := time.Parse("2006-01-02T15", h)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		st.Overall.add(v)
		at1(days, t.In(ihos.Shanghai).Format(time.DateOnly), v)
		at1(depts, dept, v)
		at1(channels, ch, v)
		at1(types, bt, v)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}

	// Every day of the period, with or without takings.
	last := f.To.Add(-time.Nanosecond).In(ihos.Shanghai)
	for d := f.From.In(ihos.Shanghai); ; d = d.AddDate(0, 0, 1) {
		key := d.Format(time.DateOnly)
		if key > last.Format(time.DateOnly) {
			break
		}
		row := StatsRow{Key: key, Label: key + " " + weekdays[d.Weekday()]}
		if v := days[key]; v != nil {
			row.Sums = *v
		}
		st.Days = append(st.Days, row)
	}

	ids := make([]string, 0, len(depts))
	for id := range depts {
		ids = append(ids, id)
	}
	names, err := console.Names(ctx, s.DB, "departments", ids)
	if err != nil {
		return nil, err
	}
	st.Departments = statsRows(depts, func(k string) string { return departmentLabel(k, names) })
	st.Channels = statsRows(channels, func(k string) string { return labelOr(ihos.ChannelLabels, k) })
	st.BusinessTypes = statsRows(types, func(k string) string { return labelOr(ihos.BusinessTypeLabels, k) })
	return st, nil
}

var weekdays = [...]string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// statsRows lists m largest total first (then by label, for a stable order).
func statsRows(m map[string]*Sums, label func(string) string) []StatsRow {
	out := make([]StatsRow, 0, len(m))
	for k, v := range m {
		out = append(out, StatsRow{Key: k, Label: label(k), Sums: *v})
	}
	slices.SortFunc(out, func(a, b StatsRow) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), strings.Compare(a.Label, b.Label), strings.Compare(a.Key, b.Key))
	})
	return out
}

func labelOr(labels map[string]string, k string) string {
	if l := labels[k]; l != "" {
		return l
	}
	return k
}

func departmentLabel(id string, names map[string]string) string {
	if id == "" {
		return "未指定科室"
	}
	if n := names[id]; n != "" {
		return n
	}
	return id
}

// adminWhere is the WHERE clause of f for the console's queries, the same
// conditions as List's, on timeCol for the period: the filters, the
// department scope of a scoped actor, and not deleted.
func adminWhere(ctx context.Context, f Filter, timeCol string) (string, []any) {
	where := []string{"deleted_at IS NULL"}
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if !f.From.IsZero() {
		add(timeCol+" >= ?", ihos.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add(timeCol+" < ?", ihos.FormatTime(f.To))
	}
	for _, c := range []struct{ col, v string }{
		{"channel", f.Channel}, {"status", f.Status}, {"patient_id", f.PatientID}, {"doctor_id", f.DoctorID},
		{"department_id", f.DepartmentID}, {"business_type", f.BusinessType}, {"hospital_id", f.HospitalID},
	} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if a, ok := ihos.ActorFrom(ctx); ok && a.Scoped {
		dept := a.DepartmentID
		if dept == "" {
			dept = "-" // matches nothing
		}
		add("department_id = ?", dept)
	}
	return " WHERE " + strings.Join(where, " AND "), args
}
