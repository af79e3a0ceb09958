package appliance

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"ihos"
	"ihos/internal/console"
	"ihos/internal/export"
	"ihos/payments"
	"ihos/prescriptions"
	"ihos/visits"
)

// 医师工作量统计 and 医师接诊情况查询: the per-doctor statistics of a period,
// over the staff directory, with their tables for the downloads and their
// JSON.

// staffInfo is a doctor or pharmacist as the statistics name them.
type staffInfo struct {
	ID, Name, Kind, Title, JobNo, DepartmentID, DepartmentName string
	deptOrder                                                  int
}

// staffDirectory reads the doctors and pharmacists (deleted ones too: their
// past work still counts) and the departments' names and order.
func (o *onlineVisits) staffDirectory(ctx context.Context) (map[string]*staffInfo, error) {
	type dept struct {
		name  string
		order int
	}
	depts := map[string]dept{}
	err := o.each(ctx, `SELECT id, name, sort_order FROM departments`, nil, func(rows *sql.Rows) error {
		var id string
		var d dept
		if err := rows.Scan(&id, &d.name, &d.order); err != nil {
			return err
		}
		depts[id] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*staffInfo{}
	err = o.each(ctx, `SELECT id, name, kind, title, job_no, department_id FROM staff WHERE kind IN (?, ?)`,
		[]any{ihos.StaffDoctor, ihos.StaffPharmacist}, func(rows *sql.Rows) error {
			s := &staffInfo{}
			if err := rows.Scan(&s.ID, &s.Name, &s.Kind, &s.Title, &s.JobNo, &s.DepartmentID); err != nil {
				return err
			}
			d := depts[s.DepartmentID]
			s.DepartmentName, s.deptOrder = d.name, d.order
			if s.DepartmentName == "" {
				s.DepartmentName = "未指定科室"
			}
			out[s.ID] = s
			return nil
		})
	return out, err
}

// staffFor returns the directory entry of id, making one for an id the
// directory lacks (a doctor not yet replicated): the work is still counted.
func staffFor(dir map[string]*staffInfo, id string) *staffInfo {
	if s := dir[id]; s != nil {
		return s
	}
	s := &staffInfo{ID: id, Name: id, DepartmentName: "未指定科室", deptOrder: math.MaxInt32}
	dir[id] = s
	return s
}

// keep reports whether staff s belongs in a statistic narrowed to dept and
// doctor ("" for any). Statistics are per staff member, so a department is
// the staff member's own.
func keep(s *staffInfo, dept, doctor string) bool {
	return (dept == "" || s.DepartmentID == dept) && (doctor == "" || s.ID == doctor)
}

// listed are the staff members counted in counts that a statistic narrowed
// by f shows (a department administrator's department only), in the order
// of staffLess.
func listed[C any](ctx context.Context, dir map[string]*staffInfo, counts map[string]*C, f onlineFilter) []*staffInfo {
	dept := departmentFilter(ctx, f.DepartmentID)
	var staff []*staffInfo
	for id := range counts {
		if s := staffFor(dir, id); keep(s, dept, f.DoctorID) {
			staff = append(staff, s)
		}
	}
	slices.SortFunc(staff, staffLess)
	return staff
}

func staffLess(a, b *staffInfo) int {
	return cmp.Or(cmp.Compare(a.deptOrder, b.deptOrder), strings.Compare(a.DepartmentName, b.DepartmentName),
		cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)), strings.Compare(a.JobNo, b.JobNo), strings.Compare(a.ID, b.ID))
}

func kindOrder(k string) int {
	if k == ihos.StaffPharmacist {
		return 1
	}
	return 0
}

// scheduledDoctors are the doctors with an online schedule on a day of
// [from, to): they appear in the statistics even without work.
func (o *onlineVisits) scheduledDoctors(ctx context.Context, from, to time.Time) (map[string]bool, error) {
	first, last := console.Dates(from, to)
	out := map[string]bool{}
	err := o.each(ctx, `SELECT DISTINCT staff_id FROM online_schedules WHERE deleted_at IS NULL AND enabled = 1
		AND visit_date >= ? AND visit_date <= ?`, []any{first, last}, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		out[id] = true
		return nil
	})
	return out, err
}

// workCounts are one staff member's (or a group's) work in a period.
type workCounts struct {
	Text, Voice, Video int // visits ended
	RxIssued           int // prescriptions signed (each signed version)
	RxApproved         int // their prescriptions a pharmacist approved
	Reviews            int // prescriptions reviewed (pharmacists)
	ReviewsRejected    int
	EMRSigned          int
	PaidCount          int   // payments taken
	Paid               int64 // their totals (fen)
	Refunded           int64 // refunded of them so far (fen)
}

