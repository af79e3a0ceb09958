package payments

import (
	"context"
	_ "embed"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/console"
	"ihos/internal/export"
	"ihos/internal/web"
)

//go:embed templates/payments.html
var ordersTemplate string

//go:embed templates/stats.html
var statsTemplate string

// ReasonLabels names the history reasons for staff.
var ReasonLabels = map[string]string{
	ReasonCreated: "创建订单", ReasonPayStarted: "开始支付", ReasonInsuranceSettled: "医保结算完成",
	ReasonInsurancePending: "医保结算结果待查", ReasonInsuranceFailed: "医保结算失败", ReasonSplitChanged: "医保分割金额变化",
	ReasonSplitConfirmed: "患者确认新的分割金额", ReasonCashCreated: "现金部分已下单", ReasonCashUnknown: "现金支付结果待查",
	ReasonPaid: "支付成功", ReasonCashFailed: "现金支付失败", ReasonQueried: "查询结果", ReasonCancelRequested: "患者取消",
	ReasonDeadline: "超时关闭", ReasonCashClosed: "现金订单已关闭", ReasonInsuranceReverse: "医保结算已撤销",
	ReasonWoundDown: "订单已终止", ReasonAmountMismatch: "金额不符", ReasonRefundRequested: "申请退款",
	ReasonRefundLeg: "退款进度", ReasonRefundSucceeded: "退款成功", ReasonRefundFailed: "退款失败",
}

// Orders of the filter options, as staff expect them.
var (
	channelOrder  = []string{ihos.ChannelSelfPay, ihos.ChannelInsuranceMobile, ihos.ChannelInsuranceSite}
	statusOrder   = []string{ihos.PaymentCreated, ihos.PaymentPaying, ihos.PaymentPaid, ihos.PaymentPartiallyRefunded, ihos.PaymentRefunded, ihos.PaymentFailed, ihos.PaymentCancelled, ihos.PaymentClosed}
	businessOrder = []string{ihos.PayVisitFee, ihos.PayConsultation, ihos.PayClinicOrder, ihos.PayPrescription, ihos.PayNursingOrder, ihos.PayNursingConsumables, ihos.PayDeliveryFee, ihos.PayOutpatientBill}
)

// filterOptions are the choices of the filter form: channels, statuses,
// business types, and the departments and doctors by name.
func (s *Service) filterOptions(ctx context.Context) (map[string][]admin.Option, error) {
	out := map[string][]admin.Option{
		"Channels": console.Labeled(channelOrder, func(k string) string { return ihos.ChannelLabels[k] }),
		"Statuses": console.Labeled(statusOrder, ihos.PaymentStatusLabel),
		"Types":    console.Labeled(businessOrder, func(k string) string { return ihos.BusinessTypeLabels[k] }),
	}
	for key, q := range map[string]string{
		"Departments": `SELECT id, name FROM departments WHERE deleted_at IS NULL ORDER BY sort_order, name LIMIT 500`,
		"Doctors":     `SELECT id, name FROM staff WHERE deleted_at IS NULL AND kind = 'doctor' ORDER BY name LIMIT 1000`,
	} {
		opts, err := console.Options(ctx, s.DB, q)
		if err != nil {
			return nil, err
		}
		out[key] = opts
	}
	return out, nil
}

// orderRow is a payment as the console lists it, with names for the ids.
type orderRow struct {
	Item
	PatientName, DoctorName, DepartmentName string
	StatusClass                             string
	InsLabel, CashLabel                     string
	DetailURL                               string
}

// legLabels names the state of an insurance or cash leg.
var legLabels = map[string]string{ihos.LegNone: "无", ihos.LegPending: "处理中", ihos.LegDone: "完成",
	ihos.LegFailed: "失败", ihos.LegReversed: "已撤销"}

// statusClass is the tag colour of a status: green paid, red refunded, grey
// ended without money.
func statusClass(status string) string {
	switch status {
	case ihos.PaymentPaid:
		return "on"
	case ihos.PaymentPartiallyRefunded, ihos.PaymentRefunded:
		return "act-delete"
	case ihos.PaymentFailed, ihos.PaymentCancelled, ihos.PaymentClosed:
		return "off"
	}
	return ""
}

