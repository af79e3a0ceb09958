package hissim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// routes serves the /his/api JSON variant of the interface and the /control
// API. The control API works in every mode.
func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, s.apiMode(h))
	}
	api("GET /his/api/patients", s.apiPatients)
	api("GET /his/api/patients/{his_id}/visits", s.apiVisits)
	api("GET /his/api/patients/{his_id}/fees", s.apiFees)
	api("GET /his/api/patients/{his_id}/reports", s.apiReports)
	api("GET /his/api/catalog/{kind}", s.apiCatalog)
	api("POST /his/api/messages", s.apiMessage)
	api("GET /his/api/results", s.apiResults)
	api("/his/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{"AR", "没有这个接口：" + r.Method + " " + r.URL.Path})
	})
	mux.HandleFunc("GET /control", s.controlState)
	mux.HandleFunc("POST /control/mode", s.controlMode)
	mux.HandleFunc("GET /control/messages", s.controlMessages)
	return s.logRequests(mux)
}

func (s *Sim) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.status, "elapsed_ms", time.Since(start).Milliseconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiMode applies the mode to /his/api: 503 when down, a delay when slow.
func (s *Sim) apiMode(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mode := s.currentMode()
		switch mode.Name {
		case ModeDown:
			writeJSON(w, http.StatusServiceUnavailable, apiError{"AE", "HIS 系统暂停服务（模拟停机）"})
			return
		case ModeSlow:
			pause(r.Context(), mode.Delay)
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":"AE","message":"HIS 内部错误"}`)
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body)
	w.Write([]byte("\n"))
}

func (s *Sim) internalError(w http.ResponseWriter, err error) {
	s.log.Error("http request failed", "err", err)
	writeJSON(w, http.StatusInternalServerError, apiError{"AE", "HIS 内部错误，请稍后重试"})
}

type patientJSON struct {
	HISID         string `json:"his_id"`
	Name          string `json:"name"`
	Sex           string `json:"sex"`
	BirthDate     string `json:"birth_date"`
	IDNumber      string `json:"id_number"`
	Phone         string `json:"phone"`
	InsuranceCard string `json:"insurance_card"`
}

func (s *Sim) apiPatients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var typ, value string
	switch {
	case q.Get("id_number") != "":
		typ, value = "NNCHN", q.Get("id_number")
	case q.Get("insurance_card") != "":
		typ, value = "HC", q.Get("insurance_card")
	case q.Get("his_id") != "":
		typ, value = "PI", q.Get("his_id")
	case q.Get("visit_no") != "":
		typ, value = "VN", q.Get("visit_no")
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"AE", "请给出 id_number、insurance_card、his_id 或 visit_no 之一"})
		return
	}
	pats, err := s.findPatients(r.Context(), typ, value)
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := []patientJSON{}
	for _, p := range pats {
		out = append(out, patientJSON{p.HISID, p.Name, p.Sex, dashDate(p.BirthDate), p.IDNumber, p.Phone, p.InsuranceCard})
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": out})
}

// dashDate turns yyyyMMdd into YYYY-MM-DD.
func dashDate(s string) string {
	if len(s) != 8 {
		return s
	}
	return s[:4] + "-" + s[4:6] + "-" + s[6:]
}

func (s *Sim) knownPatient(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("his_id")
	ok, err := s.patientExists(r.Context(), id)
	if err != nil {
		s.internalError(w, err)
		return "", false
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{"AE", "患者不存在：HIS 患者号 " + id + " 在本院没有记录"})
		return "", false
	}
	return id, true
}

