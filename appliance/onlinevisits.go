package appliance

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/export"
	"ihos/internal/sqldb"
	"ihos/internal/web"
	"ihos/visits"
)

// The console's 互联网诊疗 reports: 线上就诊记录 (the visits with their
// history, prescriptions, EMR, payments and invoice), 医师工作量统计 and
// 医师接诊情况查询. They read the rows the cloud replicates to the appliance
// (visits, visit_events, visit_messages, bookings, prescriptions, payments,
// refunds) and the appliance's own invoices and master data; they write
// nothing but the audit entry of every query.
//
// The generic resource layer does not fit them: a visit has no enabled
// column, the search spans joined tables (the patient's and the doctor's
// names, the booked slot) and date ranges, and the statistics are
// aggregates, so they are hand-written pages like 支付订单查询.
//
// Who may read: the roles holding masterdata.read, the permission of the
// neighbouring 在线问诊设置, 排班 and 放号 pages: hospital administrators,
// auditors, and department administrators, confined to their department.
//
// This file reads the filters and serves the pages, the JSON API and the
// downloads; the queries are in onlinevisits_records.go (the visit list and
// a visit's detail) and onlinevisits_stats.go (the two statistics).

//go:embed templates/online_visits.html
var onlineVisitsTemplate string

//go:embed templates/doctor_workload.html
var doctorWorkloadTemplate string

//go:embed templates/doctor_reception.html
var doctorReceptionTemplate string

// onlinePerm is the permission of the three pages and their exports.
const onlinePerm = "masterdata.read"

// Limits of one query.
const (
	onlineMaxDays       = 366
	onlineMaxExportRows = 100_000
	onlinePageSize      = 20
)

// onlineVisits serves the three pages over the appliance's database.
type onlineVisits struct {
	DB *sqldb.DB
	// Now is the clock (tests fix it); time.Now when nil.
	Now func() time.Time
}

func (o *onlineVisits) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// startOnlineVisits adds the three pages and their exports, in the menu
// right after the online-consultation resources (在线问诊设置, 在线问诊排班管理,
// 放号规则设置): together they are the console's 互联网诊疗 pages. Call it
// before the console's routes are registered.
func (a *App) startOnlineVisits(mux *http.ServeMux) {
	o := &onlineVisits{DB: a.Node.DB}
	o.routes(mux, a.Node.AuthorizeCLIOr)
	a.Console.AddPage(o.visitsPage())
	a.Console.AddPage(o.workloadPage())
	a.Console.AddPage(o.receptionPage())
}

// Statuses as the console shows them. A waiting visit whose booked slot is
// over is shown as 已超时 (visits has no timeout status of its own: it stays
// waiting until the doctor accepts it or someone cancels it).
var onlineStatusLabels = map[string]string{
	visits.StatusWaiting: "待接诊", visits.StatusInProgress: "问诊中", visits.StatusEnded: "已结束", visits.StatusCancelled: "已取消",
}

const statusOverdue = "overdue"

var (
	onlineStatusOrder = []string{visits.StatusWaiting, statusOverdue, visits.StatusInProgress, visits.StatusEnded, visits.StatusCancelled}
	onlineTypeOrder   = []string{visits.TypeText, visits.TypeVoice, visits.TypeVideo}
	onlineTypeShort   = map[string]string{visits.TypeText: "图文", visits.TypeVoice: "语音", visits.TypeVideo: "视频"}
	visitRoleLabels   = map[string]string{visits.RolePatient: "患者", visits.RoleDoctor: "医生", visits.RoleSystem: "系统"}
)

func onlineStatusLabel(status string) string {
	if status == statusOverdue {
		return "已超时"
	}
	return labelOf(onlineStatusLabels, status)
}

func labelOf(m map[string]string, k string) string {
	if l := m[k]; l != "" {
		return l
	}
	return k
}

// ---- filters ----

// onlineFilter is a query of the three pages: a period [From, To) of
// Shanghai days and the narrowing choices.
type onlineFilter struct {
	From, To     time.Time
	By           string // visits: "slot" (the booked slot's start, default) or "booked" (when the booking was made)
	DepartmentID string
	DoctorID     string
	Patient      string // part of the patient's name
	Type         string
	Status       string // a visit status or "overdue"
	Page         int
}