// rowNames looks up the patients', doctors' and departments' names of ps.
type rowNames struct{ patients, doctors, departments map[string]string }

func (s *Service) rowNames(ctx context.Context, ps []*ihos.Payment) (rowNames, error) {
	var pat, doc, dept []string
	for _, p := range ps {
		pat, doc, dept = append(pat, p.PatientID), append(doc, p.DoctorID), append(dept, p.DepartmentID)
	}
	var n rowNames
	var err error
	if n.patients, err = console.Names(ctx, s.DB, "patients", pat); err != nil {
		return n, err
	}
	if n.doctors, err = console.Names(ctx, s.DB, "staff", doc); err != nil {
		return n, err
	}
	n.departments, err = console.Names(ctx, s.DB, "departments", dept)
	return n, err
}

func (n rowNames) row(it Item) orderRow {
	or := func(m map[string]string, id string) string {
		if v := m[id]; v != "" {
			return v
		}
		return id
	}
	return orderRow{Item: it, PatientName: or(n.patients, it.PatientID), DoctorName: or(n.doctors, it.DoctorID),
		DepartmentName: departmentLabel(it.DepartmentID, n.departments), StatusClass: statusClass(it.Status),
		InsLabel: labelOr(legLabels, it.InsStatus), CashLabel: labelOr(legLabels, it.CashStatus)}
}

// eventRow is a history entry with its labels.
type eventRow struct {
	Event
	FromLabel, ToLabel, ReasonLabel, DetailText string
}

// filterKeys are the query parameters of the filter form.
var filterKeys = []string{"from", "to", "channel", "status", "business_type", "patient", "doctor", "department"}

// exportQuery is the filter part of q with format set, for the export links.
func exportQuery(q url.Values, format string, drop ...string) string {
	u := console.Filters(q, filterKeys)
	for _, k := range drop {
		u.Del(k)
	}
	u.Set("format", format)
	return u.Encode()
}

// Page is the console's 支付订单查询: payments filtered by time, channel,
// status, business type, patient, doctor and department, paged, exportable to
// CSV and Excel, and one payment's detail (?id=) with its status history and
// refunds. It only reads, so it serves the appliance's replica as well.
func (s *Service) Page() console.Page {
	return console.Page{
		Name: "payments", Title: "支付订单查询", Perm: "payments.read", Template: ordersTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			opts, err := s.filterOptions(ctx)
			if err != nil {
				return nil, err
			}
			data := map[string]any{"Q": console.FormValues(q, filterKeys), "Options": opts}
			list := url.Values{}
			for k, v := range q {
				if k != "id" && k != "msg" {
					list[k] = v
				}
			}
			data["ListURL"] = console.Link("/console/x/payments", list)
			if id := strings.TrimSpace(q.Get("id")); id != "" {
				d, err := s.Detail(ctx, id)
				if err != nil {
					return nil, err
				}
				n, err := s.rowNames(ctx, []*ihos.Payment{d.Payment})
				if err != nil {
					return nil, err
				}
				evs := make([]eventRow, len(d.Events))
				for i, e := range d.Events {
					evs[i] = eventRow{Event: e, FromLabel: ihos.PaymentStatusLabel(e.FromStatus), ToLabel: ihos.PaymentStatusLabel(e.ToStatus),
						ReasonLabel: labelOr(ReasonLabels, e.Reason), DetailText: string(e.Detail)}
				}
				data["Detail"], data["Events"], data["Refunds"] = n.row(d.Item), evs, d.Refunds
				return data, nil
			}
			f, err := ParseFilter(q)
			if err != nil {
				data["Error"] = console.FilterError(err)
				f = Filter{}
			}
			f.PageSize = 20
			page, err := s.List(ctx, f)
			if err != nil {
				return nil, err
			}
			ps := make([]*ihos.Payment, len(page.Items))
			for i, it := range page.Items {
				ps[i] = it.Payment
			}
			n, err := s.rowNames(ctx, ps)
			if err != nil {
				return nil, err
			}
			rows := make([]orderRow, len(page.Items))
			for i, it := range page.Items {
				rows[i] = n.row(it)
				u := maps.Clone(list)
				u.Set("id", it.ID)
				rows[i].DetailURL = console.Link("/console/x/payments", u)
			}
			pages := int(math.Ceil(float64(page.Total) / float64(page.PageSize)))
			prev, next := console.PageLinks("/console/x/payments", list, page.Page, pages)
			data["Rows"], data["Total"], data["Page"], data["Pages"], data["Prev"], data["Next"] = rows, page.Total, page.Page, pages, prev, next
			data["CSV"] = "/api/admin/payments/export?" + exportQuery(q, "csv")
			data["XLSX"] = "/api/admin/payments/export?" + exportQuery(q, "xlsx")
			return data, nil
		},
	}
}