func (s *Sim) apiVisits(w http.ResponseWriter, r *http.Request) {
	id, ok := s.knownPatient(w, r)
	if !ok {
		return
	}
	since, ok := querySince(w, r)
	if !ok {
		return
	}
	visits, err := s.visits(r.Context(), id, since)
	if err != nil {
		s.internalError(w, err)
		return
	}
	type diagJSON struct {
		Code        string `json:"code"`
		Name        string `json:"name"`
		DiagnosedAt string `json:"diagnosed_at"`
	}
	type visitJSON struct {
		VisitNo        string     `json:"visit_no"`
		DepartmentCode string     `json:"department_code"`
		DepartmentName string     `json:"department_name"`
		DoctorCode     string     `json:"doctor_code"`
		DoctorName     string     `json:"doctor_name"`
		VisitedAt      string     `json:"visited_at"`
		QueueNo        string     `json:"queue_no"`
		TimeSlot       string     `json:"time_slot"`
		FeeFen         int64      `json:"fee_fen"`
		Status         string     `json:"status"`
		Diagnoses      []diagJSON `json:"diagnoses"`
	}
	out := []visitJSON{}
	for _, v := range visits {
		vj := visitJSON{v.VisitNo, v.DeptCode, v.DeptName, v.DoctorCode, v.DoctorName, rfc3339(v.At), v.QueueNo, v.TimeSlot, v.FeeFen, v.Status, []diagJSON{}}
		for _, d := range v.Diagnoses {
			vj.Diagnoses = append(vj.Diagnoses, diagJSON{d.Code, d.Name, rfc3339(d.At)})
		}
		out = append(out, vj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"visits": out})
}

// querySince reads ?since=YYYY-MM-DD (Beijing) or an RFC 3339 time; zero when
// absent. It answers 400 itself when since is malformed.
func querySince(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.ParseInLocation("2006-01-02", v, beijing)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"AE", "since 须为 YYYY-MM-DD：" + v})
			return time.Time{}, false
		}
	}
	return t, true
}

func (s *Sim) apiReports(w http.ResponseWriter, r *http.Request) {
	id, ok := s.knownPatient(w, r)
	if !ok {
		return
	}
	since, ok := querySince(w, r)
	if !ok {
		return
	}
	reports, err := s.reports(r.Context(), id, since)
	if err != nil {
		s.internalError(w, err)
		return
	}
	type reportJSON struct {
		ReportNo       string        `json:"report_no"`
		PlacerOrderNo  string        `json:"placer_order_no,omitempty"`
		Kind           string        `json:"kind"`
		VisitNo        string        `json:"visit_no"`
		ServiceCode    string        `json:"service_code"`
		ServiceName    string        `json:"service_name"`
		DepartmentCode string        `json:"department_code"`
		DepartmentName string        `json:"department_name"`
		DoctorName     string        `json:"doctor_name"`
		ResultStatus   string        `json:"result_status"`
		ReportedAt     string        `json:"reported_at"`
		Observations   []observation `json:"observations"`
		Conclusion     string        `json:"conclusion"`
	}
	out := []reportJSON{}
	for _, rep := range reports {
		obs := rep.Observations
		if obs == nil {
			obs = []observation{}
		}
		out = append(out, reportJSON{rep.ReportNo, rep.PlacerOrderNo, rep.Kind, rep.VisitNo, rep.ServiceCode, rep.ServiceName, rep.DeptCode, rep.DeptName,
			rep.Reporter, rep.ResultStatus, rfc3339(rep.At), obs, rep.Conclusion})
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out})
}