// filterKeys are the query parameters of the filters, in the order they are
// shown and passed on.
var filterKeys = []string{"from", "to", "by", "department", "doctor", "patient", "type", "status"}

// parseOnlineFilter reads q. Dates are YYYY-MM-DD (Shanghai); a missing
// start or end is left zero for the caller's default.
func parseOnlineFilter(q url.Values) (onlineFilter, error) {
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	bad := map[string]string{}
	day := func(k string, next bool) time.Time {
		v := get(k)
		if v == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(time.DateOnly, v, ihos.Shanghai)
		if err != nil {
			bad[k] = "日期格式应为 YYYY-MM-DD"
			return time.Time{}
		}
		if next {
			t = t.AddDate(0, 0, 1)
		}
		return t
	}
	f := onlineFilter{From: day("from", false), To: day("to", true), By: get("by"), DepartmentID: get("department"),
		DoctorID: get("doctor"), Patient: get("patient"), Type: get("type"), Status: get("status")}
	switch f.By {
	case "":
		f.By = "slot"
	case "slot", "booked":
	default:
		bad["by"] = "日期口径应为就诊时段或预约时间"
	}
	if f.Type != "" && visits.TypeLabels[f.Type] == "" {
		bad["type"] = "问诊方式应为图文、语音或视频"
	}
	if f.Status != "" && f.Status != statusOverdue && onlineStatusLabels[f.Status] == "" {
		bad["status"] = "就诊状态无效"
	}
	if utfLen(f.Patient) > 50 {
		bad["patient"] = "患者姓名最多 50 个字"
	}
	if p := get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1_000_000 {
			bad["page"] = "页码应为正整数"
		}
		f.Page = n
	}
	if !f.From.IsZero() && !f.To.IsZero() {
		if !f.To.After(f.From) {
			bad["to"] = "结束日期不能早于开始日期"
		} else if f.To.Sub(f.From) > onlineMaxDays*24*time.Hour {
			bad["to"] = fmt.Sprintf("查询区间最长 %d 天", onlineMaxDays)
		}
	}
	if len(bad) > 0 {
		return f, ihos.Invalid(bad)
	}
	return f, nil
}

func utfLen(s string) int { return len([]rune(s)) }

// withPeriod fills a missing start or end: defaultFrom(now) for the start,
// the end of today for the end.
func (o *onlineFilter) withPeriod(now time.Time, defaultFrom func(time.Time) time.Time) error {
	now = now.In(ihos.Shanghai)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, ihos.Shanghai)
	if o.To.IsZero() {
		o.To = today.AddDate(0, 0, 1)
		if !o.From.IsZero() && !o.From.Before(o.To) {
			o.To = o.From.AddDate(0, 0, 1)
		}
	}
	if o.From.IsZero() {
		o.From = defaultFrom(today)
		if !o.From.Before(o.To) {
			o.From = o.To.AddDate(0, 0, -1)
		}
	}
	if o.To.Sub(o.From) > onlineMaxDays*24*time.Hour {
		return ihos.Invalid(map[string]string{"to": fmt.Sprintf("查询区间最长 %d 天", onlineMaxDays)})
	}
	return nil
}

// scopeDepartment is the department a department administrator is confined
// to ("-" matching nothing when they have none), or "" for everyone else.
func scopeDepartment(ctx context.Context) string {
	a, ok := ihos.ActorFrom(ctx)
	if !ok || !a.Scoped {
		return ""
	}
	if a.DepartmentID == "" {
		return "-"
	}
	return a.DepartmentID
}

// departmentFilter is the department a query is narrowed to: the actor's
// own for a department administrator, else the one asked for ("" for all).
func departmentFilter(ctx context.Context, asked string) string {
	if d := scopeDepartment(ctx); d != "" {
		return d
	}
	return asked
}

// describe is the filter in words, for the audit log.
func (o *onlineFilter) describe(names func(table, id string) string) string {
	var parts []string
	if !o.From.IsZero() || !o.To.IsZero() {
		from, to := "", ""
		if !o.From.IsZero() {
			from = o.From.In(ihos.Shanghai).Format(time.DateOnly)
		}
		if !o.To.IsZero() {
			_, to = console.Dates(o.From, o.To)
		}
		parts = append(parts, from+" 至 "+to)
	}
	if o.DepartmentID != "" {
		parts = append(parts, "科室 "+names("departments", o.DepartmentID))
	}
	if o.DoctorID != "" {
		parts = append(parts, "医师 "+names("staff", o.DoctorID))
	}
	if o.Patient != "" {
		parts = append(parts, "患者 "+o.Patient)
	}
	if o.Type != "" {
		parts = append(parts, onlineTypeShort[o.Type])
	}
	if o.Status != "" {
		parts = append(parts, onlineStatusLabel(o.Status))
	}
	if len(parts) == 0 {
		return "全部"
	}
	return strings.Join(parts, "，")
}

