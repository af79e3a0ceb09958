package kiosk

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/web"
)

//go:embed templates/kiosk.html
var kioskHTML string

//go:embed static
var staticFS embed.FS

var kioskPage = template.Must(template.New("kiosk").Parse(kioskHTML))

// Device states, as GET /kiosk/api/status and the page's data-state say.
const (
	StateUnpaired = "unpaired"
	StateDisabled = "disabled"
	StateReady    = "ready"
)

// Routes registers the kiosk page, its static files and its JSON API under
// /kiosk/. They are not behind the console session: the device cookie
// authorises them. Changing calls must carry the header X-Kiosk: 1, which a
// form or link from another site cannot send; the cookie is SameSite=Strict
// as well.
//
//	GET  /kiosk/                  the page (start screen, or 本机尚未登记 / 本机暂停服务)
//	GET  /kiosk/static/…          kiosk.js, kiosk.css
//	GET  /kiosk/api/status        {state, name, location, idle_seconds, voucher, printer, message}
//	POST /kiosk/api/pair          {code} → status; sets the device cookie
//	POST /kiosk/api/identify      {method: id_number|visit_no|voucher, value} → overview
//	GET  /kiosk/api/overview      (X-Kiosk-Session) → overview, read again from the HIS
//	POST /kiosk/api/print         {kind: registration|report, ref: visit or report number} → {job_id}
//	POST /kiosk/api/reprint       {job_id} → {job_id}
//	GET  /kiosk/api/jobs/{id}     → {status: pending|printed|failed, message}
//	POST /kiosk/api/logout        ends the patient session
//	POST /kiosk/api/pay/quote     {fee_ids, ec_token} → the split to confirm (pre-settlement)
//	POST /kiosk/api/pay           {quote_id} → the payment (with its QR code while unpaid)
//	GET  /kiosk/api/pay/{id}      → the payment; prints the receipt and the e-invoice once
//	POST /kiosk/api/pay/{id}/cancel → the payment, cancelled unless paid meanwhile
//	GET  /kiosk/api/pay/{id}/qr.png the cash QR code of the session's unpaid payment
func (s *Service) Routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /kiosk/static/", http.StripPrefix("/kiosk/static/", http.FileServerFS(static)))
	mux.Handle("GET /kiosk", http.RedirectHandler("/kiosk/", http.StatusFound))
	mux.Handle("GET /kiosk/{$}", web.HandlerFunc(s.page))
	mux.Handle("GET /kiosk/api/status", web.HandlerFunc(s.status))
	mux.Handle("POST /kiosk/api/pair", web.HandlerFunc(s.pair))
	mux.Handle("POST /kiosk/api/identify", s.api(s.identify))
	mux.Handle("GET /kiosk/api/overview", s.api(s.overview))
	mux.Handle("POST /kiosk/api/print", s.api(s.print))
	mux.Handle("POST /kiosk/api/reprint", s.api(s.reprint))
	mux.Handle("GET /kiosk/api/jobs/{id}", s.api(s.job))
	mux.Handle("POST /kiosk/api/logout", s.api(s.logout))
	mux.Handle("POST /kiosk/api/pay/quote", s.api(s.payQuote))
	mux.Handle("POST /kiosk/api/pay", s.api(s.payStart))
	mux.Handle("GET /kiosk/api/pay/{id}", s.api(s.payStatus))
	mux.Handle("POST /kiosk/api/pay/{id}/cancel", s.api(s.payCancel))
	mux.Handle("GET /kiosk/api/pay/{id}/qr.png", s.api(s.payQR))
}

// statusView is the device's state.
type statusView struct {
	State       string `json:"state"`
	Message     string `json:"message,omitempty"`
	Name        string `json:"name,omitempty"`
	Location    string `json:"location,omitempty"`
	IdleSeconds int    `json:"idle_seconds,omitempty"`
	Voucher     bool   `json:"voucher"`
	Printer     bool   `json:"printer"`
}