func (s *Sim) apiFees(w http.ResponseWriter, r *http.Request) {
	id, ok := s.knownPatient(w, r)
	if !ok {
		return
	}
	if st := r.URL.Query().Get("status"); st != "" && st != "unpaid" {
		writeJSON(w, http.StatusBadRequest, apiError{"AE", "只能查询待缴费用（status=unpaid）"})
		return
	}
	fees, err := s.unpaidFees(r.Context(), id)
	if err != nil {
		s.internalError(w, err)
		return
	}
	type feeJSON struct {
		FeeID          string `json:"fee_id"`
		VisitNo        string `json:"visit_no"`
		ItemCode       string `json:"item_code"`
		ItemName       string `json:"item_name"`
		Quantity       string `json:"quantity"`
		AmountFen      int64  `json:"amount_fen"`
		DepartmentCode string `json:"department_code"`
		DoctorCode     string `json:"doctor_code"`
		CreatedAt      string `json:"created_at"`
	}
	out := []feeJSON{}
	for _, f := range fees {
		out = append(out, feeJSON{f.FeeID, f.VisitNo, f.ItemCode, f.ItemName, f.Quantity, f.AmountFen, f.DeptCode, f.DoctorCode, rfc3339(f.At)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"fees": out})
}

type itemJSON struct {
	Kind         string   `json:"kind"`
	Code         string   `json:"code"`
	Name         string   `json:"name"`
	Spec         string   `json:"spec"`
	Unit         string   `json:"unit"`
	PriceFen     int64    `json:"price_fen"`
	Stock        *int64   `json:"stock"`
	Flags        []string `json:"flags"`
	Category     string   `json:"category"`
	Active       bool     `json:"active"`
	Specimen     string   `json:"specimen"`
	Manufacturer string   `json:"manufacturer,omitempty"`
}

func (s *Sim) apiCatalog(w http.ResponseWriter, r *http.Request) {
	kind := strings.ToUpper(r.PathValue("kind"))
	switch kind {
	case "DRUG", "EXAM", "LAB":
	default:
		writeJSON(w, http.StatusNotFound, apiError{"AE", "没有这个目录：" + r.PathValue("kind") + "（drug、exam、lab）"})
		return
	}
	items, err := s.catalog(r.Context(), kind)
	if err != nil {
		s.internalError(w, err)
		return
	}
	out := make([]itemJSON, 0, len(items))
	for _, it := range items {
		flags := it.Flags
		if flags == nil {
			flags = []string{}
		}
		out = append(out, itemJSON{it.Kind, it.Code, it.Name, it.Spec, it.Unit, it.PriceFen, it.Stock, flags, it.Category, it.Active, it.Specimen, it.Manufacturer})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Sim) apiResults(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, limit := int64(0), 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"AE", "after 须为非负整数：" + v})
			return
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"AE", "limit 须为正整数：" + v})
			return
		}
		limit = min(n, 1000)
	}
	res, err := s.results(r.Context(), after, limit)
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}

// The JSON messages. Quantities and doses may come as text or numbers.

type apiMessage struct {
	MessageID string    `json:"message_id"`
	Event     string    `json:"event"`
	At        time.Time `json:"at"`
	Data      apiData   `json:"data"`
}

type apiData struct {
	Patient        patientJSON `json:"patient"`
	VisitNo        string      `json:"visit_no"`
	DepartmentCode string      `json:"department_code"`
	DepartmentName string      `json:"department_name"`
	DoctorCode     string      `json:"doctor_code"`
	DoctorName     string      `json:"doctor_name"`
	VisitedAt      time.Time   `json:"visited_at"`
	ClinicalInfo   string      `json:"clinical_info"`
	Orders         []struct {
		Action        string   `json:"action"` // NW (default) or CA
		PlacerOrderNo string   `json:"placer_order_no"`
		Code          string   `json:"code"`
		Name          string   `json:"name"`
		Quantity      flexText `json:"quantity"`
		Unit          string   `json:"unit"`
		Dose          flexText `json:"dose"`
		DoseUnit      string   `json:"dose_unit"`
		Frequency     string   `json:"frequency"`
		Route         string   `json:"route"`
		Specimen      string   `json:"specimen"`
	} `json:"orders"`
	Fees []struct {
		FeeID         string    `json:"fee_id"`
		Type          string    `json:"type"` // CG or CR; by default the sign of amount_fen says
		ItemCode      string    `json:"item_code"`
		ItemName      string    `json:"item_name"`
		Quantity      flexText  `json:"quantity"`
		AmountFen     int64     `json:"amount_fen"`
		FillerOrderNo string    `json:"filler_order_no"`
		CreatedAt     time.Time `json:"created_at"`
	} `json:"fees"`
	DocumentNo   string `json:"document_no"`
	DocumentType string `json:"document_type"`
	Document     []byte `json:"document"` // base64 in JSON
}

// flexText is a JSON string or number, kept as text.
type flexText string

func (f *flexText) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexText(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexText(n.String())
	}
	return nil
}