// ---- small SQL helpers ----

func nullTime(ns sql.NullString) time.Time {
	if !ns.Valid || ns.String == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(ns.String)
	return t
}

// columns lists the columns of table, or nil when it does not exist. It asks
// for no row, so it works the same on SQLite and MariaDB; the tables it is
// used for (emr_records, the booking's condition) arrive with later
// migrations, and the pages show them once they exist.
func (o *onlineVisits) columns(ctx context.Context, table string) map[string]bool {
	rows, err := o.DB.QueryContext(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, c := range cols {
		out[strings.ToLower(c)] = true
	}
	return out
}

// each runs q and calls scan for every row it returns; every error is
// internal.
func (o *onlineVisits) each(ctx context.Context, q string, args []any, scan func(rows *sql.Rows) error) error {
	rows, err := o.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return ihos.Internal(err)
		}
	}
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	return nil
}

func (o *onlineVisits) name(ctx context.Context, table, id string) string {
	m, err := console.Names(ctx, o.DB, table, []string{id})
	if err != nil || m[id] == "" {
		return id
	}
	return m[id]
}

func (o *onlineVisits) audit(ctx context.Context, action, resource, id, summary string) error {
	return audit.Record(ctx, o.DB, audit.Entry{Action: action, Resource: resource, RecordID: id, Summary: summary})
}

// ---- the reports ----

// A report is one of the three pages' queries with what its page, its JSON
// API and its download need to know of it. All three read the filter, run
// the query and audit the read the same way; only how they show the result
// differs.
type report[T any] struct {
	o    *onlineVisits
	name string // the console page and the audit log's resource: "doctor_workload"
	api  string // the JSON API: "/api/admin/doctor-workload"; the download is api + "/export"
	noun string // what the audit log and the file name call it: "医师工作量统计"
	// defaultFrom starts the period when the query gives no start; the
	// period then ends today. nil leaves a missing start or end open.
	defaultFrom func(today time.Time) time.Time
	// audited is the part of the filter the report uses, as the audit log
	// describes it.
	audited func(f onlineFilter) onlineFilter
	run     func(ctx context.Context, f onlineFilter) (T, error)
	// note, if set, ends the audit entry of a read: "（共 3 条，第 1 页）".
	note   func(T) string
	json   func(T) any
	export exporter
}

// An exporter builds a report's download: its tables, and the note ending
// the audit entry of the download.
type exporter func(ctx context.Context, f onlineFilter) (tables []export.Table, note string, err error)

// tablesOf is the export of a report whose download shows what run finds.
func tablesOf[T any](run func(context.Context, onlineFilter) (T, error), tables func(T) []export.Table) exporter {
	return func(ctx context.Context, f onlineFilter) ([]export.Table, string, error) {
		v, err := run(ctx, f)
		if err != nil {
			return nil, "", err
		}
		return tables(v), "", nil
	}
}

func (o *onlineVisits) visitsReport() *report[*visitList] {
	return &report[*visitList]{o: o, name: "online_visits", api: "/api/admin/online-visits", noun: "线上就诊记录",
		audited: func(f onlineFilter) onlineFilter { return f },
		run:     o.listVisits,
		note:    func(l *visitList) string { return fmt.Sprintf("（共 %d 条，第 %d 页）", l.Total, l.Page) },
		json: func(l *visitList) any {
			if l.Rows == nil {
				l.Rows = []visitRow{}
			}
			return l
		},
		export: func(ctx context.Context, f onlineFilter) ([]export.Table, string, error) {
			t, err := o.visitsTable(ctx, f)
			return []export.Table{t}, fmt.Sprintf("（%d 条）", len(t.Rows)), err
		},
	}
}