func (s *Service) statusOf(k Kiosk, paired bool) statusView {
	switch {
	case !paired:
		return statusView{State: StateUnpaired, Message: msgUnpaired}
	case !k.Enabled:
		return statusView{State: StateDisabled, Message: msgDisabled, Name: k.Name, Location: k.Location}
	}
	return statusView{State: StateReady, Name: k.Name, Location: k.Location, IdleSeconds: k.IdleSeconds,
		Voucher: s.Vouchers != nil, Printer: s.Printer != nil && k.PrinterID != ""}
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

func (s *Service) page(w http.ResponseWriter, r *http.Request) error {
	k, paired, err := s.device(r)
	if err != nil {
		return err
	}
	st := s.statusOf(k, paired)
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return kioskPage.Execute(w, map[string]any{"Hospital": s.Hospital, "Status": st, "IdleSeconds": max(st.IdleSeconds, 15)})
}

func (s *Service) status(w http.ResponseWriter, r *http.Request) error {
	k, paired, err := s.device(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, s.statusOf(k, paired))
	return nil
}

func checkHeader(r *http.Request) error {
	if r.Header.Get("X-Kiosk") != "1" {
		return ihos.Errorf(ihos.EForbidden, "请求无效，请刷新页面")
	}
	return nil
}

func (s *Service) pair(w http.ResponseWriter, r *http.Request) error {
	if err := checkHeader(r); err != nil {
		return err
	}
	var in struct {
		Code string `json:"code"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	k, token, err := s.Pair(r.Context(), strings.TrimSpace(in.Code), web.ClientIP(r))
	if err != nil {
		return err
	}
	s.setCookie(w, token)
	web.WriteJSON(w, http.StatusOK, s.statusOf(k, true))
	return nil
}

// api adapts a handler that needs a paired, enabled kiosk.
func (s *Service) api(fn func(w http.ResponseWriter, r *http.Request, k Kiosk) error) http.Handler {
	return web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet {
			if err := checkHeader(r); err != nil {
				return err
			}
		}
		k, paired, err := s.device(r)
		switch {
		case err != nil:
			return err
		case !paired:
			return ihos.Errorf(ihos.EForbidden, msgUnpaired)
		case !k.Enabled:
			return ihos.Errorf(ihos.EForbidden, msgDisabled)
		}
		a := kioskActor(k, web.ClientIP(r))
		a.RequestID = web.RequestID(r.Context())
		return fn(w, r.WithContext(ihos.WithActor(r.Context(), a)), k)
	})
}

func sessionID(r *http.Request) string { return r.Header.Get("X-Kiosk-Session") }

// Overview is what the patient's screens show.
type Overview struct {
	Session  string       `json:"session"`
	Patient  PatientView  `json:"patient"`
	Visits   []VisitView  `json:"visits"`
	Fees     []FeeView    `json:"fees"`
	FeeTotal string       `json:"fee_total"` // yuan, "0.00" when nothing is owed
	PayHint  string       `json:"pay_hint"`
	Pay      bool         `json:"pay"` // the kiosk takes payments of the fees
	Reports  []ReportView `json:"reports"`
	Tickets  []TicketView `json:"tickets"` // earlier tickets to reprint
	Printer  bool         `json:"printer"` // the kiosk can print
	Notice   string       `json:"notice,omitempty"`
	IdleSecs int          `json:"idle_seconds"`
}

// PatientView is the patient, masked for a screen in a public hall.
type PatientView struct {
	Name string `json:"name"` // 张*三
	Sex  string `json:"sex"`  // 男, 女 or ""
}

// VisitView is one of today's registrations.
type VisitView struct {
	VisitNo    string `json:"visit_no"`
	Department string `json:"department"`
	Doctor     string `json:"doctor"`
	Time       string `json:"time"` // the time slot, or the registered time
	QueueNo    string `json:"queue_no"`
	Fee        string `json:"fee"`
	Status     string `json:"status"` // 已挂号, 已就诊, 已退号
	Printable  bool   `json:"printable"`
}

// FeeView is one unpaid fee.
type FeeView struct {
	FeeID    string `json:"fee_id"` // "" for a fee the HIS gave no id: it cannot be paid here
	Item     string `json:"item"`
	Quantity string `json:"quantity"`
	Amount   string `json:"amount"`
	Date     string `json:"date"`
}

// ReportView is a report with its results.
type ReportView struct {
	ReportNo     string    `json:"report_no"`
	Kind         string    `json:"kind"` // 检验 or 检查
	Name         string    `json:"name"`
	Department   string    `json:"department"`
	Doctor       string    `json:"doctor"`
	ReportedAt   string    `json:"reported_at"`
	Status       string    `json:"status"` // 已审核, 初步报告, 已更正
	Printable    bool      `json:"printable"`
	Conclusion   string    `json:"conclusion"`
	Observations []ObsView `json:"observations"`
}

// ObsView is one result line; Flag is ↑, ↓ or "".
type ObsView struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Units string `json:"units"`
	Range string `json:"range"`
	Flag  string `json:"flag"`
}

// TicketView is a ticket printed earlier.
type TicketView struct {
	JobID   string `json:"job_id"`
	Title   string `json:"title"`
	Printed string `json:"printed"`
}

func shanghai(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.In(ihos.Shanghai).Format(layout)
}

var visitStatus = map[string]string{ihos.VisitRegistered: "已挂号", ihos.VisitSeen: "已就诊", ihos.VisitCancelled: "已退号"}

var resultStatus = map[string]string{"F": "已审核", "C": "已更正", "P": "初步报告"}

func (s *Service) overviewOf(ctx context.Context, k Kiosk, sess *session) (*Overview, error) {
	s.mu.Lock()
	p, visits, reports := sess.patient, sess.visits, sess.reports
	var fees []ihos.HISFee
	for _, f := range sess.fees {
		if f.FeeID == "" || !sess.paid[f.FeeID] {
			fees = append(fees, f)
		}
	}
	s.mu.Unlock()
	canPrint := s.Printer != nil && k.PrinterID != ""
	o := &Overview{Session: sess.id, PayHint: msgPayHint, Pay: s.Cashier != nil, Printer: canPrint, IdleSecs: k.IdleSeconds,
		Visits: []VisitView{}, Fees: []FeeView{}, Reports: []ReportView{}, Tickets: []TicketView{}}
	if o.Pay {
		o.PayHint = msgPayHere
	}
	o.Patient = PatientView{Name: maskName(p.Name), Sex: map[string]string{"M": "男", "F": "女"}[p.Sex]}
	if !canPrint {
		o.Notice = msgNoPrinter
	}
	for _, v := range visits {
		vv := VisitView{VisitNo: v.VisitNo, Department: v.DepartmentName, Doctor: v.DoctorName, Time: v.TimeSlot,
			QueueNo: v.QueueNo, Fee: ihos.FormatYuan(v.FeeFen), Status: visitStatus[v.Status], Printable: canPrint && v.Status != ihos.VisitCancelled}
		if vv.Time == "" {
			vv.Time = shanghai(v.VisitedAt, "15:04")
		}
		if vv.Status == "" {
			vv.Status = "已挂号"
		}
		o.Visits = append(o.Visits, vv)
	}
	var total int64
	for _, f := range fees {
		total += f.AmountFen
		o.Fees = append(o.Fees, FeeView{FeeID: f.FeeID, Item: f.ItemName, Quantity: f.Quantity, Amount: ihos.FormatYuan(f.AmountFen), Date: shanghai(f.CreatedAt, "01-02")})
	}
	o.FeeTotal = ihos.FormatYuan(total)
	for _, r := range reports {
		o.Reports = append(o.Reports, reportView(r, canPrint))
	}
	if s.Printer != nil {
		jobs, err := s.Printer.PatientJobs(ctx, p.HISID, reprintListMax)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		for _, j := range jobs {
			sess.jobs[j.JobID] = true
		}
		s.mu.Unlock()
		for _, j := range jobs {
			if j.Status != JobPrinted {
				continue
			}
			o.Tickets = append(o.Tickets, TicketView{JobID: j.JobID, Title: j.Title, Printed: shanghai(j.CreatedAt, "01-02 15:04")})
		}
	}
	return o, nil
}

func reportView(r ihos.HISReport, canPrint bool) ReportView {
	kind := "检验"
	if r.Kind == ihos.CatalogExam {
		kind = "检查"
	}
	rv := ReportView{ReportNo: r.ReportNo, Kind: kind, Name: r.ServiceName, Department: r.DepartmentName, Doctor: r.DoctorName,
		ReportedAt: shanghai(r.ReportedAt, "2006-01-02 15:04"), Status: resultStatus[r.ResultStatus],
		Printable: canPrint && r.ResultStatus != "P", Conclusion: r.Conclusion, Observations: []ObsView{}}
	for _, ob := range r.Observations {
		flag := map[string]string{"H": "↑", "L": "↓"}[ob.Flag]
		rv.Observations = append(rv.Observations, ObsView{Name: ob.Name, Value: ob.Value, Units: ob.Units, Range: ob.Range, Flag: flag})
	}
	return rv
}

func (s *Service) identify(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	var in struct {
		Method string `json:"method"`
		Value  string `json:"value"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	sess, err := s.Identify(r.Context(), k, in.Method, in.Value)
	if err != nil {
		return err
	}
	if err := s.load(r.Context(), sess); err != nil {
		s.endSession(k, sess.id)
		return err
	}
	o, err := s.overviewOf(r.Context(), k, sess)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, o)
	return nil
}

func (s *Service) overview(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	if err := s.load(r.Context(), sess); err != nil {
		return err
	}
	o, err := s.overviewOf(r.Context(), k, sess)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, o)
	return nil
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	s.endSession(k, sessionID(r))
	web.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

type jobView struct {
	JobID string `json:"job_id"`
}

func (s *Service) print(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	var in struct {
		Kind string `json:"kind"`
		Ref  string `json:"ref"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if s.Printer == nil || k.PrinterID == "" {
		return ihos.Errorf(ihos.EUnavailable, msgNoPrinter)
	}
	t, title, err := s.ticket(k, sess, in.Kind, in.Ref)
	if err != nil {
		return err
	}
	ctx := r.Context()
	id, err := s.Printer.Print(ctx, k.PrinterID, t, title, "kiosk:"+k.ID, sess.patient.HISID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	sess.jobs[id] = true
	s.mu.Unlock()
	if err := s.auditPrint(ctx, k, "print", id, fmt.Sprintf("自助机「%s」为患者 %s 打印%s", k.Name, sess.patient.HISID, title)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, jobView{JobID: id})
	return nil
}

func (s *Service) reprint(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	var in struct {
		JobID string `json:"job_id"`
	}
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if s.Printer == nil || k.PrinterID == "" {
		return ihos.Errorf(ihos.EUnavailable, msgNoPrinter)
	}
	s.mu.Lock()
	mine := sess.jobs[in.JobID]
	s.mu.Unlock()
	if !mine {
		return ihos.Errorf(ihos.ENotFound, "未找到这张凭条，请到人工窗口补打")
	}
	ctx := r.Context()
	id, err := s.Printer.Reprint(ctx, in.JobID, "kiosk:"+k.ID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	sess.jobs[id] = true
	s.mu.Unlock()
	if err := s.auditPrint(ctx, k, "reprint", id, fmt.Sprintf("自助机「%s」为患者 %s 补打凭条（原打印任务 %s）", k.Name, sess.patient.HISID, in.JobID)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, jobView{JobID: id})
	return nil
}

func (s *Service) auditPrint(ctx context.Context, k Kiosk, action, jobID, summary string) error {
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: action, Resource: "kiosks", RecordID: k.ID,
			Summary: summary, After: []byte(fmt.Sprintf(`{"job_id":%q,"printer_id":%q}`, jobID, k.PrinterID))})
	})
}

func (s *Service) job(w http.ResponseWriter, r *http.Request, k Kiosk) error {
	sess, err := s.session(k, sessionID(r))
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	s.mu.Lock()
	mine := sess.jobs[id]
	s.mu.Unlock()
	if !mine || s.Printer == nil {
		return ihos.Errorf(ihos.ENotFound, "打印任务不存在")
	}
	status, lastErr, err := s.Printer.JobStatus(r.Context(), id)
	if err != nil {
		return err
	}
	if status != JobPrinted && status != JobFailed {
		status = JobPending
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"status": status, "message": lastErr})
	return nil
}