// eventTypes maps the JSON events to the HL7 message each stands for.
var eventTypes = map[string]string{
	"register_visit": "ADT^A04",
	"pharmacy_order": "OMP^O09",
	"lab_order":      "OML^O21",
	"exam_order":     "OMG^O19",
	"emr":            "MDM^T02",
	"fees":           "DFT^P03",
}

func (s *Sim) apiMessage(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"AR", "请求体读取失败"})
		return
	}
	var am apiMessage
	if err := json.Unmarshal(body, &am); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"AR", "JSON 格式不正确：" + err.Error()})
		return
	}
	typ, ok := eventTypes[am.Event]
	if !ok {
		writeJSON(w, http.StatusBadRequest, apiError{"AR", "不支持的事件类型：" + am.Event})
		return
	}
	if am.MessageID == "" {
		writeJSON(w, http.StatusBadRequest, apiError{"AR", "缺少 message_id"})
		return
	}
	m := readJSON(am, typ)
	ctx := r.Context()
	if mode := s.currentMode(); mode.Name == ModeError {
		if err := s.logArrivalTx(ctx, m.ControlID, m.Type, "http", m.Patient.HISID, strings.Join(m.placers(), " "), mode.AckCode); err != nil {
			s.log.Error("log arrival", "err", err)
		}
		writeJSON(w, ackStatus(mode.AckCode), apiError{mode.AckCode, mode.Text})
		return
	}
	out, prev, err := s.accept(ctx, m, func(out outcome) ([]byte, int, error) {
		b, err := json.Marshal(answerJSON(out))
		return b, ackStatus(out.Code), err
	})
	switch {
	case err != nil:
		s.internalError(w, err)
	case prev != nil && prev.Via == "http":
		s.log.Info("duplicate message answered again", "type", m.Type, "message_id", m.ControlID)
		writeRaw(w, prev.HTTPStatus, prev.Answer)
	case prev != nil:
		writeJSON(w, ackStatus(prev.Code), apiError{prev.Code, prev.Text})
	default:
		s.log.Info("message processed", "type", m.Type, "message_id", m.ControlID, "code", out.Code, "text", out.Text)
		writeJSON(w, ackStatus(out.Code), answerJSON(out))
	}
}

// answerJSON is the JSON answer to a message: the code, the reason when
// refused, and for orders the filler number of each placer number (as the
// ACK's ORC segments carry them).
func answerJSON(out outcome) map[string]any {
	a := map[string]any{"code": out.Code}
	if out.Text != "" {
		a["message"] = out.Text
	}
	if len(out.Orders) > 0 {
		filler := map[string]string{}
		for _, o := range out.Orders {
			filler[o.Placer] = o.Filler
		}
		a["filler"] = filler
	}
	return a
}

