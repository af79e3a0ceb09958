package cloud

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"time"

	"ihos"
	"ihos/accounts"
	"ihos/internal/sqldb"
	"ihos/internal/web"
	"ihos/invoicing"
	"ihos/visits"
)

// patientLists is the personal center's history (个人中心): the visits and
// the payment orders of everyone on a patient account, read across the
// visit, booking, rating, payment and e-invoice tables (the e-invoices are the
// hospital's, replicated to the cloud).
type patientLists struct {
	db       *sqldb.DB
	visits   *visits.Service
	patients *accounts.Service
}

// VisitItem is one visit in the patient's history.
type VisitItem struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	StatusLabel    string    `json:"status_label"`
	Type           string    `json:"type"`
	TypeLabel      string    `json:"type_label"`
	DoctorID       string    `json:"doctor_id"`
	DoctorName     string    `json:"doctor_name"`
	DoctorTitle    string    `json:"doctor_title"`
	DepartmentName string    `json:"department_name"`
	PatientID      string    `json:"patient_id"`
	PatientName    string    `json:"patient_name"`
	SlotStart      time.Time `json:"slot_start,omitzero"`
	CreatedAt      time.Time `json:"created_at"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	BookingID      string    `json:"booking_id"`
	QueuePosition  int       `json:"queue_position,omitempty"` // waiting visits only
	Rated          bool      `json:"rated"`
	CanRate        bool      `json:"can_rate"` // ended and not rated yet
}

// OrderItem is one payment order in the patient's history.
type OrderItem struct {
	ID            string        `json:"id"`
	BusinessKind  string        `json:"business_kind"`
	BusinessLabel string        `json:"business_label"`
	BusinessID    string        `json:"business_id"`
	Subject       string        `json:"subject"`
	PatientID     string        `json:"patient_id"`
	PatientName   string        `json:"patient_name"`
	Amount        int64         `json:"amount"` // fen
	AmountYuan    string        `json:"amount_yuan"`
	Refunded      int64         `json:"refunded"`
	State         string        `json:"state"`
	StateLabel    string        `json:"state_label"`
	CreatedAt     time.Time     `json:"created_at"`
	PaidAt        time.Time     `json:"paid_at,omitzero"`
	Invoice       *OrderInvoice `json:"invoice"` // null until the hospital issued it
}

// OrderInvoice is an order's e-invoice (财政电子票据).
type OrderInvoice struct {
	Number      string `json:"number"` // 票据号码
	Code        string `json:"code"`   // 票据代码
	URL         string `json:"url"`    // the bill's picture, else its check page
	Status      string `json:"status"`
	StatusLabel string `json:"status_label"`
}

// routes registers, for a patient session:
//
//	GET /api/patient/visits?patient=&before=&limit=  → [VisitItem], newest first
//	GET /api/patient/orders?patient=&before=&limit=  → [OrderItem], newest first
//
// patient narrows to one member; before (RFC 3339, the last item's
// created_at) pages back; limit defaults to 50, at most 200.
func (x patientLists) routes(mux *http.ServeMux) {
	x.patients.Handle(mux, "GET /api/patient/visits", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		q, err := x.query(ctx, p, r)
		if err != nil {
			return err
		}
		list, err := x.visitList(ctx, p, q)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, list)
		return nil
	})
	x.patients.Handle(mux, "GET /api/patient/orders", func(ctx context.Context, p accounts.Patient, w http.ResponseWriter, r *http.Request) error {
		q, err := x.query(ctx, p, r)
		if err != nil {
			return err
		}
		list, err := x.orderList(ctx, p, q)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, list)
		return nil
	})
}

// listQuery is a history request.
type listQuery struct {
	patient string
	before  string // stored time form
	limit   int
}

func (x patientLists) query(ctx context.Context, p accounts.Patient, r *http.Request) (listQuery, error) {
	v := r.URL.Query()
	q := listQuery{limit: 50}
	if s := strings.TrimSpace(v.Get("patient")); s != "" {
		if _, err := x.patients.MemberByPatient(ctx, p, s); err != nil {
			if ihos.ErrorCode(err) == ihos.ENotFound {
				return q, errNotFamily
			}
			return q, err
		}
		q.patient = s
	}
	if s := v.Get("before"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, ihos.Invalid(map[string]string{"before": "时间格式应为 RFC 3339，如 2026-12-01T08:00:00Z"})
		}
		q.before = ihos.FormatTime(t)
	}
	if s := v.Get("limit"); s != "" {
		n, err := queryInt(s, "limit")
		if err != nil {
			return q, err
		}
		if n > 0 {
			q.limit = int(min(n, 200))
		}
	}
	return q, nil
}

func (x patientLists) visitList(ctx context.Context, p accounts.Patient, q listQuery) ([]*VisitItem, error) {
	where := `v.deleted_at IS NULL`
	args := []any{p.AccountID}
	if q.patient != "" {
		where += ` AND v.patient_id = ?`
		args = append(args, q.patient)
	}
	if q.before != "" {
		where += ` AND v.created_at < ?`
		args = append(args, q.before)
	}
	rows, err := x.db.QueryContext(ctx, `SELECT v.id, v.status, v.visit_type, v.doctor_id, COALESCE(s.name, ''), COALESCE(s.title, ''),
		COALESCE(d.name, sd.name, ''), v.patient_id, COALESCE(p.name, ''), COALESCE(b.start_at, ''), v.created_at, v.ended_at, v.booking_id,
		CASE WHEN r.id IS NULL THEN 0 ELSE 1 END
		FROM visits v
		JOIN patient_members m ON m.patient_id = v.patient_id AND m.account_id = ? AND m.deleted_at IS NULL
		LEFT JOIN staff s ON s.id = v.doctor_id
		LEFT JOIN departments d ON d.id = v.department_id
		LEFT JOIN departments sd ON sd.id = s.department_id
		LEFT JOIN patients p ON p.id = v.patient_id
		LEFT JOIN bookings b ON b.id = v.booking_id
		LEFT JOIN ratings r ON r.visit_id = v.id
		WHERE `+where+` ORDER BY v.created_at DESC, v.id DESC LIMIT ?`, append(args, q.limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	out := []*VisitItem{}
	for rows.Next() {
		var it VisitItem
		var slot, created string
		var ended sql.NullString
		var rated int
		if err := rows.Scan(&it.ID, &it.Status, &it.Type, &it.DoctorID, &it.DoctorName, &it.DoctorTitle, &it.DepartmentName, &it.PatientID,
			&it.PatientName, &slot, &created, &ended, &it.BookingID, &rated); err != nil {
			rows.Close()
			return nil, ihos.Internal(err)
		}
		it.StatusLabel, it.TypeLabel = visits.StatusLabels[it.Status], visits.TypeLabels[it.Type]
		it.SlotStart, it.CreatedAt, it.EndedAt = parseStored(slot), parseStored(created), parseStored(ended.String)
		it.Rated = rated == 1
		it.CanRate = it.Status == visits.StatusEnded && !it.Rated
		out = append(out, &it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	for _, it := range out {
		if it.Status != visits.StatusWaiting {
			continue
		}
		pos, err := x.visits.QueuePosition(ctx, visits.System, it.ID)
		if err != nil {
			return nil, err
		}
		it.QueuePosition = pos
	}
	return out, nil
}

func (x patientLists) orderList(ctx context.Context, p accounts.Patient, q listQuery) ([]*OrderItem, error) {
	where := `pm.deleted_at IS NULL`
	args := []any{p.AccountID}
	if q.patient != "" {
		where += ` AND pm.patient_id = ?`
		args = append(args, q.patient)
	}
	if q.before != "" {
		where += ` AND pm.created_at < ?`
		args = append(args, q.before)
	}
	rows, err := x.db.QueryContext(ctx, `SELECT pm.id, pm.business_type, pm.business_id, pm.subject, pm.patient_id, COALESCE(pt.name, ''),
		pm.total, pm.refunded, pm.status, pm.created_at, pm.paid_at,
		i.bill_no, i.bill_batch_code, i.picture_net_url, i.picture_url, i.qr_code, i.status
		FROM payments pm
		JOIN patient_members m ON m.patient_id = pm.patient_id AND m.account_id = ? AND m.deleted_at IS NULL
		LEFT JOIN patients pt ON pt.id = pm.patient_id
		LEFT JOIN invoices i ON i.payment_id = pm.id AND i.deleted_at IS NULL AND i.status IN ('`+invoicing.StatusIssued+`', '`+invoicing.StatusWrittenOff+`')
		WHERE `+where+` ORDER BY pm.created_at DESC, pm.id DESC LIMIT ?`, append(args, q.limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []*OrderItem{}
	for rows.Next() {
		var it OrderItem
		var created string
		var paid sql.NullString
		var no, code, netURL, picURL, qr, status sql.NullString
		if err := rows.Scan(&it.ID, &it.BusinessKind, &it.BusinessID, &it.Subject, &it.PatientID, &it.PatientName,
			&it.Amount, &it.Refunded, &it.State, &created, &paid, &no, &code, &netURL, &picURL, &qr, &status); err != nil {
			return nil, ihos.Internal(err)
		}
		it.BusinessLabel = ihos.BusinessTypeLabels[it.BusinessKind]
		if it.BusinessLabel == "" {
			it.BusinessLabel = it.BusinessKind
		}
		it.AmountYuan, it.StateLabel = ihos.FormatYuan(it.Amount), ihos.PaymentStatusLabel(it.State)
		it.CreatedAt, it.PaidAt = parseStored(created), parseStored(paid.String)
		if status.Valid {
			url := netURL.String
			for _, u := range []string{picURL.String, qr.String} {
				if url == "" {
					url = u
				}
			}
			it.Invoice = &OrderInvoice{Number: no.String, Code: code.String, URL: url, Status: status.String,
				StatusLabel: invoicing.StatusLabel(status.String)}
		}
		out = append(out, &it)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

func parseStored(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := ihos.ParseTime(s)
	return t
}