// Visits is the visits ended, every type.
func (c workCounts) Visits() int { return c.Text + c.Voice + c.Video }

// ReviewsApproved is the reviews that approved.
func (c workCounts) ReviewsApproved() int { return c.Reviews - c.ReviewsRejected }

// Net is the income: taken less refunded.
func (c workCounts) Net() int64 { return c.Paid - c.Refunded }

func (c *workCounts) add(o workCounts) {
	c.Text += o.Text
	c.Voice += o.Voice
	c.Video += o.Video
	c.RxIssued += o.RxIssued
	c.RxApproved += o.RxApproved
	c.Reviews += o.Reviews
	c.ReviewsRejected += o.ReviewsRejected
	c.EMRSigned += o.EMRSigned
	c.PaidCount += o.PaidCount
	c.Paid += o.Paid
	c.Refunded += o.Refunded
}

// workRow is one staff member's or one department's line.
type workRow struct {
	Key, Name, Title, KindLabel, DepartmentName string
	ShowEMR                                     bool // the EMR column is shown
	workCounts
}

// workload is 医师工作量统计 of a period.
type workload struct {
	From, To    time.Time
	HasEMR      bool
	Rows        []workRow // per staff member
	Departments []workRow // per department
	Total       workRow
}

// workload counts, for every doctor and pharmacist, in [f.From, f.To): the
// visits they ended by type; the prescriptions they signed and those of
// theirs a pharmacist approved (by review time); the prescriptions a
// pharmacist reviewed; the EMRs they signed (when the emr_records table is
// there); and the payments taken for their business (by payment time, as
// 医保运营统计 does) with what was refunded of them. Narrowed by f's
// department (the staff member's) and doctor; a department administrator
// sees their own department only.
func (o *onlineVisits) workload(ctx context.Context, f onlineFilter) (*workload, error) {
	from, to := ihos.FormatTime(f.From), ihos.FormatTime(f.To)
	dir, err := o.staffDirectory(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]*workCounts{}
	at := func(id string) *workCounts {
		if counts[id] == nil {
			counts[id] = &workCounts{}
		}
		return counts[id]
	}
	var id, kind string
	var n int
	err = o.each(ctx, `SELECT doctor_id, visit_type, COUNT(*) FROM visits WHERE deleted_at IS NULL AND status = ? AND ended_at >= ? AND ended_at < ?
		GROUP BY doctor_id, visit_type`, []any{visits.StatusEnded, from, to}, func(rows *sql.Rows) error {
		if err := rows.Scan(&id, &kind, &n); err != nil {
			return err
		}
		switch c := at(id); kind {
		case visits.TypeText:
			c.Text += n
		case visits.TypeVoice:
			c.Voice += n
		case visits.TypeVideo:
			c.Video += n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// perStaff adds the counts of rows of (staff id, count) to the field.
	perStaff := func(q string, args []any, field func(c *workCounts) *int) error {
		return o.each(ctx, q, args, func(rows *sql.Rows) error {
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			*field(at(id)) += n
			return nil
		})
	}
	err = perStaff(`SELECT doctor_id, COUNT(*) FROM prescriptions WHERE deleted_at IS NULL AND signed_at >= ? AND signed_at < ? GROUP BY doctor_id`,
		[]any{from, to}, func(c *workCounts) *int { return &c.RxIssued })
	if err != nil {
		return nil, err
	}
	// A reviewed prescription is rejected or was approved (and may have been
	// paid and sent since).
	err = o.each(ctx, `SELECT doctor_id, reviewer_id, status, COUNT(*) FROM prescriptions WHERE deleted_at IS NULL AND reviewed_at >= ? AND reviewed_at < ?
		GROUP BY doctor_id, reviewer_id, status`, []any{from, to}, func(rows *sql.Rows) error {
		var reviewer, status string
		if err := rows.Scan(&id, &reviewer, &status, &n); err != nil {
			return err
		}
		switch status {
		case prescriptions.StatusApproved, prescriptions.StatusPaid, prescriptions.StatusSentToHIS:
			at(id).RxApproved += n
		case prescriptions.StatusRejected:
			if reviewer != "" {
				at(reviewer).ReviewsRejected += n
			}
		default:
			return nil
		}
		if reviewer != "" {
			at(reviewer).Reviews += n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w := &workload{From: f.From, To: f.To, Total: workRow{Name: "合计"}}
	if cols := o.columns(ctx, "emr_records"); cols["doctor_id"] && cols["signed_at"] {
		w.HasEMR, w.Total.ShowEMR = true, true
		q := `SELECT doctor_id, COUNT(*) FROM emr_records WHERE signed_at >= ? AND signed_at < ?`
		if cols["deleted_at"] {
			q += ` AND deleted_at IS NULL`
		}
		if err := perStaff(q+` GROUP BY doctor_id`, []any{from, to}, func(c *workCounts) *int { return &c.EMRSigned }); err != nil {
			return nil, err
		}
	}
	taking := payments.TakingStatuses
	err = o.each(ctx, `SELECT doctor_id, COUNT(*), SUM(total), SUM(refunded) FROM payments WHERE deleted_at IS NULL AND doctor_id <> ''
		AND status IN (?, ?, ?) AND COALESCE(paid_at, created_at) >= ? AND COALESCE(paid_at, created_at) < ? GROUP BY doctor_id`,
		[]any{taking[0], taking[1], taking[2], from, to}, func(rows *sql.Rows) error {
			var paid, refunded int64
			if err := rows.Scan(&id, &n, &paid, &refunded); err != nil {
				return err
			}
			c := at(id)
			c.PaidCount += n
			c.Paid += paid
			c.Refunded += refunded
			return nil
		})
	if err != nil {
		return nil, err
	}
	scheduled, err := o.scheduledDoctors(ctx, f.From, f.To)
	if err != nil {
		return nil, err
	}
	for id := range scheduled {
		at(id)
	}

	staff := listed(ctx, dir, counts, f)
	byDept := map[string]*workRow{}
	var deptOrder []*staffInfo
	for _, s := range staff {
		c := *counts[s.ID]
		w.Rows = append(w.Rows, workRow{Key: s.ID, Name: s.Name, Title: s.Title, KindLabel: labelOf(ihos.StaffKindLabels, s.Kind),
			DepartmentName: s.DepartmentName, ShowEMR: w.HasEMR, workCounts: c})
		w.Total.add(c)
		if byDept[s.DepartmentID] == nil {
			byDept[s.DepartmentID] = &workRow{Key: s.DepartmentID, Name: s.DepartmentName, DepartmentName: s.DepartmentName, ShowEMR: w.HasEMR}
			deptOrder = append(deptOrder, s)
		}
		byDept[s.DepartmentID].add(c)
	}
	for _, s := range deptOrder {
		w.Departments = append(w.Departments, *byDept[s.DepartmentID])
	}
	return w, nil
}

// workloadTables are the statistics for export: per staff member and per
// department, each with its totals row.
func workloadTables(w *workload) []export.Table {
	head := []string{"图文问诊", "语音问诊", "视频问诊", "问诊合计", "开具处方", "处方审核通过", "药师审核", "其中驳回"}
	if w.HasEMR {
		head = append(head, "签署病历")
	}
	head = append(head, "收款笔数", "收款(元)", "退款(元)", "收入(元)")
	cells := func(c workCounts) []any {
		out := []any{c.Text, c.Voice, c.Video, c.Visits(), c.RxIssued, c.RxApproved, c.Reviews, c.ReviewsRejected}
		if w.HasEMR {
			out = append(out, c.EMRSigned)
		}
		return append(out, c.PaidCount, export.Yuan(c.Paid), export.Yuan(c.Refunded), export.Yuan(c.Net()))
	}
	from, to := console.Dates(w.From, w.To)
	staff := export.Table{Name: "按医师", Header: append([]string{"科室", "姓名", "类别", "职称"}, head...)}
	for _, r := range w.Rows {
		staff.Rows = append(staff.Rows, append([]any{r.DepartmentName, r.Name, r.KindLabel, r.Title}, cells(r.workCounts)...))
	}
	staff.Rows = append(staff.Rows, append([]any{"合计（" + from + " 至 " + to + "）", "", "", ""}, cells(w.Total.workCounts)...))
	depts := export.Table{Name: "按科室", Header: append([]string{"科室"}, head...)}
	for _, r := range w.Departments {
		depts.Rows = append(depts.Rows, append([]any{r.Name}, cells(r.workCounts)...))
	}
	depts.Rows = append(depts.Rows, append([]any{"合计"}, cells(w.Total.workCounts)...))
	return []export.Table{staff, depts}
}

// receptionCounts are the visits of a doctor (or all) by status, with the
// average wait and duration.
type receptionCounts struct {
	Total, Waiting, Overdue, InProgress, Ended, Cancelled int
	waitSum, waitN, durSum, durN                          int64 // seconds, and how many visits they cover
}

func (c *receptionCounts) add(o receptionCounts) {
	c.Total += o.Total
	c.Waiting += o.Waiting
	c.Overdue += o.Overdue
	c.InProgress += o.InProgress
	c.Ended += o.Ended
	c.Cancelled += o.Cancelled
	c.waitSum += o.waitSum
	c.waitN += o.waitN
	c.durSum += o.durSum
	c.durN += o.durN
}

// AvgWait is the mean wait in whole seconds (-1: no visit accepted).
func (c receptionCounts) AvgWait() int64 { return avg(c.waitSum, c.waitN) }

// AvgDuration is the mean duration in whole seconds (-1: no visit ended).
func (c receptionCounts) AvgDuration() int64 { return avg(c.durSum, c.durN) }

// AvgWaitText and AvgDurationText are the means for people.
func (c receptionCounts) AvgWaitText() string     { return durationText(c.AvgWait()) }
func (c receptionCounts) AvgDurationText() string { return durationText(c.AvgDuration()) }

func avg(sum, n int64) int64 {
	if n == 0 {
		return -1
	}
	return sum / n
}

// durationText shows seconds as "1 小时 5 分 3 秒" ("—" for none).
func durationText(s int64) string {
	if s < 0 {
		return "—"
	}
	h, m, sec := s/3600, s%3600/60, s%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d 小时 %d 分", h, m)
	case m > 0:
		return fmt.Sprintf("%d 分 %d 秒", m, sec)
	}
	return fmt.Sprintf("%d 秒", sec)
}

// receptionRow is one doctor's line.
type receptionRow struct {
	Key, Name, Title, DepartmentName string
	receptionCounts
}

// reception is 医师接诊情况查询 of a period.
type reception struct {
	From, To time.Time
	Rows     []receptionRow
	Total    receptionCounts
}

// reception counts the visits whose booked slot starts in [f.From, f.To)
// (when the booking is missing: when it was made), per doctor and status: 待
// 接诊 (waiting, its slot not over), 已超时 (waiting, its slot over), 问诊中,
// 已结束, 已取消. The wait of an accepted visit runs from its slot's start, or
// from the booking when it was made later (a patient cannot wait for a slot
// before it begins), to the acceptance, 0 when the doctor accepted early; the
// duration of an ended visit from the acceptance to the end. Doctors with an
// online schedule in the period are listed even without visits. Narrowed by
// f's department (the doctor's), doctor and visit type; a department
// administrator sees their own department only.
func (o *onlineVisits) reception(ctx context.Context, f onlineFilter) (*reception, error) {
	dir, err := o.staffDirectory(ctx)
	if err != nil {
		return nil, err
	}
	col := "COALESCE(b.start_at, v.booked_at)"
	q := `SELECT v.doctor_id, v.status, v.booked_at, v.accepted_at, v.ended_at, b.start_at, b.end_at FROM visits v
		LEFT JOIN bookings b ON b.id = v.booking_id WHERE v.deleted_at IS NULL AND ` + col + ` >= ? AND ` + col + ` < ?`
	args := []any{ihos.FormatTime(f.From), ihos.FormatTime(f.To)}
	if f.Type != "" {
		q += ` AND v.visit_type = ?`
		args = append(args, f.Type)
	}
	if f.DoctorID != "" {
		q += ` AND v.doctor_id = ?`
		args = append(args, f.DoctorID)
	}
	now := o.now()
	counts := map[string]*receptionCounts{}
	err = o.each(ctx, q, args, func(rows *sql.Rows) error {
		var doctor, status, booked string
		var accepted, ended, start, end sql.NullString
		if err := rows.Scan(&doctor, &status, &booked, &accepted, &ended, &start, &end); err != nil {
			return err
		}
		c := counts[doctor]
		if c == nil {
			c = &receptionCounts{}
			counts[doctor] = c
		}
		c.Total++
		bookedAt, _ := ihos.ParseTime(booked)
		acc, fin, slotStart, slotEnd := nullTime(accepted), nullTime(ended), nullTime(start), nullTime(end)
		switch status {
		case visits.StatusWaiting:
			if !slotEnd.IsZero() && slotEnd.Before(now) {
				c.Overdue++
			} else {
				c.Waiting++
			}
		case visits.StatusInProgress:
			c.InProgress++
		case visits.StatusEnded:
			c.Ended++
		case visits.StatusCancelled:
			c.Cancelled++
		}
		if !acc.IsZero() {
			from := bookedAt
			if slotStart.After(from) {
				from = slotStart
			}
			c.waitSum += int64(max(acc.Sub(from), 0) / time.Second)
			c.waitN++
			if status == visits.StatusEnded && !fin.IsZero() {
				c.durSum += int64(max(fin.Sub(acc), 0) / time.Second)
				c.durN++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if f.Type == "" {
		scheduled, err := o.scheduledDoctors(ctx, f.From, f.To)
		if err != nil {
			return nil, err
		}
		for id := range scheduled {
			if counts[id] == nil && (f.DoctorID == "" || f.DoctorID == id) {
				counts[id] = &receptionCounts{}
			}
		}
	}
	staff := listed(ctx, dir, counts, f)
	r := &reception{From: f.From, To: f.To}
	for _, s := range staff {
		c := *counts[s.ID]
		r.Rows = append(r.Rows, receptionRow{Key: s.ID, Name: s.Name, Title: s.Title, DepartmentName: s.DepartmentName, receptionCounts: c})
		r.Total.add(c)
	}
	return r, nil
}

func receptionTable(r *reception) export.Table {
	from, to := console.Dates(r.From, r.To)
	t := export.Table{Name: "医师接诊情况", Header: []string{"科室", "医师", "职称", "就诊总数", "待接诊", "已超时", "问诊中", "已结束", "已取消",
		"平均等候(秒)", "平均问诊时长(秒)"}}
	secs := func(s int64) any {
		if s < 0 {
			return ""
		}
		return s
	}
	cells := func(c receptionCounts) []any {
		return []any{c.Total, c.Waiting, c.Overdue, c.InProgress, c.Ended, c.Cancelled, secs(c.AvgWait()), secs(c.AvgDuration())}
	}
	for _, row := range r.Rows {
		t.Rows = append(t.Rows, append([]any{row.DepartmentName, row.Name, row.Title}, cells(row.receptionCounts)...))
	}
	t.Rows = append(t.Rows, append([]any{"合计（" + from + " 至 " + to + "）", "", ""}, cells(r.Total)...))
	return t
}

// counts is c for the JSON API, amounts in fen.
func (c workCounts) counts() map[string]any {
	return map[string]any{"text": c.Text, "voice": c.Voice, "video": c.Video, "visits": c.Visits(),
		"prescriptions_issued": c.RxIssued, "prescriptions_approved": c.RxApproved,
		"reviews": c.Reviews, "reviews_rejected": c.ReviewsRejected, "emr_signed": c.EMRSigned,
		"payments": c.PaidCount, "paid": c.Paid, "refunded": c.Refunded, "income": c.Net()}
}

func workloadJSON(w *workload) map[string]any {
	rows := func(rs []workRow, key string) []map[string]any {
		out := []map[string]any{}
		for _, r := range rs {
			m := r.counts()
			m[key], m["name"] = r.Key, r.Name
			if key == "staff_id" {
				m["title"], m["kind_label"], m["department_name"] = r.Title, r.KindLabel, r.DepartmentName
			}
			out = append(out, m)
		}
		return out
	}
	from, to := console.Dates(w.From, w.To)
	return map[string]any{"from": from, "to": to, "has_emr": w.HasEMR, "rows": rows(w.Rows, "staff_id"),
		"departments": rows(w.Departments, "department_id"), "total": w.Total.counts()}
}

// counts is c for the JSON API; the averages in whole seconds, -1 for none.
func (c receptionCounts) counts() map[string]any {
	return map[string]any{"total": c.Total, "waiting": c.Waiting, "overdue": c.Overdue, "in_progress": c.InProgress,
		"ended": c.Ended, "cancelled": c.Cancelled, "avg_wait_seconds": c.AvgWait(), "avg_duration_seconds": c.AvgDuration()}
}

func receptionJSON(r *reception) map[string]any {
	rows := []map[string]any{}
	for _, row := range r.Rows {
		m := row.counts()
		m["doctor_id"], m["name"], m["title"], m["department_name"] = row.Key, row.Name, row.Title, row.DepartmentName
		rows = append(rows, m)
	}
	from, to := console.Dates(r.From, r.To)
	return map[string]any{"from": from, "to": to, "rows": rows, "total": r.Total.counts()}
}
