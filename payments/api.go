package payments

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/web"
)

// Authorizer checks that the request may use perm and returns the context to
// continue with (the console session or the console token).
type Authorizer = web.Authorizer

// Filter selects payments for List. Times bound created_at: From inclusive,
// To exclusive.
type Filter struct {
	From, To     time.Time
	Channel      string
	Status       string
	PatientID    string
	DoctorID     string
	DepartmentID string
	BusinessType string
	HospitalID   string
	Page         int // 1-based
	PageSize     int
}

// MaxPageSize bounds a page.
const MaxPageSize = 200

// Item is a payment as the list shows it.
type Item struct {
	*ihos.Payment
	BusinessTypeLabel string `json:"business_type_label"`
	ChannelLabel      string `json:"channel_label"`
	TotalYuan         string `json:"total_yuan"`
}

func item(p *ihos.Payment) Item {
	return Item{Payment: p, BusinessTypeLabel: ihos.BusinessTypeLabels[p.BusinessType], ChannelLabel: ihos.ChannelLabels[p.Channel],
		TotalYuan: ihos.FormatYuan(p.Total)}
}

// Page is one page of List.
type Page struct {
	Items    []Item `json:"items"`
	Total    int    `json:"total"`
	Page     int    `json:"page"`
	PageSize int    `json:"page_size"`
}

// List returns payments newest first. A department-scoped actor sees only
// their department's payments.
func (s *Service) List(ctx context.Context, f Filter) (*Page, error) {
	if f.Page <= 0 {
		f.Page = 1
	}
	if f.PageSize <= 0 {
		f.PageSize = 20
	}
	f.PageSize = min(f.PageSize, MaxPageSize)
	where := []string{"deleted_at IS NULL"}
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if !f.From.IsZero() {
		add("created_at >= ?", ihos.FormatTime(f.From))
	}
	if !f.To.IsZero() {
		add("created_at < ?", ihos.FormatTime(f.To))
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
	cond := " WHERE " + strings.Join(where, " AND ")
	out := &Page{Items: []Item{}, Page: f.Page, PageSize: f.PageSize}
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM payments`+cond, args...).Scan(&out.Total); err != nil {
		return nil, ihos.Internal(err)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+paymentCols+` FROM payments`+cond+` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, f.PageSize, (f.Page-1)*f.PageSize)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out.Items = append(out.Items, item(p))
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// Detail is one payment with its history and refunds.
type Detail struct {
	Item
	Events  []Event        `json:"events"`
	Refunds []*ihos.Refund `json:"refunds"`
}

// Detail returns a payment with its history and refunds.
func (s *Service) Detail(ctx context.Context, id string) (*Detail, error) {
	p, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if a, ok := ihos.ActorFrom(ctx); ok && a.Scoped && (a.DepartmentID == "" || a.DepartmentID != p.DepartmentID) {
		return nil, errNotFound
	}
	d := &Detail{Item: item(p), Events: []Event{}, Refunds: []*ihos.Refund{}}
	if ev, err := s.Events(ctx, id); err != nil {
		return nil, err
	} else if ev != nil {
		d.Events = ev
	}
	if rs, err := s.Refunds(ctx, id); err != nil {
		return nil, err
	} else if rs != nil {
		d.Refunds = rs
	}
	return d, nil
}

// ParseFilter reads a Filter from query parameters: from, to (RFC 3339, or a
// date YYYY-MM-DD in Asia/Shanghai; a date as "to" includes that whole day),
// channel, status, patient, doctor, department, business_type, page,
// page_size.
func ParseFilter(q map[string][]string) (Filter, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	var f Filter
	bad := map[string]string{}
	parseT := func(name string, endOfDay bool) time.Time {
		v := get(name)
		if v == "" {
			return time.Time{}
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
		if t, err := time.ParseInLocation("2006-01-02", v, ihos.Shanghai); err == nil {
			if endOfDay {
				t = t.AddDate(0, 0, 1)
			}
			return t
		}
		bad[name] = "时间格式应为 YYYY-MM-DD 或 RFC 3339"
		return time.Time{}
	}
	f.From = parseT("from", false)
	f.To = parseT("to", true)
	f.Channel, f.Status, f.BusinessType = get("channel"), get("status"), get("business_type")
	f.PatientID, f.DoctorID, f.DepartmentID = get("patient"), get("doctor"), get("department")
	if f.Channel != "" {
		if _, ok := ihos.ChannelLabels[f.Channel]; !ok {
			bad["channel"] = "支付方式无效"
		}
	}
	if f.BusinessType != "" {
		if _, ok := ihos.BusinessTypeLabels[f.BusinessType]; !ok {
			bad["business_type"] = "业务类型无效"
		}
	}
	if f.Status != "" && ihos.PaymentStatusLabel(f.Status) == f.Status {
		bad["status"] = "状态无效"
	}
	for _, k := range []string{"page", "page_size"} {
		v := get(k)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || (k == "page_size" && n > MaxPageSize) || n > 1_000_000 {
			bad[k] = "应为 1 以上的整数"
			if k == "page_size" {
				bad[k] = "每页条数应在 1 到 " + strconv.Itoa(MaxPageSize) + " 之间"
			}
			continue
		}
		if k == "page" {
			f.Page = n
		} else {
			f.PageSize = n
		}
	}
	if len(bad) > 0 {
		return f, ihos.Invalid(bad)
	}
	return f, nil
}

// AdminRoutes registers the console's read-only payment API ("payments.read"):
// GET /api/admin/payments (filters and paging, see ParseFilter) and
// GET /api/admin/payments/{id} (with events and refunds). It only reads, so
// it serves the appliance's replica as well as the cloud.
func (s *Service) AdminRoutes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("GET /api/admin/payments", "payments.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			return err
		}
		page, err := s.List(ctx, f)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, page)
		return nil
	})
	handle("GET /api/admin/payments/{id}", "payments.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		d, err := s.Detail(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, d)
		return nil
	})
}

// RefundRoutes registers POST /api/admin/payments/{id}/refunds
// ("payments.write"): a staff refund. Cloud only — payments are cloud-owned, so
// the appliance must not write them (its console would go through the RPC).
func (s *Service) RefundRoutes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("POST /api/admin/payments/{id}/refunds", "payments.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Amount     int64  `json:"amount"` // fen
			Reason     string `json:"reason"`
			RequestKey string `json:"request_key"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if strings.TrimSpace(req.Reason) == "" {
			return ihos.Invalid(map[string]string{"reason": "请填写退款原因"})
		}
		if _, err := s.Detail(ctx, r.PathValue("id")); err != nil { // scope check
			return err
		}
		ref, err := s.Refund(ctx, r.PathValue("id"), RefundRequest{Amount: req.Amount, Reason: req.Reason, RequestKey: req.RequestKey})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, ref)
		return nil
	})
}