func (o *onlineVisits) workloadReport() *report[*workload] {
	return &report[*workload]{o: o, name: "doctor_workload", api: "/api/admin/doctor-workload", noun: "医师工作量统计",
		defaultFrom: monthStart,
		audited: func(f onlineFilter) onlineFilter {
			return onlineFilter{From: f.From, To: f.To, DepartmentID: f.DepartmentID, DoctorID: f.DoctorID}
		},
		run:    o.workload,
		json:   func(w *workload) any { return workloadJSON(w) },
		export: tablesOf(o.workload, workloadTables),
	}
}

func (o *onlineVisits) receptionReport() *report[*reception] {
	return &report[*reception]{o: o, name: "doctor_reception", api: "/api/admin/doctor-reception", noun: "医师接诊情况",
		defaultFrom: sameDay,
		audited: func(f onlineFilter) onlineFilter {
			return onlineFilter{From: f.From, To: f.To, DepartmentID: f.DepartmentID, DoctorID: f.DoctorID, Type: f.Type}
		},
		run:    o.reception,
		json:   func(r *reception) any { return receptionJSON(r) },
		export: tablesOf(o.reception, func(r *reception) []export.Table { return []export.Table{receptionTable(r)} }),
	}
}

func monthStart(today time.Time) time.Time { return today.AddDate(0, 0, 1-today.Day()) }
func sameDay(today time.Time) time.Time    { return today }

// filter reads the report's filter from q, with the period filled in when
// the report has a default one.
func (rep *report[T]) filter(q url.Values) (onlineFilter, error) {
	f, err := parseOnlineFilter(q)
	if err == nil && rep.defaultFrom != nil {
		err = f.withPeriod(rep.o.now(), rep.defaultFrom)
	}
	return f, err
}

// pageFilter is filter for a page: a filter that cannot be read falls back
// to the default one, with the message in errText.
func (rep *report[T]) pageFilter(q url.Values) (f onlineFilter, errText string, err error) {
	f, err = rep.filter(q)
	if err == nil {
		return f, "", nil
	}
	if ihos.ErrorCode(err) != ihos.EInvalid {
		return f, "", err
	}
	errText = console.FilterError(err)
	f = onlineFilter{By: "slot"}
	if rep.defaultFrom != nil {
		if err := f.withPeriod(rep.o.now(), rep.defaultFrom); err != nil {
			return f, "", err
		}
	}
	return f, errText, nil
}

// read runs the report and audits the read.
func (rep *report[T]) read(ctx context.Context, f onlineFilter) (T, error) {
	v, err := rep.run(ctx, f)
	if err != nil {
		return v, err
	}
	note := ""
	if rep.note != nil {
		note = rep.note(v)
	}
	return v, rep.o.audit(ctx, "view", rep.name, "", "查询"+rep.noun+"："+rep.o.describeFilter(ctx, rep.audited(f))+note)
}

// routes registers the report's JSON API and its download.
func (rep *report[T]) routes(guard func(pattern, perm string, fn web.AuthorizedFunc)) {
	guard("GET "+rep.api, onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := rep.filter(r.URL.Query())
		if err != nil {
			return err
		}
		v, err := rep.read(ctx, f)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, rep.json(v))
		return nil
	})
	guard("GET "+rep.api+"/export", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := export.Format(r)
		if err != nil {
			return err
		}
		f, err := rep.filter(r.URL.Query())
		if err != nil {
			return err
		}
		tables, note, err := rep.export(ctx, f)
		if err != nil {
			return err
		}
		if err := rep.o.audit(ctx, "export", rep.name, "", "导出"+rep.noun+" "+strings.ToUpper(format)+"："+
			rep.o.describeFilter(ctx, rep.audited(f))+note); err != nil {
			return err
		}
		return export.Write(w, format, rep.file(f), tables...)
	})
}

// file is the name of the report's download without the extension: a
// statistic's names its period, the visit list's the time it was made.
func (rep *report[T]) file(f onlineFilter) string {
	if rep.defaultFrom == nil {
		return rep.noun + "_" + rep.o.now().In(ihos.Shanghai).Format("20060102_150405")
	}
	from, to := console.Dates(f.From, f.To)
	return rep.noun + "_" + from + "至" + to
}

