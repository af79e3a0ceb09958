package appliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ihos"
	"ihos/internal/console"
	"ihos/internal/export"
	"ihos/internal/sqldb"
	"ihos/invoicing"
	"ihos/prescriptions"
	"ihos/visits"
)

// 线上就诊记录: the visits with their history, booking, messages,
// prescriptions, EMR, payments, refunds and invoices, as the list, the
// detail and the download read them.

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
	err := o.each(ctx, visitSelect+cond+f.orderBy()+` LIMIT ? OFFSET ?`, append(args, out.PageSize, (out.Page-1)*out.PageSize),
		func(rows *sql.Rows) error {
			r, err := o.scanVisit(rows)
			if err != nil {
				return err
			}
			out.Rows = append(out.Rows, r)
			return nil
		})
	if err != nil {
		return nil, err
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
	return o.each(ctx, `SELECT from_status, to_status, actor_role, actor_id, reason, at FROM visit_events
		WHERE visit_id = ? AND deleted_at IS NULL ORDER BY at, id`, []any{d.Visit.ID}, func(rows *sql.Rows) error {
		var e visitEventRow
		var from, to, role, actor, at string
		if err := rows.Scan(&from, &to, &role, &actor, &e.Reason, &at); err != nil {
			return err
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
		return nil
	})
}

func (o *onlineVisits) detailMessages(ctx context.Context, d *visitDetail) error {
	return o.each(ctx, `SELECT sender_role, kind, COUNT(*) FROM visit_messages WHERE visit_id = ? AND deleted_at IS NULL
		GROUP BY sender_role, kind`, []any{d.Visit.ID}, func(rows *sql.Rows) error {
		var role, kind string
		var n int
		if err := rows.Scan(&role, &kind, &n); err != nil {
			return err
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
		return nil
	})
}

func (o *onlineVisits) detailPrescriptions(ctx context.Context, d *visitDetail) error {
	err := o.each(ctx, `SELECT id, revision, status, diagnosis, items, total_fen, signed_at, reviewer_id, reviewed_at,
		review_reason, paid_at, his_orders, sent_at FROM prescriptions WHERE visit_id = ? AND deleted_at IS NULL ORDER BY created_at, revision, id`,
		[]any{d.Visit.ID}, func(rows *sql.Rows) error {
			var r rxRow
			var items string
			var signed, reviewed, paid, sent sql.NullString
			if err := rows.Scan(&r.ID, &r.Revision, &r.Status, &r.Diagnosis, &items, &r.Total, &signed, &r.ReviewerName, &reviewed,
				&r.ReviewReason, &paid, &r.HISOrders, &sent); err != nil {
				return err
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
			// r.ReviewerName is the reviewer's id until named below.
			d.Prescriptions = append(d.Prescriptions, r)
			return nil
		})
	if err != nil {
		return err
	}
	reviewers := make([]*string, len(d.Prescriptions))
	for i := range d.Prescriptions {
		reviewers[i] = &d.Prescriptions[i].ReviewerName
	}
	return o.nameStaff(ctx, reviewers)
}

// nameStaff replaces the staff ids ids point at with the staff members'
// names; an id not found stays.
func (o *onlineVisits) nameStaff(ctx context.Context, ids []*string) error {
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = *id
	}
	names, err := console.Names(ctx, o.DB, "staff", want)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if n := names[*id]; n != "" {
			*id = n
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
	err := o.each(ctx, q, []any{d.Visit.ID}, func(rows *sql.Rows) error {
		var r emrRow
		var signed, updated sql.NullString
		if err := rows.Scan(&r.ID, &r.Status, &r.Version, &r.DoctorName, &signed, &updated); err != nil {
			return err
		}
		r.SignedAt, r.UpdatedAt = nullTime(signed), nullTime(updated)
		r.StatusLabel = labelOf(emrStatusLabels, r.Status)
		// r.DoctorName is the doctor's id until named below.
		d.EMR = append(d.EMR, r)
		return nil
	})
	if err != nil {
		return err
	}
	doctors := make([]*string, len(d.EMR))
	for i := range d.EMR {
		doctors[i] = &d.EMR[i].DoctorName
	}
	return o.nameStaff(ctx, doctors)
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
	var ids []any
	err := o.each(ctx, `SELECT id, business_type, subject, status, channel, out_trade_no, total, refunded, created_at, paid_at
		FROM payments WHERE deleted_at IS NULL AND (`+strings.Join(conds, " OR ")+`) ORDER BY created_at, id`, args, func(rows *sql.Rows) error {
		var p payRow
		var bt, ch, created string
		var paid sql.NullString
		if err := rows.Scan(&p.ID, &bt, &p.Subject, &p.Status, &ch, &p.OutTradeNo, &p.Total, &p.Refunded, &created, &paid); err != nil {
			return err
		}
		p.BusinessLabel, p.ChannelLabel, p.StatusLabel = labelOf(ihos.BusinessTypeLabels, bt), labelOf(ihos.ChannelLabels, ch), ihos.PaymentStatusLabel(p.Status)
		p.CreatedAt, _ = ihos.ParseTime(created)
		p.PaidAt = nullTime(paid)
		d.Payments = append(d.Payments, p)
		ids = append(ids, p.ID)
		return nil
	})
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	in := `(?` + strings.Repeat(", ?", len(ids)-1) + `)`
	err = o.each(ctx, `SELECT payment_id, out_refund_no, status, reason, amount, created_at, done_at FROM refunds
		WHERE deleted_at IS NULL AND payment_id IN `+in+` ORDER BY created_at, id`, ids, func(rows *sql.Rows) error {
		var r refundRow
		var created string
		var done sql.NullString
		if err := rows.Scan(&r.PaymentID, &r.OutRefundNo, &r.Status, &r.Reason, &r.Amount, &created, &done); err != nil {
			return err
		}
		r.CreatedAt, _ = ihos.ParseTime(created)
		r.DoneAt = nullTime(done)
		r.StatusLabel = ihos.RefundStatusLabel(r.Status)
		d.Refunds = append(d.Refunds, r)
		return nil
	})
	if err != nil {
		return err
	}
	return o.each(ctx, `SELECT payment_id, status, bill_batch_code, bill_no, picture_url, total, issued_at FROM invoices
		WHERE deleted_at IS NULL AND payment_id IN `+in+` ORDER BY created_at, id`, ids, func(rows *sql.Rows) error {
		var r invoiceRow
		var issued sql.NullString
		if err := rows.Scan(&r.PaymentID, &r.Status, &r.BillBatchCode, &r.BillNo, &r.PictureURL, &r.Total, &issued); err != nil {
			return err
		}
		r.IssuedAt = nullTime(issued)
		r.StatusLabel = invoicing.StatusLabel(r.Status)
		d.Invoices = append(d.Invoices, r)
		return nil
	})
}

// visitsTable is the list of f for export (every matching visit, at most
// onlineMaxExportRows).
func (o *onlineVisits) visitsTable(ctx context.Context, f onlineFilter) (export.Table, error) {
	t := export.Table{Name: "线上就诊记录", Header: []string{"就诊时段", "预约时间", "问诊方式", "状态", "患者", "性别", "科室", "医师", "职称",
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
	err := o.each(ctx, visitSelect+cond+f.orderBy(), args, func(rows *sql.Rows) error {
		r, err := o.scanVisit(rows)
		if err != nil {
			return err
		}
		t.Rows = append(t.Rows, []any{slotText(r.SlotStart, r.SlotEnd), localText(r.BookedAt), r.TypeLabel, r.StatusLabel, r.PatientName, r.PatientGender,
			r.DepartmentName, r.DoctorName, r.DoctorTitle, localText(r.AcceptedAt), localText(r.EndedAt), r.ID})
		return nil
	})
	return t, err
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