// statsFilter reads the statistics' filter from q: the period defaults to
// this month so far (Asia/Shanghai).
func (s *Service) statsFilter(q url.Values) (Filter, error) {
	f, err := ParseFilter(q)
	if err != nil {
		return f, err
	}
	now := s.now().In(ihos.Shanghai)
	if f.From.IsZero() {
		f.From = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, ihos.Shanghai)
	}
	if f.To.IsZero() {
		f.To = time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, ihos.Shanghai)
	}
	f.Status, f.Page, f.PageSize = "", 0, 0
	return f, nil
}

// StatsPage is the console's 医保运营统计: for a period, the number of
// payments taken and their totals split into insurance fund, personal account
// and cash, with refunds, overall, per day, department, channel and business
// type; exportable to CSV and Excel.
func (s *Service) StatsPage() console.Page {
	return console.Page{
		Name: "payment_stats", Title: "医保运营统计", Perm: "payments.read", Template: statsTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			opts, err := s.filterOptions(ctx)
			if err != nil {
				return nil, err
			}
			data := map[string]any{"Options": opts}
			f, err := s.statsFilter(q)
			var st *Stats
			if err == nil {
				st, err = s.Stats(ctx, f)
			}
			if err != nil {
				if ihos.ErrorCode(err) != ihos.EInvalid {
					return nil, err
				}
				data["Error"] = console.FilterError(err)
				if f, err = s.statsFilter(url.Values{}); err != nil {
					return nil, err
				}
				if st, err = s.Stats(ctx, f); err != nil {
					return nil, err
				}
			}
			form := console.FormValues(q, filterKeys)
			form["from"], form["to"] = console.Dates(f.From, f.To)
			eq := url.Values{}
			for k, v := range form {
				eq.Set(k, v)
			}
			data["Q"], data["Stats"] = form, st
			data["CSV"] = "/api/admin/payments/stats/export?" + exportQuery(eq, "csv", "status")
			data["XLSX"] = "/api/admin/payments/stats/export?" + exportQuery(eq, "xlsx", "status")
			return data, nil
		},
	}
}

// MaxExportRows bounds one export of the order list.
const MaxExportRows = 100_000

// ExportRoutes registers the console's downloads ("payments.read"):
// GET /api/admin/payments/export?format=csv|xlsx&<filters of ParseFilter>
// (the order list, newest first, at most MaxExportRows) and
// GET /api/admin/payments/stats/export?format=csv|xlsx&from&to&<filters>
// (the statistics; the period defaults to this month). Amounts are in yuan.
// Every export is audited.
func (s *Service) ExportRoutes(mux *http.ServeMux, authorize Authorizer) {
	guard := web.Guard(mux, authorize)
	handle := func(pattern string, fn web.AuthorizedFunc) { guard(pattern, "payments.read", fn) }
	handle("GET /api/admin/payments/export", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := export.Format(r)
		if err != nil {
			return err
		}
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			return err
		}
		t, err := s.OrdersTable(ctx, f)
		if err != nil {
			return err
		}
		name := "支付订单_" + s.now().In(ihos.Shanghai).Format("20060102_150405")
		if err := s.auditExport(ctx, fmt.Sprintf("导出支付订单 %s（%d 条；条件 %s）", strings.ToUpper(format), len(t.Rows), exportQuery(r.URL.Query(), format))); err != nil {
			return err
		}
		return export.Write(w, format, name, t)
	})
	handle("GET /api/admin/payments/stats/export", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		format, err := export.Format(r)
		if err != nil {
			return err
		}
		f, err := s.statsFilter(r.URL.Query())
		if err != nil {
			return err
		}
		st, err := s.Stats(ctx, f)
		if err != nil {
			return err
		}
		from, to := console.Dates(st.From, st.To)
		if err := s.auditExport(ctx, fmt.Sprintf("导出医保运营统计 %s（%s 至 %s）", strings.ToUpper(format), from, to)); err != nil {
			return err
		}
		return export.Write(w, format, "医保运营统计_"+from+"至"+to, StatsTables(st)...)
	})
}