// ackStatus is the HTTP status of an acknowledgement code.
func ackStatus(code string) int {
	switch code {
	case "AA":
		return http.StatusOK
	case "AR":
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}

func readJSON(am apiMessage, typ string) *inMsg {
	d := am.Data
	m := &inMsg{ControlID: am.MessageID, Type: typ, Via: "http", At: am.At}
	m.Patient = patientIn{
		HISID: d.Patient.HISID, IDNumber: d.Patient.IDNumber, InsuranceCard: d.Patient.InsuranceCard,
		Name: d.Patient.Name, Sex: d.Patient.Sex, BirthDate: strings.ReplaceAll(d.Patient.BirthDate, "-", ""), Phone: d.Patient.Phone,
	}
	m.Visit = visitIn{No: d.VisitNo, DeptCode: d.DepartmentCode, DeptName: d.DepartmentName, DoctorCode: d.DoctorCode, DoctorName: d.DoctorName, At: d.VisitedAt}
	kind := map[string]string{"OMP^O09": "DRUG", "OML^O21": "LAB", "OMG^O19": "EXAM"}[typ]
	for _, o := range d.Orders {
		qty := string(o.Quantity)
		if qty == "" && kind != "DRUG" {
			qty = "1"
		}
		m.Orders = append(m.Orders, orderIn{
			Control: strings.ToUpper(o.Action), Kind: kind, Placer: o.PlacerOrderNo, Code: o.Code, Name: o.Name,
			Quantity: qty, Unit: o.Unit, Dose: string(o.Dose), DoseUnit: o.DoseUnit, Frequency: o.Frequency, Route: o.Route,
			Specimen: o.Specimen, ClinicalInfo: d.ClinicalInfo, DoctorCode: d.DoctorCode, DoctorName: d.DoctorName, DeptCode: d.DepartmentCode,
		})
	}
	for _, f := range d.Fees {
		typ := strings.ToUpper(f.Type)
		if typ == "" {
			typ = "CG"
			if f.AmountFen < 0 {
				typ = "CR"
			}
		}
		m.Fees = append(m.Fees, feeIn{
			PlatformID: f.FeeID, Type: typ, ItemCode: f.ItemCode, ItemName: f.ItemName, Quantity: string(f.Quantity),
			AmountFen: f.AmountFen, DeptCode: d.DepartmentCode, DoctorCode: d.DoctorCode, DoctorName: d.DoctorName,
			FillerOrderNo: f.FillerOrderNo, At: f.CreatedAt,
		})
	}
	if typ == "MDM^T02" {
		m.Doc = &docIn{No: d.DocumentNo, Type: first(d.DocumentType, "EMR"), Status: "AU", ActivityAt: am.At, ContentType: "application/json", Content: d.Document}
	}
	return m
}

// The control API.

type modeJSON struct {
	Mode    string `json:"mode"`
	DelayMS int64  `json:"delay_ms"`
	AckCode string `json:"ack_code,omitempty"`
	Text    string `json:"text,omitempty"`
}

func (s *Sim) state(ctx context.Context) (map[string]any, error) {
	mode := s.currentMode()
	counters := map[string]int64{}
	for name, q := range map[string]string{
		"received":         `SELECT count(*) FROM arrivals`,
		"duplicates":       `SELECT count(*) FROM arrivals WHERE duplicate = 1`,
		"accepted":         `SELECT count(*) FROM messages`,
		"orders":           `SELECT count(*) FROM orders`,
		"results":          `SELECT count(*) FROM results`,
		"results_sent":     `SELECT count(*) FROM results WHERE push_state = 'sent'`,
		"results_pending":  `SELECT count(*) FROM results WHERE push_state = 'pending'`,
		"results_rejected": `SELECT count(*) FROM results WHERE push_state = 'rejected'`,
		"results_waiting":  `SELECT count(*) FROM orders WHERE status = 'IP' AND result_due IS NOT NULL`,
		"patients":         `SELECT count(*) FROM patients`,
	} {
		var n int64
		if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			return nil, err
		}
		counters[name] = n
	}
	return map[string]any{
		"mode":       modeJSON{mode.Name, mode.Delay.Milliseconds(), mode.AckCode, mode.Text},
		"mllp":       s.mllpAddr,
		"http":       s.httpURL,
		"results_to": s.cfg.ResultsTo,
		"counters":   counters,
	}, nil
}

func (s *Sim) controlState(w http.ResponseWriter, r *http.Request) {
	st, err := s.state(r.Context())
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) controlMode(w http.ResponseWriter, r *http.Request) {
	var mj modeJSON
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&mj); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"invalid", "JSON 格式不正确：" + err.Error()})
		return
	}
	err := s.ChangeMode(Mode{Name: mj.Mode, Delay: time.Duration(mj.DelayMS) * time.Millisecond, AckCode: strings.ToUpper(mj.AckCode), Text: mj.Text})
	if err != nil {
		status := http.StatusBadRequest
		if !errors.Is(err, errBadMode) {
			status = http.StatusInternalServerError
		}
		writeJSON(w, status, apiError{"invalid", err.Error()})
		return
	}
	s.controlState(w, r)
}

func (s *Sim) controlMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := s.received(r.Context(), r.URL.Query().Get("type"))
	if err != nil {
		s.internalError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

// errBadMode marks a mode request that names no valid mode.
var errBadMode = fmt.Errorf("invalid mode")