// page is what the report's page shows besides the result: the form's
// choices and values (the period filled in), the message of a filter it
// could not read, the period and the links of the downloads. It runs the
// report on the filter of r and audits the read. pharmacists adds the
// pharmacists to the form's doctors.
func (rep *report[T]) page(r *http.Request, pharmacists bool) (map[string]any, T, onlineFilter, error) {
	ctx := r.Context()
	q := r.URL.Query()
	var v T
	opts, err := rep.o.filterOptions(ctx, pharmacists)
	if err != nil {
		return nil, v, onlineFilter{}, err
	}
	f, errText, err := rep.pageFilter(q)
	if err != nil {
		return nil, v, f, err
	}
	if v, err = rep.read(ctx, f); err != nil {
		return nil, v, f, err
	}
	data := map[string]any{"Options": opts, "Error": errText}
	form, links := console.FormValues(q, filterKeys), console.Filters(q, filterKeys)
	if rep.defaultFrom != nil {
		from, to := console.Dates(f.From, f.To)
		form["from"], form["to"], data["From"], data["To"] = from, to, from, to
		links.Set("from", from)
		links.Set("to", to)
	}
	data["Q"] = form
	data["CSV"] = console.Link(rep.api+"/export", passOn(links, "format", export.CSV))
	data["XLSX"] = console.Link(rep.api+"/export", passOn(links, "format", export.XLSX))
	return data, v, f, nil
}

// ---- the pages ----

// filterOptions are the choices of the forms: the departments (only their
// own for a department administrator) and doctors, the visit types and
// statuses. pharmacists adds the pharmacists to the doctors.
func (o *onlineVisits) filterOptions(ctx context.Context, pharmacists bool) (map[string][]admin.Option, error) {
	out := map[string][]admin.Option{
		"Types":    console.Labeled(onlineTypeOrder, func(t string) string { return visits.TypeLabels[t] }),
		"Statuses": console.Labeled(onlineStatusOrder, onlineStatusLabel),
	}
	scope := scopeDepartment(ctx)
	dq := `SELECT id, name FROM departments WHERE deleted_at IS NULL`
	sq := `SELECT s.id, s.name || '（' || COALESCE(d.name, '') || '）' FROM staff s LEFT JOIN departments d ON d.id = s.department_id
		WHERE s.deleted_at IS NULL AND s.kind IN (?, ?)`
	if o.DB.Engine == sqldb.MySQL {
		sq = strings.Replace(sq, `s.name || '（' || COALESCE(d.name, '') || '）'`, `CONCAT(s.name, '（', COALESCE(d.name, ''), '）')`, 1)
	}
	var dargs []any
	sargs := []any{ihos.StaffDoctor, ihos.StaffDoctor}
	if pharmacists {
		sargs[1] = ihos.StaffPharmacist
	}
	if scope != "" {
		dq += ` AND id = ?`
		sq += ` AND s.department_id = ?`
		dargs, sargs = append(dargs, scope), append(sargs, scope)
	}
	var err error
	if out["Departments"], err = console.Options(ctx, o.DB, dq+` ORDER BY sort_order, name LIMIT 500`, dargs...); err != nil {
		return nil, err
	}
	if out["Doctors"], err = console.Options(ctx, o.DB, sq+` ORDER BY d.sort_order, s.kind, s.job_no LIMIT 1000`, sargs...); err != nil {
		return nil, err
	}
	return out, nil
}

// passOn is the filter part of q (without the page, the detail id and the
// flash), with extra's key-value pairs set.
func passOn(q url.Values, extra ...string) url.Values {
	u := console.Filters(q, filterKeys)
	for i := 0; i+1 < len(extra); i += 2 {
		u.Set(extra[i], extra[i+1])
	}
	return u
}

func (o *onlineVisits) describeFilter(ctx context.Context, f onlineFilter) string {
	f.DepartmentID = departmentFilter(ctx, f.DepartmentID)
	return f.describe(func(table, id string) string { return o.name(ctx, table, id) })
}

