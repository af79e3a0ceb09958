package appliance

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/web"
	"ihos/invoicing"
	"ihos/payments"
	"ihos/prescriptions"
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

// periodDates is [from, to) as the dates shown: "2024-01-01", "2024-01-31".
func periodDates(from, to time.Time) (string, string) {
	return from.In(ihos.Shanghai).Format(time.DateOnly), to.Add(-time.Nanosecond).In(ihos.Shanghai).Format(time.DateOnly)
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
			_, to = periodDates(o.From, o.To)
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

// names maps ids of table (departments, staff, patients) to names.
func (o *onlineVisits) names(ctx context.Context, table string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	var want []any
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			want = append(want, id)
		}
	}
	for chunk := range slices.Chunk(want, 500) {
		rows, err := o.DB.QueryContext(ctx, `SELECT id, name FROM `+table+` WHERE id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, chunk...)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, ihos.Internal(err)
			}
			out[id] = name
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, ihos.Internal(err)
		}
	}
	return out, nil
}

func (o *onlineVisits) name(ctx context.Context, table, id string) string {
	m, err := o.names(ctx, table, []string{id})
	if err != nil || m[id] == "" {
		return id
	}
	return m[id]
}

func (o *onlineVisits) audit(ctx context.Context, action, resource, id, summary string) error {
	return audit.Record(ctx, o.DB, audit.Entry{Action: action, Resource: resource, RecordID: id, Summary: summary})
}

// ---- 线上就诊记录 ----

// auditDetail records that the actor looked at visit d.
func (o *onlineVisits) auditDetail(ctx context.Context, d *visitDetail) error {
	return o.audit(ctx, "view", "visits", d.Visit.ID, fmt.Sprintf("查看线上就诊记录：%s %s %s（%s）",
		d.Visit.PatientName, d.Visit.DoctorName, d.Visit.TypeLabel, localText(d.Visit.BookedAt)))
}

// visitRow is a visit as the list shows it.
type visitRow struct {
	ID               string    `json:"id"`
	BookingID        string    `json:"booking_id"`
	Type             string    `json:"type"`
	TypeLabel        string    `json:"type_label"`
	Status           string    `json:"status"`
	StatusLabel      string    `json:"status_label"`
	StatusClass      string    `json:"-"`
	Overdue          bool      `json:"overdue"` // waiting, and its slot is over
	PatientID        string    `json:"patient_id"`
	PatientName      string    `json:"patient_name"`
	PatientGender    string    `json:"patient_gender"`
	PatientBirthYear int       `json:"patient_birth_year,omitempty"`
	DoctorID         string    `json:"doctor_id"`
	DoctorName       string    `json:"doctor_name"`
	DoctorTitle      string    `json:"doctor_title"`
	DepartmentID     string    `json:"department_id"`
	DepartmentName   string    `json:"department_name"`
	BookedAt         time.Time `json:"booked_at"`
	AcceptedAt       time.Time `json:"accepted_at,omitzero"`
	EndedAt          time.Time `json:"ended_at,omitzero"`
	SlotStart        time.Time `json:"slot_start,omitzero"`
	SlotEnd          time.Time `json:"slot_end,omitzero"`
	SlotText         string    `json:"-"`
	DetailURL        string    `json:"-"`
}

// visitList is one page of the list.
type visitList struct {
	Rows     []visitRow `json:"items"`
	Total    int        `json:"total"`
	Page     int        `json:"page"`
	PageSize int        `json:"page_size"`
}

const visitSelect = `SELECT v.id, v.booking_id, v.visit_type, v.status, v.patient_id, v.doctor_id, v.department_id,
	v.booked_at, v.accepted_at, v.ended_at, b.start_at, b.end_at,
	COALESCE(p.name, ''), COALESCE(p.gender, ''), COALESCE(p.birth_year, 0), COALESCE(s.name, ''), COALESCE(s.title, ''), COALESCE(d.name, '')
	FROM visits v
	LEFT JOIN bookings b ON b.id = v.booking_id
	LEFT JOIN patients p ON p.id = v.patient_id
	LEFT JOIN staff s ON s.id = v.doctor_id
	LEFT JOIN departments d ON d.id = v.department_id`

func (o *onlineVisits) scanVisit(rows interface{ Scan(...any) error }) (visitRow, error) {
	var r visitRow
	var booked string
	var accepted, ended, start, end sql.NullString
	if err := rows.Scan(&r.ID, &r.BookingID, &r.Type, &r.Status, &r.PatientID, &r.DoctorID, &r.DepartmentID,
		&booked, &accepted, &ended, &start, &end,
		&r.PatientName, &r.PatientGender, &r.PatientBirthYear, &r.DoctorName, &r.DoctorTitle, &r.DepartmentName); err != nil {
		return r, err
	}
	r.BookedAt, _ = ihos.ParseTime(booked)
	r.AcceptedAt, r.EndedAt = nullTime(accepted), nullTime(ended)
	r.SlotStart, r.SlotEnd = nullTime(start), nullTime(end)
	r.SlotText = slotText(r.SlotStart, r.SlotEnd)
	r.TypeLabel = labelOf(visits.TypeLabels, r.Type)
	r.Overdue = r.Status == visits.StatusWaiting && !r.SlotEnd.IsZero() && r.SlotEnd.Before(o.now())
	r.StatusLabel = onlineStatusLabel(r.Status)
	switch {
	case r.Overdue:
		r.StatusLabel, r.StatusClass = "已超时", "act-delete"
	case r.Status == visits.StatusEnded:
		r.StatusClass = "on"
	case r.Status == visits.StatusCancelled:
		r.StatusClass = "off"
	case r.Status == visits.StatusInProgress:
		r.StatusClass = "act-create"
	}
	if r.PatientName == "" {
		r.PatientName = r.PatientID
	}
	if r.DoctorName == "" {
		r.DoctorName = r.DoctorID
	}
	if r.DepartmentName == "" {
		r.DepartmentName = r.DepartmentID
	}
	return r, nil
}

// visitWhere is the WHERE clause of f over visitSelect's aliases.
func (o *onlineVisits) visitWhere(ctx context.Context, f onlineFilter) (string, []any) {
	where := []string{"v.deleted_at IS NULL"}
	var args []any
	add := func(cond string, v ...any) { where = append(where, cond); args = append(args, v...) }
	col := "COALESCE(b.start_at, v.booked_at)"
	if f.By == "booked" {
		col = "v.booked_at"
	}
	if !f.From.IsZero() {
		add(col+" >= ?", ihos.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add(col+" < ?", ihos.FormatTime(f.To))
	}
	if d := departmentFilter(ctx, f.DepartmentID); d != "" {
		add("v.department_id = ?", d)
	}
	if f.DoctorID != "" {
		add("v.doctor_id = ?", f.DoctorID)
	}
	if f.Patient != "" {
		add("p.name LIKE ?"+sqldb.Escape, sqldb.Contains(f.Patient))
	}
	if f.Type != "" {
		add("v.visit_type = ?", f.Type)
	}
	now := ihos.FormatTime(o.now())
	switch f.Status {
	case "":
	case statusOverdue:
		add("v.status = ? AND b.end_at < ?", visits.StatusWaiting, now)
	default:
		add("v.status = ?", f.Status)
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func (f onlineFilter) orderBy() string {
	if f.By == "booked" {
		return " ORDER BY v.booked_at DESC, v.id DESC"
	}
	return " ORDER BY COALESCE(b.start_at, v.booked_at) DESC, v.id DESC"
}

// listVisits is one page (20 rows) of the visits matching f, newest first.
func (o *onlineVisits) listVisits(ctx context.Context, f onlineFilter) (*visitList, error) {
	cond, args := o.visitWhere(ctx, f)
	out := &visitList{Page: max(f.Page, 1), PageSize: onlinePageSize}
	if err := o.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM visits v LEFT JOIN bookings b ON b.id = v.booking_id
		LEFT JOIN patients p ON p.id = v.patient_id`+cond, args...).Scan(&out.Total); err != nil {
		return nil, ihos.Internal(err)
	}
	rows, err := o.DB.QueryContext(ctx, visitSelect+cond+f.orderBy()+` LIMIT ? OFFSET ?`,
		append(args, out.PageSize, (out.Page-1)*out.PageSize)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := o.scanVisit(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out.Rows = append(out.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// visitEventRow is one status change of a visit.
type visitEventRow struct {
	At         time.Time `json:"at"`
	FromLabel  string    `json:"from_label"`
	ToLabel    string    `json:"to_label"`
	ActorLabel string    `json:"actor_label"`
	ActorName  string    `json:"actor_name"`
	Reason     string    `json:"reason"`
}

// bookingInfo is the booking a visit was opened from.
type bookingInfo struct {
	Status       string    `json:"status"`
	StatusLabel  string    `json:"status_label"`
	Fee          int64     `json:"fee"`
	Minutes      int       `json:"minutes"`
	CreatedAt    time.Time `json:"created_at"`
	CancelReason string    `json:"cancel_reason,omitempty"`
	CancelledAt  time.Time `json:"cancelled_at,omitzero"`
	Condition    string    `json:"condition,omitempty"`
	PastHistory  string    `json:"past_history,omitempty"`
}

var bookingStatusLabels = map[string]string{"awaiting_payment": "待支付", "booked": "已预约", "cancelled": "已取消"}

// messageCounts counts a visit's messages.
type messageCounts struct {
	Total   int `json:"total"`
	Patient int `json:"patient"`
	Doctor  int `json:"doctor"`
	System  int `json:"system"`
	Images  int `json:"images"`
	Voices  int `json:"voices"`
}

// rxRow is one prescription (version) of a visit.
type rxRow struct {
	ID           string    `json:"id"`
	Status       string    `json:"status"`
	StatusLabel  string    `json:"status_label"`
	StatusClass  string    `json:"-"`
	Revision     int       `json:"revision"`
	Diagnosis    string    `json:"diagnosis"`
	Drugs        string    `json:"drugs"`
	Total        int64     `json:"total_fen"`
	SignedAt     time.Time `json:"signed_at,omitzero"`
	ReviewedAt   time.Time `json:"reviewed_at,omitzero"`
	PaidAt       time.Time `json:"paid_at,omitzero"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	ReviewerName string    `json:"reviewer_name,omitempty"`
	ReviewReason string    `json:"review_reason,omitempty"`
	HISOrders    string    `json:"his_orders,omitempty"`
}

// emrRow is one version of the visit's EMR.
type emrRow struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	StatusLabel string    `json:"status_label"`
	Version     int       `json:"revision"`
	DoctorName  string    `json:"doctor_name"`
	SignedAt    time.Time `json:"signed_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// payRow is a payment belonging to the visit (its fee, its prescriptions').
type payRow struct {
	ID            string    `json:"id"`
	BusinessLabel string    `json:"business_label"`
	Subject       string    `json:"subject"`
	Status        string    `json:"status"`
	StatusLabel   string    `json:"status_label"`
	ChannelLabel  string    `json:"channel_label"`
	OutTradeNo    string    `json:"out_trade_no"`
	Total         int64     `json:"total"`
	Refunded      int64     `json:"refunded"`
	CreatedAt     time.Time `json:"created_at"`
	PaidAt        time.Time `json:"paid_at,omitzero"`
}

// refundRow is a refund of one of those payments.
type refundRow struct {
	PaymentID   string    `json:"payment_id"`
	OutRefundNo string    `json:"out_refund_no"`
	Status      string    `json:"status"`
	StatusLabel string    `json:"status_label"`
	Reason      string    `json:"reason"`
	Amount      int64     `json:"amount"`
	CreatedAt   time.Time `json:"created_at"`
	DoneAt      time.Time `json:"done_at,omitzero"`
}

// invoiceRow is the e-invoice of one of those payments.
type invoiceRow struct {
	PaymentID     string    `json:"payment_id"`
	Status        string    `json:"status"`
	StatusLabel   string    `json:"status_label"`
	BillBatchCode string    `json:"bill_batch_code"`
	BillNo        string    `json:"bill_no"`
	PictureURL    string    `json:"picture_url,omitempty"`
	Total         int64     `json:"total"`
	IssuedAt      time.Time `json:"issued_at,omitzero"`
}

// visitDetail is everything the detail view shows.
type visitDetail struct {
	Visit         visitRow        `json:"visit"`
	Booking       *bookingInfo    `json:"booking"`
	HasCondition  bool            `json:"-"`
	Events        []visitEventRow `json:"events"`
	Messages      messageCounts   `json:"messages"`
	Prescriptions []rxRow         `json:"prescriptions"`
	HasEMR        bool            `json:"-"`
	EMR           []emrRow        `json:"emr"` // null: this appliance has no EMR table yet
	Payments      []payRow        `json:"payments"`
	Refunds       []refundRow     `json:"refunds"`
	Invoices      []invoiceRow    `json:"invoices"`
}

var rxStatusClass = map[string]string{prescriptions.StatusApproved: "on", prescriptions.StatusPaid: "on", prescriptions.StatusSentToHIS: "on",
	prescriptions.StatusRejected: "act-delete", prescriptions.StatusDraft: "off"}

// visitDetail reads visit id with its history, booking, messages,
// prescriptions, EMR, payments, refunds and invoices. A department
// administrator gets not-found for another department's visit.
func (o *onlineVisits) visitDetail(ctx context.Context, id string) (*visitDetail, error) {
	where := " WHERE v.id = ? AND v.deleted_at IS NULL"
	args := []any{id}
	if d := scopeDepartment(ctx); d != "" {
		where += " AND v.department_id = ?"
		args = append(args, d)
	}
	v, err := o.scanVisit(o.DB.QueryRowContext(ctx, visitSelect+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ihos.Errorf(ihos.ENotFound, "没有这条就诊记录")
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	d := &visitDetail{Visit: v}
	if err := o.detailBooking(ctx, d); err != nil {
		return nil, err
	}
	if err := o.detailEvents(ctx, d); err != nil {
		return nil, err
	}
	if err := o.detailMessages(ctx, d); err != nil {
		return nil, err
	}
	if err := o.detailPrescriptions(ctx, d); err != nil {
		return nil, err
	}
	if err := o.detailEMR(ctx, d); err != nil {
		return nil, err
	}
	if err := o.detailPayments(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

func (o *onlineVisits) detailBooking(ctx context.Context, d *visitDetail) error {
	// condition_desc and past_history come with migration 00035.
	cols := o.columns(ctx, "bookings")
	extra := ", ''"
	if cols["condition_desc"] {
		extra = ", COALESCE(condition_desc, '')"
		d.HasCondition = true
	}
	if cols["past_history"] {
		extra += ", COALESCE(past_history, '')"
	} else {
		extra += ", ''"
	}
	var b bookingInfo
	var created string
	var cancelled sql.NullString
	err := o.DB.QueryRowContext(ctx, `SELECT status, fee, minutes, created_at, cancel_reason, cancelled_at`+extra+`
		FROM bookings WHERE id = ?`, d.Visit.BookingID).Scan(&b.Status, &b.Fee, &b.Minutes, &created, &b.CancelReason, &cancelled, &b.Condition, &b.PastHistory)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return ihos.Internal(err)
	}
	b.CreatedAt, _ = ihos.ParseTime(created)
	b.CancelledAt = nullTime(cancelled)
	b.StatusLabel = labelOf(bookingStatusLabels, b.Status)
	d.Booking = &b
	return nil
}

func (o *onlineVisits) detailEvents(ctx context.Context, d *visitDetail) error {
	rows, err := o.DB.QueryContext(ctx, `SELECT from_status, to_status, actor_role, actor_id, reason, at FROM visit_events
		WHERE visit_id = ? AND deleted_at IS NULL ORDER BY at, id`, d.Visit.ID)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e visitEventRow
		var from, to, role, actor, at string
		if err := rows.Scan(&from, &to, &role, &actor, &e.Reason, &at); err != nil {
			return ihos.Internal(err)
		}
		e.At, _ = ihos.ParseTime(at)
		if from != "" {
			e.FromLabel = onlineStatusLabel(from)
		}
		e.ToLabel = onlineStatusLabel(to)
		e.ActorLabel = labelOf(visitRoleLabels, role)
		switch role {
		case visits.RoleDoctor:
			e.ActorName = d.Visit.DoctorName
			if actor != d.Visit.DoctorID {
				e.ActorName = o.name(ctx, "staff", actor)
			}
		case visits.RolePatient:
			e.ActorName = d.Visit.PatientName
			if actor != d.Visit.PatientID {
				e.ActorName = o.name(ctx, "patients", actor)
			}
		}
		d.Events = append(d.Events, e)
	}
	return rows.Err()
}

func (o *onlineVisits) detailMessages(ctx context.Context, d *visitDetail) error {
	rows, err := o.DB.QueryContext(ctx, `SELECT sender_role, kind, COUNT(*) FROM visit_messages WHERE visit_id = ? AND deleted_at IS NULL
		GROUP BY sender_role, kind`, d.Visit.ID)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var role, kind string
		var n int
		if err := rows.Scan(&role, &kind, &n); err != nil {
			return ihos.Internal(err)
		}
		m := &d.Messages
		m.Total += n
		switch role {
		case visits.RolePatient:
			m.Patient += n
		case visits.RoleDoctor:
			m.Doctor += n
		default:
			m.System += n
		}
		switch kind {
		case visits.KindImage:
			m.Images += n
		case visits.KindVoice:
			m.Voices += n
		}
	}
	return rows.Err()
}

func (o *onlineVisits) detailPrescriptions(ctx context.Context, d *visitDetail) error {
	rows, err := o.DB.QueryContext(ctx, `SELECT id, revision, status, diagnosis, items, total_fen, signed_at, reviewer_id, reviewed_at,
		review_reason, paid_at, his_orders, sent_at FROM prescriptions WHERE visit_id = ? AND deleted_at IS NULL ORDER BY created_at, revision, id`, d.Visit.ID)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	var reviewers []string
	for rows.Next() {
		var r rxRow
		var items string
		var signed, reviewed, paid, sent sql.NullString
		if err := rows.Scan(&r.ID, &r.Revision, &r.Status, &r.Diagnosis, &items, &r.Total, &signed, &r.ReviewerName, &reviewed,
			&r.ReviewReason, &paid, &r.HISOrders, &sent); err != nil {
			return ihos.Internal(err)
		}
		r.SignedAt, r.ReviewedAt, r.PaidAt, r.SentAt = nullTime(signed), nullTime(reviewed), nullTime(paid), nullTime(sent)
		r.StatusLabel, r.StatusClass = labelOf(prescriptions.StatusLabels, r.Status), rxStatusClass[r.Status]
		var lines []prescriptions.Item
		if json.Unmarshal([]byte(items), &lines) == nil {
			var drugs []string
			for _, l := range lines {
				drugs = append(drugs, fmt.Sprintf("%s %s ×%d%s", l.Name, l.Spec, l.Quantity, l.Unit))
			}
			r.Drugs = strings.Join(drugs, "；")
		}
		reviewers = append(reviewers, r.ReviewerName) // the id until named below
		d.Prescriptions = append(d.Prescriptions, r)
	}
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	names, err := o.names(ctx, "staff", reviewers)
	if err != nil {
		return err
	}
	for i := range d.Prescriptions {
		if n := names[d.Prescriptions[i].ReviewerName]; n != "" {
			d.Prescriptions[i].ReviewerName = n
		}
	}
	return nil
}

// emrStatusLabels names the EMR statuses of the emr package (draft, signed).
var emrStatusLabels = map[string]string{"draft": "草稿", "signed": "已签名"}

// detailEMR lists the visit's EMR versions when the emr_records table is
// there (the emr package adds it); it reads only the columns it finds.
func (o *onlineVisits) detailEMR(ctx context.Context, d *visitDetail) error {
	cols := o.columns(ctx, "emr_records")
	if !cols["visit_id"] || !cols["status"] {
		return nil
	}
	d.HasEMR = true
	pick := func(col, fallback string) string {
		if cols[col] {
			return col
		}
		return fallback
	}
	// revision numbers the record's versions (version is the row's own
	// change counter).
	q := `SELECT id, status, ` + pick("revision", "1") + `, ` + pick("doctor_id", "''") + `, ` + pick("signed_at", "NULL") + `, ` +
		pick("updated_at", "NULL") + ` FROM emr_records WHERE visit_id = ?`
	if cols["deleted_at"] {
		q += ` AND deleted_at IS NULL`
	}
	q += ` ORDER BY ` + pick("revision", "id") + `, id`
	rows, err := o.DB.QueryContext(ctx, q, d.Visit.ID)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	var doctors []string
	for rows.Next() {
		var r emrRow
		var signed, updated sql.NullString
		if err := rows.Scan(&r.ID, &r.Status, &r.Version, &r.DoctorName, &signed, &updated); err != nil {
			return ihos.Internal(err)
		}
		r.SignedAt, r.UpdatedAt = nullTime(signed), nullTime(updated)
		r.StatusLabel = labelOf(emrStatusLabels, r.Status)
		doctors = append(doctors, r.DoctorName)
		d.EMR = append(d.EMR, r)
	}
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	names, err := o.names(ctx, "staff", doctors)
	if err != nil {
		return err
	}
	for i := range d.EMR {
		if n := names[d.EMR[i].DoctorName]; n != "" {
			d.EMR[i].DoctorName = n
		}
	}
	return nil
}

// detailPayments reads the payments of the visit: its booking's fee and its
// prescriptions', with their refunds and e-invoices.
func (o *onlineVisits) detailPayments(ctx context.Context, d *visitDetail) error {
	conds := []string{"(business_type = ? AND business_id = ?)"}
	args := []any{ihos.PayConsultation, d.Visit.BookingID}
	for _, rx := range d.Prescriptions {
		conds = append(conds, "(business_type = ? AND business_id = ?)")
		args = append(args, ihos.PayPrescription, rx.ID)
	}
	rows, err := o.DB.QueryContext(ctx, `SELECT id, business_type, subject, status, channel, out_trade_no, total, refunded, created_at, paid_at
		FROM payments WHERE deleted_at IS NULL AND (`+strings.Join(conds, " OR ")+`) ORDER BY created_at, id`, args...)
	if err != nil {
		return ihos.Internal(err)
	}
	var ids []any
	for rows.Next() {
		var p payRow
		var bt, ch, created string
		var paid sql.NullString
		if err := rows.Scan(&p.ID, &bt, &p.Subject, &p.Status, &ch, &p.OutTradeNo, &p.Total, &p.Refunded, &created, &paid); err != nil {
			rows.Close()
			return ihos.Internal(err)
		}
		p.BusinessLabel, p.ChannelLabel, p.StatusLabel = labelOf(ihos.BusinessTypeLabels, bt), labelOf(ihos.ChannelLabels, ch), ihos.PaymentStatusLabel(p.Status)
		p.CreatedAt, _ = ihos.ParseTime(created)
		p.PaidAt = nullTime(paid)
		d.Payments = append(d.Payments, p)
		ids = append(ids, p.ID)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return ihos.Internal(err)
	}
	if len(ids) == 0 {
		return nil
	}
	in := `(?` + strings.Repeat(", ?", len(ids)-1) + `)`
	rows, err = o.DB.QueryContext(ctx, `SELECT payment_id, out_refund_no, status, reason, amount, created_at, done_at FROM refunds
		WHERE deleted_at IS NULL AND payment_id IN `+in+` ORDER BY created_at, id`, ids...)
	if err != nil {
		return ihos.Internal(err)
	}
	for rows.Next() {
		var r refundRow
		var created string
		var done sql.NullString
		if err := rows.Scan(&r.PaymentID, &r.OutRefundNo, &r.Status, &r.Reason, &r.Amount, &created, &done); err != nil {
			rows.Close()
			return ihos.Internal(err)
		}
		r.CreatedAt, _ = ihos.ParseTime(created)
		r.DoneAt = nullTime(done)
		r.StatusLabel = ihos.RefundStatusLabel(r.Status)
		d.Refunds = append(d.Refunds, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return ihos.Internal(err)
	}
	rows, err = o.DB.QueryContext(ctx, `SELECT payment_id, status, bill_batch_code, bill_no, picture_url, total, issued_at FROM invoices
		WHERE deleted_at IS NULL AND payment_id IN `+in+` ORDER BY created_at, id`, ids...)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r invoiceRow
		var issued sql.NullString
		if err := rows.Scan(&r.PaymentID, &r.Status, &r.BillBatchCode, &r.BillNo, &r.PictureURL, &r.Total, &issued); err != nil {
			return ihos.Internal(err)
		}
		r.IssuedAt = nullTime(issued)
		r.StatusLabel = invoicing.StatusLabel(r.Status)
		d.Invoices = append(d.Invoices, r)
	}
	return rows.Err()
}

// visitsTable is the list of f for export (every matching visit, at most
// onlineMaxExportRows).
func (o *onlineVisits) visitsTable(ctx context.Context, f onlineFilter) (payments.Table, error) {
	t := payments.Table{Name: "线上就诊记录", Header: []string{"就诊时段", "预约时间", "问诊方式", "状态", "患者", "性别", "科室", "医师", "职称",
		"接诊时间", "结束时间", "就诊编号"}}
	cond, args := o.visitWhere(ctx, f)
	var n int
	if err := o.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM visits v LEFT JOIN bookings b ON b.id = v.booking_id
		LEFT JOIN patients p ON p.id = v.patient_id`+cond, args...).Scan(&n); err != nil {
		return t, ihos.Internal(err)
	}
	if n > onlineMaxExportRows {
		return t, ihos.Errorf(ihos.EInvalid, "符合条件的就诊记录有 %d 条，超过一次最多导出的 %d 条，请缩小时间范围", n, onlineMaxExportRows)
	}
	rows, err := o.DB.QueryContext(ctx, visitSelect+cond+f.orderBy(), args...)
	if err != nil {
		return t, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := o.scanVisit(rows)
		if err != nil {
			return t, ihos.Internal(err)
		}
		t.Rows = append(t.Rows, []any{slotText(r.SlotStart, r.SlotEnd), localText(r.BookedAt), r.TypeLabel, r.StatusLabel, r.PatientName, r.PatientGender,
			r.DepartmentName, r.DoctorName, r.DoctorTitle, localText(r.AcceptedAt), localText(r.EndedAt), r.ID})
	}
	return t, rows.Err()
}

func localText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(ihos.Shanghai).Format(time.DateTime)
}

// slotText is a booked slot: "2024-05-06 09:00–09:15".
func slotText(start, end time.Time) string {
	if start.IsZero() {
		return ""
	}
	s := start.In(ihos.Shanghai).Format("2006-01-02 15:04")
	if !end.IsZero() {
		s += "–" + end.In(ihos.Shanghai).Format("15:04")
	}
	return s
}

// ---- the staff of the statistics ----

// staffInfo is a doctor or pharmacist as the statistics name them.
type staffInfo struct {
	ID, Name, Kind, Title, JobNo, DepartmentID, DepartmentName string
	deptOrder                                                  int
}

// staffDirectory reads the doctors and pharmacists (deleted ones too: their
// past work still counts) and the departments' names and order.
func (o *onlineVisits) staffDirectory(ctx context.Context) (map[string]*staffInfo, error) {
	depts := map[string]struct {
		name  string
		order int
	}{}
	rows, err := o.DB.QueryContext(ctx, `SELECT id, name, sort_order FROM departments`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	for rows.Next() {
		var id, name string
		var order int
		if err := rows.Scan(&id, &name, &order); err != nil {
			rows.Close()
			return nil, ihos.Internal(err)
		}
		depts[id] = struct {
			name  string
			order int
		}{name, order}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, ihos.Internal(err)
	}
	rows, err = o.DB.QueryContext(ctx, `SELECT id, name, kind, title, job_no, department_id FROM staff WHERE kind IN (?, ?)`,
		ihos.StaffDoctor, ihos.StaffPharmacist)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := map[string]*staffInfo{}
	for rows.Next() {
		s := &staffInfo{}
		if err := rows.Scan(&s.ID, &s.Name, &s.Kind, &s.Title, &s.JobNo, &s.DepartmentID); err != nil {
			return nil, ihos.Internal(err)
		}
		d := depts[s.DepartmentID]
		s.DepartmentName, s.deptOrder = d.name, d.order
		if s.DepartmentName == "" {
			s.DepartmentName = "未指定科室"
		}
		out[s.ID] = s
	}
	return out, rows.Err()
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
	first, last := periodDates(from, to)
	rows, err := o.DB.QueryContext(ctx, `SELECT DISTINCT staff_id FROM online_schedules WHERE deleted_at IS NULL AND enabled = 1
		AND visit_date >= ? AND visit_date <= ?`, first, last)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, ihos.Internal(err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// ---- 医师工作量统计 ----

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
	query := func(q string, args []any, scan func(rows *sql.Rows) error) error {
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
	var id, kind string
	var n int
	err = query(`SELECT doctor_id, visit_type, COUNT(*) FROM visits WHERE deleted_at IS NULL AND status = ? AND ended_at >= ? AND ended_at < ?
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
	err = query(`SELECT doctor_id, COUNT(*) FROM prescriptions WHERE deleted_at IS NULL AND signed_at >= ? AND signed_at < ? GROUP BY doctor_id`,
		[]any{from, to}, func(rows *sql.Rows) error {
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			at(id).RxIssued += n
			return nil
		})
	if err != nil {
		return nil, err
	}
	// A reviewed prescription is rejected or was approved (and may have been
	// paid and sent since).
	err = query(`SELECT doctor_id, reviewer_id, status, COUNT(*) FROM prescriptions WHERE deleted_at IS NULL AND reviewed_at >= ? AND reviewed_at < ?
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
		err = query(q+` GROUP BY doctor_id`, []any{from, to}, func(rows *sql.Rows) error {
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			at(id).EMRSigned += n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	taking := payments.TakingStatuses
	err = query(`SELECT doctor_id, COUNT(*), SUM(total), SUM(refunded) FROM payments WHERE deleted_at IS NULL AND doctor_id <> ''
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

	dept := departmentFilter(ctx, f.DepartmentID)
	var staff []*staffInfo
	for id := range counts {
		if s := staffFor(dir, id); keep(s, dept, f.DoctorID) {
			staff = append(staff, s)
		}
	}
	slices.SortFunc(staff, staffLess)
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
func workloadTables(w *workload) []payments.Table {
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
		return append(out, c.PaidCount, payments.Yuan(c.Paid), payments.Yuan(c.Refunded), payments.Yuan(c.Net()))
	}
	from, to := periodDates(w.From, w.To)
	staff := payments.Table{Name: "按医师", Header: append([]string{"科室", "姓名", "类别", "职称"}, head...)}
	for _, r := range w.Rows {
		staff.Rows = append(staff.Rows, append([]any{r.DepartmentName, r.Name, r.KindLabel, r.Title}, cells(r.workCounts)...))
	}
	staff.Rows = append(staff.Rows, append([]any{"合计（" + from + " 至 " + to + "）", "", "", ""}, cells(w.Total.workCounts)...))
	depts := payments.Table{Name: "按科室", Header: append([]string{"科室"}, head...)}
	for _, r := range w.Departments {
		depts.Rows = append(depts.Rows, append([]any{r.Name}, cells(r.workCounts)...))
	}
	depts.Rows = append(depts.Rows, append([]any{"合计"}, cells(w.Total.workCounts)...))
	return []payments.Table{staff, depts}
}

// ---- 医师接诊情况查询 ----

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
	rows, err := o.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	now := o.now()
	counts := map[string]*receptionCounts{}
	for rows.Next() {
		var doctor, status, booked string
		var accepted, ended, start, end sql.NullString
		if err := rows.Scan(&doctor, &status, &booked, &accepted, &ended, &start, &end); err != nil {
			return nil, ihos.Internal(err)
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
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
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
	dept := departmentFilter(ctx, f.DepartmentID)
	var staff []*staffInfo
	for id := range counts {
		if s := staffFor(dir, id); keep(s, dept, f.DoctorID) {
			staff = append(staff, s)
		}
	}
	slices.SortFunc(staff, staffLess)
	r := &reception{From: f.From, To: f.To}
	for _, s := range staff {
		c := *counts[s.ID]
		r.Rows = append(r.Rows, receptionRow{Key: s.ID, Name: s.Name, Title: s.Title, DepartmentName: s.DepartmentName, receptionCounts: c})
		r.Total.add(c)
	}
	return r, nil
}

func receptionTable(r *reception) payments.Table {
	from, to := periodDates(r.From, r.To)
	t := payments.Table{Name: "医师接诊情况", Header: []string{"科室", "医师", "职称", "就诊总数", "待接诊", "已超时", "问诊中", "已结束", "已取消",
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

// ---- pages ----

type filterOption struct{ Value, Label string }

// filterOptions are the choices of the forms: the departments (only their
// own for a department administrator) and doctors, the visit types and
// statuses. pharmacists adds the pharmacists to the doctors.
func (o *onlineVisits) filterOptions(ctx context.Context, pharmacists bool) (map[string][]filterOption, error) {
	out := map[string][]filterOption{}
	for _, t := range onlineTypeOrder {
		out["Types"] = append(out["Types"], filterOption{t, visits.TypeLabels[t]})
	}
	for _, s := range onlineStatusOrder {
		out["Statuses"] = append(out["Statuses"], filterOption{s, onlineStatusLabel(s)})
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
	for key, q := range map[string]struct {
		sql  string
		args []any
	}{
		"Departments": {dq + ` ORDER BY sort_order, name LIMIT 500`, dargs},
		"Doctors":     {sq + ` ORDER BY d.sort_order, s.kind, s.job_no LIMIT 1000`, sargs},
	} {
		rows, err := o.DB.QueryContext(ctx, q.sql, q.args...)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		for rows.Next() {
			var op filterOption
			if err := rows.Scan(&op.Value, &op.Label); err != nil {
				rows.Close()
				return nil, ihos.Internal(err)
			}
			out[key] = append(out[key], op)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, ihos.Internal(err)
		}
	}
	return out, nil
}

// formValues are the raw filter values the form shows again.
func formValues(q url.Values) map[string]string {
	out := map[string]string{}
	for _, k := range filterKeys {
		out[k] = strings.TrimSpace(q.Get(k))
	}
	return out
}

// passOn is the filter part of q (without the page, the detail id and the
// flash), with extra set.
func passOn(q url.Values, extra ...string) url.Values {
	u := url.Values{}
	for _, k := range filterKeys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			u.Set(k, v)
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		u.Set(extra[i], extra[i+1])
	}
	return u
}

func withQuery(path string, u url.Values) string {
	if len(u) == 0 {
		return path
	}
	return path + "?" + u.Encode()
}

// filterError is what a page says about a filter it could not read.
func filterError(err error) string {
	var e *ihos.Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var msgs []string
		for _, k := range keys {
			msgs = append(msgs, e.Fields[k])
		}
		return "查询条件有误：" + strings.Join(msgs, "；")
	}
	return ihos.ErrorMessage(err)
}

func (o *onlineVisits) describeFilter(ctx context.Context, f onlineFilter) string {
	f.DepartmentID = departmentFilter(ctx, f.DepartmentID)
	return f.describe(func(table, id string) string { return o.name(ctx, table, id) })
}

// visitsPage is 线上就诊记录: the visits by date (the booked slot's or the
// booking's), department, doctor, patient name, visit type and status,
// paged and exportable, and one visit's detail (?id=).
func (o *onlineVisits) visitsPage() console.Page {
	return console.Page{
		Name: "online_visits", Title: "线上就诊记录", Perm: onlinePerm, Template: onlineVisitsTemplate, After: "release_rules",
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			actor, _ := ihos.ActorFrom(ctx)
			data := map[string]any{"Q": formValues(q), "ListURL": withQuery("/console/x/online_visits", passOn(q)),
				"CanPayments": auth.Can(actor.Role, "payments.read")}
			if id := strings.TrimSpace(q.Get("id")); id != "" {
				d, err := o.visitDetail(ctx, id)
				if err != nil {
					return nil, err
				}
				if err := o.auditDetail(ctx, d); err != nil {
					return nil, err
				}
				data["Detail"] = d
				return data, nil
			}
			opts, err := o.filterOptions(ctx, false)
			if err != nil {
				return nil, err
			}
			data["Options"] = opts
			f, err := parseOnlineFilter(q)
			if err != nil {
				data["Error"] = filterError(err)
				f = onlineFilter{By: "slot"}
			}
			list, err := o.listVisits(ctx, f)
			if err != nil {
				return nil, err
			}
			if err := o.audit(ctx, "view", "online_visits", "", fmt.Sprintf("查询线上就诊记录：%s（共 %d 条，第 %d 页）",
				o.describeFilter(ctx, f), list.Total, list.Page)); err != nil {
				return nil, err
			}
			base := passOn(q)
			for i := range list.Rows {
				u := passOn(q, "id", list.Rows[i].ID)
				if list.Page > 1 {
					u.Set("page", strconv.Itoa(list.Page))
				}
				list.Rows[i].DetailURL = withQuery("/console/x/online_visits", u)
			}
			if list.Page > 1 {
				data["ListURL"] = withQuery("/console/x/online_visits", passOn(q, "page", strconv.Itoa(list.Page)))
			}
			pages := int(math.Ceil(float64(list.Total) / float64(list.PageSize)))
			if list.Page > 1 {
				data["Prev"] = withQuery("/console/x/online_visits", passOn(base, "page", strconv.Itoa(list.Page-1)))
			}
			if list.Page < pages {
				data["Next"] = withQuery("/console/x/online_visits", passOn(base, "page", strconv.Itoa(list.Page+1)))
			}
			data["List"], data["Pages"] = list, pages
			data["CSV"] = withQuery("/api/admin/online-visits/export", passOn(q, "format", "csv"))
			data["XLSX"] = withQuery("/api/admin/online-visits/export", passOn(q, "format", "xlsx"))
			return data, nil
		},
	}
}

// statsFilter reads a statistics filter; the period defaults to
// defaultFrom(today) … today. A filter that cannot be read falls back to
// the default with the message in errText.
func (o *onlineVisits) statsFilter(q url.Values, defaultFrom func(time.Time) time.Time) (f onlineFilter, errText string, err error) {
	f, err = parseOnlineFilter(q)
	if err == nil {
		err = f.withPeriod(o.now(), defaultFrom)
	}
	if err != nil {
		if ihos.ErrorCode(err) != ihos.EInvalid {
			return f, "", err
		}
		errText = filterError(err)
		f = onlineFilter{By: "slot"}
		if err := f.withPeriod(o.now(), defaultFrom); err != nil {
			return f, "", err
		}
	}
	return f, errText, nil
}

func monthStart(today time.Time) time.Time { return today.AddDate(0, 0, 1-today.Day()) }
func sameDay(today time.Time) time.Time    { return today }

// periodForm is the form's values with the period filled in.
func periodForm(q url.Values, f onlineFilter) (map[string]string, url.Values) {
	form := formValues(q)
	form["from"], form["to"] = periodDates(f.From, f.To)
	eq := url.Values{}
	for k, v := range form {
		if v != "" {
			eq.Set(k, v)
		}
	}
	return form, eq
}

// workloadPage is 医师工作量统计.
func (o *onlineVisits) workloadPage() console.Page {
	return console.Page{
		Name: "doctor_workload", Title: "医师工作量统计", Perm: onlinePerm, Template: doctorWorkloadTemplate, After: "x-online_visits",
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			opts, err := o.filterOptions(ctx, true)
			if err != nil {
				return nil, err
			}
			f, errText, err := o.statsFilter(q, monthStart)
			if err != nil {
				return nil, err
			}
			w, err := o.workload(ctx, f)
			if err != nil {
				return nil, err
			}
			from, to := periodDates(f.From, f.To)
			if err := o.audit(ctx, "view", "doctor_workload", "", "查询医师工作量统计："+o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To,
				DepartmentID: f.DepartmentID, DoctorID: f.DoctorID})); err != nil {
				return nil, err
			}
			form, eq := periodForm(q, f)
			return map[string]any{"Options": opts, "Q": form, "Error": errText, "W": w, "From": from, "To": to,
				"CSV":  withQuery("/api/admin/doctor-workload/export", passOn(eq, "format", "csv")),
				"XLSX": withQuery("/api/admin/doctor-workload/export", passOn(eq, "format", "xlsx"))}, nil
		},
	}
}

// receptionPage is 医师接诊情况查询.
func (o *onlineVisits) receptionPage() console.Page {
	return console.Page{
		Name: "doctor_reception", Title: "医师接诊情况查询", Perm: onlinePerm, Template: doctorReceptionTemplate, After: "x-doctor_workload",
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			opts, err := o.filterOptions(ctx, false)
			if err != nil {
				return nil, err
			}
			f, errText, err := o.statsFilter(q, sameDay)
			if err != nil {
				return nil, err
			}
			rc, err := o.reception(ctx, f)
			if err != nil {
				return nil, err
			}
			from, to := periodDates(f.From, f.To)
			if err := o.audit(ctx, "view", "doctor_reception", "", "查询医师接诊情况："+o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To,
				DepartmentID: f.DepartmentID, DoctorID: f.DoctorID, Type: f.Type})); err != nil {
				return nil, err
			}
			form, eq := periodForm(q, f)
			data := map[string]any{"Options": opts, "Q": form, "Error": errText, "R": rc, "From": from, "To": to,
				"CSV":  withQuery("/api/admin/doctor-reception/export", passOn(eq, "format", "csv")),
				"XLSX": withQuery("/api/admin/doctor-reception/export", passOn(eq, "format", "xlsx"))}
			// Each row links to that doctor's visits of the period.
			links := map[string]string{}
			for _, row := range rc.Rows {
				links[row.Key] = withQuery("/console/x/online_visits", passOn(url.Values{"from": {from}, "to": {to}, "doctor": {row.Key}, "type": {f.Type}}))
			}
			data["Links"] = links
			return data, nil
		},
	}
}

// ---- the JSON API and the exports ----

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
	from, to := periodDates(w.From, w.To)
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
	from, to := periodDates(r.From, r.To)
	return map[string]any{"from": from, "to": to, "rows": rows, "total": r.Total.counts()}
}

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
	guard("GET /api/admin/online-visits", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := parseOnlineFilter(r.URL.Query())
		if err != nil {
			return err
		}
		list, err := o.listVisits(ctx, f)
		if err != nil {
			return err
		}
		if err := o.audit(ctx, "view", "online_visits", "", fmt.Sprintf("查询线上就诊记录：%s（共 %d 条，第 %d 页）",
			o.describeFilter(ctx, f), list.Total, list.Page)); err != nil {
			return err
		}
		if list.Rows == nil {
			list.Rows = []visitRow{}
		}
		web.WriteJSON(w, http.StatusOK, list)
		return nil
	})
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
	guard("GET /api/admin/doctor-workload", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := parseOnlineFilter(r.URL.Query())
		if err == nil {
			err = f.withPeriod(o.now(), monthStart)
		}
		if err != nil {
			return err
		}
		wl, err := o.workload(ctx, f)
		if err != nil {
			return err
		}
		if err := o.audit(ctx, "view", "doctor_workload", "", "查询医师工作量统计："+o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To,
			DepartmentID: f.DepartmentID, DoctorID: f.DoctorID})); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, workloadJSON(wl))
		return nil
	})
	guard("GET /api/admin/doctor-reception", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := parseOnlineFilter(r.URL.Query())
		if err == nil {
			err = f.withPeriod(o.now(), sameDay)
		}
		if err != nil {
			return err
		}
		rc, err := o.reception(ctx, f)
		if err != nil {
			return err
		}
		if err := o.audit(ctx, "view", "doctor_reception", "", "查询医师接诊情况："+o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To,
			DepartmentID: f.DepartmentID, DoctorID: f.DoctorID, Type: f.Type})); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, receptionJSON(rc))
		return nil
	})
	guard("GET /api/admin/online-visits/export", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := exportFormat(r)
		if err != nil {
			return err
		}
		f, err := parseOnlineFilter(r.URL.Query())
		if err != nil {
			return err
		}
		t, err := o.visitsTable(ctx, f)
		if err != nil {
			return err
		}
		if err := o.audit(ctx, "export", "online_visits", "", fmt.Sprintf("导出线上就诊记录 %s：%s（%d 条）",
			strings.ToUpper(format), o.describeFilter(ctx, f), len(t.Rows))); err != nil {
			return err
		}
		return writeTables(w, format, "线上就诊记录_"+o.now().In(ihos.Shanghai).Format("20060102_150405"), t)
	})
	guard("GET /api/admin/doctor-workload/export", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := exportFormat(r)
		if err != nil {
			return err
		}
		f, err := parseOnlineFilter(r.URL.Query())
		if err == nil {
			err = f.withPeriod(o.now(), monthStart)
		}
		if err != nil {
			return err
		}
		wl, err := o.workload(ctx, f)
		if err != nil {
			return err
		}
		from, to := periodDates(f.From, f.To)
		if err := o.audit(ctx, "export", "doctor_workload", "", fmt.Sprintf("导出医师工作量统计 %s：%s", strings.ToUpper(format),
			o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To, DepartmentID: f.DepartmentID, DoctorID: f.DoctorID}))); err != nil {
			return err
		}
		return writeTables(w, format, "医师工作量统计_"+from+"至"+to, workloadTables(wl)...)
	})
	guard("GET /api/admin/doctor-reception/export", onlinePerm, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := exportFormat(r)
		if err != nil {
			return err
		}
		f, err := parseOnlineFilter(r.URL.Query())
		if err == nil {
			err = f.withPeriod(o.now(), sameDay)
		}
		if err != nil {
			return err
		}
		rc, err := o.reception(ctx, f)
		if err != nil {
			return err
		}
		from, to := periodDates(f.From, f.To)
		if err := o.audit(ctx, "export", "doctor_reception", "", fmt.Sprintf("导出医师接诊情况 %s：%s", strings.ToUpper(format),
			o.describeFilter(ctx, onlineFilter{From: f.From, To: f.To, DepartmentID: f.DepartmentID, DoctorID: f.DoctorID, Type: f.Type}))); err != nil {
			return err
		}
		return writeTables(w, format, "医师接诊情况_"+from+"至"+to, receptionTable(rc))
	})
}

func exportFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "csv":
		return "csv", nil
	case "xlsx":
		return "xlsx", nil
	}
	return "", ihos.Invalid(map[string]string{"format": "导出格式应为 csv 或 xlsx"})
}

// writeTables writes the tables as a download named name plus the format's
// extension, built whole first so an error still answers as JSON.
func writeTables(w http.ResponseWriter, format, name string, tables ...payments.Table) error {
	var buf bytes.Buffer
	var err error
	ctype := "text/csv; charset=utf-8"
	if format == "xlsx" {
		ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		err = payments.WriteXLSX(&buf, tables...)
	} else {
		err = payments.WriteCSV(&buf, tables...)
	}
	if err != nil {
		return ihos.Internal(err)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", payments.ContentDisposition(name+"."+format))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}