func (s *Service) auditExport(ctx context.Context, summary string) error {
	return audit.Record(ctx, s.DB, audit.Entry{Action: "export", Resource: "payments", Summary: summary})
}

// OrdersTable is the order list of f for export, newest first: every matching
// payment (f's paging is ignored), at most MaxExportRows.
func (s *Service) OrdersTable(ctx context.Context, f Filter) (export.Table, error) {
	t := export.Table{Name: "支付订单", Header: []string{"下单时间", "支付时间", "订单号", "业务类型", "业务单号", "摘要", "患者", "医生", "科室",
		"支付方式", "订单状态", "订单总额(元)", "医保基金(元)", "个人账户(元)", "现金(元)", "已退款(元)", "渠道交易号"}}
	cond, args := adminWhere(ctx, f, "created_at")
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM payments`+cond, args...).Scan(&n); err != nil {
		return t, ihos.Internal(err)
	}
	if n > MaxExportRows {
		return t, ihos.Errorf(ihos.EInvalid, "符合条件的订单有 %d 条，超过一次最多导出的 %d 条，请缩小时间范围", n, MaxExportRows)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+paymentCols+` FROM payments`+cond+` ORDER BY created_at DESC, id DESC`, args...)
	if err != nil {
		return t, ihos.Internal(err)
	}
	var ps []*ihos.Payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			rows.Close()
			return t, ihos.Internal(err)
		}
		ps = append(ps, p)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return t, ihos.Internal(err)
	}
	names, err := s.rowNames(ctx, ps)
	if err != nil {
		return t, err
	}
	local := func(at time.Time) string {
		if at.IsZero() {
			return ""
		}
		return at.In(ihos.Shanghai).Format(time.DateTime)
	}
	for _, p := range ps {
		r := names.row(item(p))
		t.Rows = append(t.Rows, []any{local(p.CreatedAt), local(p.PaidAt), p.OutTradeNo, r.BusinessTypeLabel, p.BusinessID, p.Subject,
			r.PatientName, r.DoctorName, r.DepartmentName, r.ChannelLabel, p.StatusLabel,
			export.Yuan(p.Total), export.Yuan(p.FundPay), export.Yuan(p.AccountPay), export.Yuan(p.CashPay), export.Yuan(p.Refunded), p.TransactionID})
	}
	return t, nil
}

// StatsTables are the statistics for export: the summary, then per day,
// department, channel and business type.
func StatsTables(st *Stats) []export.Table {
	from, to := console.Dates(st.From, st.To)
	amounts := []string{"笔数", "订单总额(元)", "医保基金(元)", "个人账户(元)", "现金(元)", "已退款(元)", "净收入(元)"}
	cells := func(v Sums) []any {
		return []any{v.Count, export.Yuan(v.Total), export.Yuan(v.Fund), export.Yuan(v.Account), export.Yuan(v.Cash), export.Yuan(v.Refunded), export.Yuan(v.Net())}
	}
	table := func(name, first string, rows []StatsRow, withTotal bool) export.Table {
		t := export.Table{Name: name, Header: append([]string{first}, amounts...)}
		for _, r := range rows {
			t.Rows = append(t.Rows, append([]any{r.Label}, cells(r.Sums)...))
		}
		if withTotal {
			t.Rows = append(t.Rows, append([]any{"合计"}, cells(st.Overall)...))
		}
		return t
	}
	summary := export.Table{Name: "汇总", Header: append([]string{"统计区间"}, amounts...),
		Rows: [][]any{append([]any{from + " 至 " + to}, cells(st.Overall)...)}}
	return []export.Table{summary,
		table("按日", "日期", st.Days, true),
		table("按科室", "科室", st.Departments, true),
		table("按支付方式", "支付方式", st.Channels, true),
		table("按业务类型", "业务类型", st.BusinessTypes, true),
	}
}