// visitsPage is 线上就诊记录: the visits by date (the booked slot's or the
// booking's), department, doctor, patient name, visit type and status,
// paged and exportable, and one visit's detail (?id=).
func (o *onlineVisits) visitsPage() console.Page {
	const path = "/console/x/online_visits"
	rep := o.visitsReport()
	return console.Page{
		Name: "online_visits", Title: "线上就诊记录", Perm: onlinePerm, Template: onlineVisitsTemplate, After: "release_rules",
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			actor, _ := ihos.ActorFrom(ctx)
			if id := strings.TrimSpace(q.Get("id")); id != "" {
				d, err := o.visitDetail(ctx, id)
				if err != nil {
					return nil, err
				}
				if err := o.auditDetail(ctx, d); err != nil {
					return nil, err
				}
				return map[string]any{"Q": console.FormValues(q, filterKeys), "ListURL": console.Link(path, passOn(q)),
					"CanPayments": auth.Can(actor.Role, "payments.read"), "Detail": d}, nil
			}
			data, list, _, err := rep.page(r, false)
			if err != nil {
				return nil, err
			}
			data["CanPayments"] = auth.Can(actor.Role, "payments.read")
			data["ListURL"] = console.Link(path, passOn(q))
			for i := range list.Rows {
				u := passOn(q, "id", list.Rows[i].ID)
				if list.Page > 1 {
					u.Set("page", strconv.Itoa(list.Page))
				}
				list.Rows[i].DetailURL = console.Link(path, u)
			}
			if list.Page > 1 {
				data["ListURL"] = console.Link(path, passOn(q, "page", strconv.Itoa(list.Page)))
			}
			pages := int(math.Ceil(float64(list.Total) / float64(list.PageSize)))
			data["Prev"], data["Next"] = console.PageLinks(path, passOn(q), list.Page, pages)
			data["List"], data["Pages"] = list, pages
			return data, nil
		},
	}
}

// workloadPage is 医师工作量统计.
func (o *onlineVisits) workloadPage() console.Page {
	rep := o.workloadReport()
	return console.Page{
		Name: "doctor_workload", Title: "医师工作量统计", Perm: onlinePerm, Template: doctorWorkloadTemplate, After: "x-online_visits",
		Data: func(r *http.Request) (any, error) {
			data, w, _, err := rep.page(r, true)
			if err != nil {
				return nil, err
			}
			data["W"] = w
			return data, nil
		},
	}
}

// receptionPage is 医师接诊情况查询.
func (o *onlineVisits) receptionPage() console.Page {
	rep := o.receptionReport()
	return console.Page{
		Name: "doctor_reception", Title: "医师接诊情况查询", Perm: onlinePerm, Template: doctorReceptionTemplate, After: "x-doctor_workload",
		Data: func(r *http.Request) (any, error) {
			data, rc, f, err := rep.page(r, false)
			if err != nil {
				return nil, err
			}
			data["R"] = rc
			// Each row links to that doctor's visits of the period.
			from, to := console.Dates(f.From, f.To)
			links := map[string]string{}
			for _, row := range rc.Rows {
				links[row.Key] = console.Link("/console/x/online_visits", passOn(url.Values{"from": {from}, "to": {to}, "doctor": {row.Key}, "type": {f.Type}}))
			}
			data["Links"] = links
			return data, nil
		},
	}
}

// ---- the JSON API and the downloads ----

// routes registers the JSON API and the downloads (masterdata.read; a
// department administrator's answers are confined to their department), each
// call audited as the pages are:
//
//	GET /api/admin/online-visits?from&to&by=slot|booked&department&doctor&patient&type&status&page
//	    → {items, total, page, page_size}
//	GET /api/admin/online-visits/{id} → {visit, booking, events, messages, prescriptions, emr, payments, refunds, invoices}
//	GET /api/admin/doctor-workload?from&to&department&doctor → {from, to, has_emr, rows, departments, total}
//	GET /api/admin/doctor-reception?from&to&department&doctor&type → {from, to, rows, total}
//	GET /api/admin/online-visits/export?format=csv|xlsx&<the list's filters>
//	GET /api/admin/doctor-workload/export?format=…&<its filters>
//	GET /api/admin/doctor-reception/export?format=…&<its filters>
//
// Dates are YYYY-MM-DD (Beijing time); the statistics default to this month
// (workload) and today (reception).
func (o *onlineVisits) routes(mux *http.ServeMux, authorize web.Authorizer) {
	guard := web.Guard(mux, authorize)
	o.visitsReport().routes(guard)
	o.workloadReport().routes(guard)
	o.receptionReport().routes(guard)
	guard("GET /api/admin/online-visits/{id}", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		d, err := o.visitDetail(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if err := o.auditDetail(ctx, d); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, d)
		return nil
	})
}
