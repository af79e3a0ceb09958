package hissim

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ihos"
)

// inMsg is an inbound message that changes something, read from HL7 or from
// JSON: both variants are acted on by the same code.
type inMsg struct {
	ControlID string
	Type      string // the HL7 type^trigger: ADT^A04, OMP^O09, OML^O21, OMG^O19, ORM^O01, MDM^T02, DFT^P03
	Via       string // mllp or http
	At        time.Time
	Patient   patientIn
	Visit     visitIn
	Orders    []orderIn
	Fees      []feeIn
	Doc       *docIn
}

type patientIn struct {
	HISID, IDNumber, InsuranceCard string
	Name, Sex, BirthDate, Phone    string // BirthDate yyyyMMdd
}

type visitIn struct {
	No                     string // the platform's visit id (PV1-19)
	DeptCode, DeptName     string
	DoctorCode, DoctorName string
	At                     time.Time
}

type orderIn struct {
	Control                string // NW or CA
	Kind                   string // DRUG, LAB, EXAM; "" lets the catalogue decide (ORM^O01)
	Placer                 string
	Code, Name             string
	Quantity, Unit         string
	Dose, DoseUnit         string
	Frequency, Route       string
	Specimen, ClinicalInfo string
	DoctorCode, DoctorName string
	DeptCode               string
}

type feeIn struct {
	PlatformID             string
	Type                   string // CG or CR
	ItemCode, ItemName     string
	Quantity               string
	AmountFen              int64 // as sent: positive, the type says the direction
	DeptCode               string
	DoctorCode, DoctorName string
	FillerOrderNo          string
	At                     time.Time
}

type docIn struct {
	No, Type, Status string
	ActivityAt       time.Time
	ContentType      string
	Content          []byte
}

// outcome is the answer to an inbound message.
type outcome struct {
	Code    string // AA, AE, AR
	Text    string
	ErrCode string // HL7 table 0357
	Orders  []orderAck
}

type orderAck struct {
	Control, Placer, Filler, Status string
}

func accepted() outcome { return outcome{Code: "AA"} }

func appError(errCode, format string, args ...any) outcome {
	return outcome{Code: "AE", ErrCode: errCode, Text: fmt.Sprintf(format, args...)}
}

func rejected(errCode, format string, args ...any) outcome {
	return outcome{Code: "AR", ErrCode: errCode, Text: fmt.Sprintf(format, args...)}
}

// placers lists the placer numbers a message carries, for the arrival log.
func (m *inMsg) placers() []string {
	var out []string
	for _, o := range m.Orders {
		out = append(out, o.Placer)
	}
	if m.Doc != nil && m.Doc.No != "" {
		out = append(out, m.Doc.No)
	}
	for _, f := range m.Fees {
		out = append(out, f.PlatformID)
	}
	if len(out) == 0 && m.Visit.No != "" && m.Type == "ADT^A04" {
		out = append(out, m.Visit.No)
	}
	return out
}

// errNotAccepted rolls back a transaction whose message was refused.
var errNotAccepted = errors.New("not accepted")

// stored is what the dedup set keeps of a message acted on.
type stored struct {
	Via        string
	Code, Text string
	Answer     []byte
	HTTPStatus int
}

// accept runs a message exactly once. A control id already in the dedup set
// gets the stored answer (dup is true) and changes nothing; otherwise act
// decides and, when it accepts, the changes, the answer that render makes
// of the outcome and the control id commit together. Refused messages leave
// no trace but their arrival, so a corrected resend with the same id is
// acted on. Every arrival is logged.
func (s *Sim) accept(ctx context.Context, m *inMsg, render func(outcome) ([]byte, int, error)) (out outcome, prev *stored, err error) {
	placer := strings.Join(m.placers(), " ")
	err = s.group.Do(ctx, func(tx *sql.Tx) error {
		var st stored
		err := tx.QueryRowContext(ctx, `SELECT via, ack_code, ack_text, answer, http_status FROM messages WHERE control_id = ?`, m.ControlID).
			Scan(&st.Via, &st.Code, &st.Text, &st.Answer, &st.HTTPStatus)
		switch {
		case err == nil:
			prev = &st
			return s.logArrival(ctx, tx, m.ControlID, m.Type, m.Via, m.Patient.HISID, placer, true, st.Code)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		out, err = s.act(ctx, tx, m)
		if err != nil {
			return err
		}
		if out.Code != "AA" {
			return errNotAccepted
		}
		answer, status, err := render(out)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO messages (control_id, type, via, ack_code, ack_text, answer, http_status, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ControlID, m.Type, m.Via, out.Code, out.Text, answer, status, fmtDB(time.Now())); err != nil {
			return err
		}
		return s.logArrival(ctx, tx, m.ControlID, m.Type, m.Via, m.Patient.HISID, placer, false, out.Code)
	})
	if errors.Is(err, errNotAccepted) {
		err = s.logArrivalTx(ctx, m.ControlID, m.Type, m.Via, m.Patient.HISID, placer, out.Code)
	}
	if err == nil && out.Code == "AA" && prev == nil {
		wake(s.wakeResults)
	}
	return out, prev, err
}

func (s *Sim) logArrival(ctx context.Context, tx *sql.Tx, controlID, typ, via, patient, placer string, dup bool, code string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO arrivals (control_id, type, via, patient_his_id, placer, duplicate, ack_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		controlID, typ, via, patient, placer, dup, code, fmtDB(time.Now()))
	return err
}

// logArrivalTx logs an arrival that changed nothing (a query, a refused message).
func (s *Sim) logArrivalTx(ctx context.Context, controlID, typ, via, patient, placer, code string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO arrivals (control_id, type, via, patient_his_id, placer, duplicate, ack_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		controlID, typ, via, patient, placer, false, code, fmtDB(time.Now()))
	return err
}

// act applies a message inside tx. An error is an internal failure; a refusal
// is an outcome.
func (s *Sim) act(ctx context.Context, tx *sql.Tx, m *inMsg) (outcome, error) {
	if m.At.IsZero() {
		m.At = time.Now()
	}
	switch m.Type {
	case "ADT^A04":
		return s.registerVisit(ctx, tx, m)
	case "OMP^O09", "OML^O21", "OMG^O19", "ORM^O01":
		return s.storeOrders(ctx, tx, m)
	case "MDM^T02":
		return s.storeDocument(ctx, tx, m)
	case "DFT^P03":
		return s.storeFees(ctx, tx, m)
	}
	return rejected("200", "不支持的消息类型：%s", m.Type), nil
}

// resolvePatient finds the patient a message names: by HIS id (PI), else by
// ID number, else by insurance card. create registers an unknown patient
// named by ID number (a visit registration may bring a patient new to the
// hospital). hisID is "" with the refusal when the patient is not found.
func (s *Sim) resolvePatient(ctx context.Context, tx *sql.Tx, p *patientIn, create bool) (string, outcome, error) {
	lookup := func(col, v string) (string, error) {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT his_id FROM patients WHERE `+col+` = ? ORDER BY his_id LIMIT 1`, v).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return id, err
	}
	switch {
	case p.HISID != "":
		id, err := lookup("his_id", p.HISID)
		if err != nil || id != "" {
			return id, accepted(), err
		}
		return "", appError("204", "患者不存在：HIS 患者号 %s 在本院没有记录", p.HISID), nil
	case p.IDNumber != "":
		id, err := lookup("id_number", strings.ToUpper(p.IDNumber))
		if err != nil || id != "" {
			p.HISID = id
			return id, accepted(), err
		}
		if !create {
			return "", appError("204", "患者不存在：身份证号 %s 在本院没有记录", p.IDNumber), nil
		}
		if !ihos.ValidIDNumber(p.IDNumber) {
			return "", appError("102", "身份证号 %s 校验位不正确", p.IDNumber), nil
		}
		if p.Name == "" {
			return "", appError("101", "建档需要患者姓名（PID-5）"), nil
		}
		id, err = nextID(ctx, tx, "P", 6)
		if err != nil {
			return "", outcome{}, err
		}
		sex := p.Sex
		if sex != "M" && sex != "F" {
			sex = "U"
		}
		birth := p.BirthDate
		if birth == "" && len(p.IDNumber) == 18 {
			birth = p.IDNumber[6:14]
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO patients (his_id, name, sex, birth_date, id_number, phone, insurance_card, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, p.Name, sex, birth, strings.ToUpper(p.IDNumber), p.Phone, p.InsuranceCard, fmtDB(time.Now()))
		p.HISID = id
		return id, accepted(), err
	case p.InsuranceCard != "":
		id, err := lookup("insurance_card", p.InsuranceCard)
		if err != nil || id != "" {
			p.HISID = id
			return id, accepted(), err
		}
		return "", appError("204", "患者不存在：医保卡号 %s 在本院没有记录", p.InsuranceCard), nil
	}
	return "", appError("101", "缺少患者标识（PID-3 须有 HIS 患者号、身份证号或医保卡号）"), nil
}

// registerVisit stores an online visit (ADT^A04). A visit number already
// registered is accepted again without a second visit.
func (s *Sim) registerVisit(ctx context.Context, tx *sql.Tx, m *inMsg) (outcome, error) {
	hisID, out, err := s.resolvePatient(ctx, tx, &m.Patient, true)
	if err != nil || hisID == "" {
		return out, err
	}
	v := m.Visit
	if v.No == "" {
		return appError("101", "缺少就诊号（PV1-19）"), nil
	}
	var have string
	err = tx.QueryRowContext(ctx, `SELECT his_id FROM visits WHERE platform_visit = ?`, v.No).Scan(&have)
	switch {
	case err == nil && have != hisID:
		return appError("205", "就诊号 %s 已登记给其他患者", v.No), nil
	case err == nil:
		return accepted(), nil
	case !errors.Is(err, sql.ErrNoRows):
		return outcome{}, err
	}
	if v.DeptName == "" {
		v.DeptName = departments[v.DeptCode].name
	}
	at := v.At
	if at.IsZero() {
		at = m.At
	}
	no, err := nextID(ctx, tx, "MZ", 8)
	if err != nil {
		return outcome{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO visits (visit_no, his_id, platform_visit, department_code, department_name, doctor_code, doctor_name, service, visited_at, control_id, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'ONLINE', ?, ?, 'registered')`, no, hisID, v.No, v.DeptCode, v.DeptName, v.DoctorCode, v.DoctorName, fmtDB(at), m.ControlID)
	return accepted(), err
}

// fillerPrefix is the HIS's numbering of each kind of order.
var fillerPrefix = map[string]string{"DRUG": "RX", "LAB": "LAB", "EXAM": "EXM"}

// storeOrders stores the order lines of OMP/OML/OMG/ORM. New lines get a
// filler number (a placer number seen before keeps its filler number); CA
// cancels a line that has no result yet.
func (s *Sim) storeOrders(ctx context.Context, tx *sql.Tx, m *inMsg) (outcome, error) {
	hisID, out, err := s.resolvePatient(ctx, tx, &m.Patient, false)
	if err != nil || hisID == "" {
		return out, err
	}
	if len(m.Orders) == 0 {
		return appError("101", "医嘱没有任何项目（缺少 ORC 段）"), nil
	}
	out = accepted()
	for _, o := range m.Orders {
		if o.Placer == "" {
			return appError("101", "医嘱缺少申请单号（ORC-2）"), nil
		}
		var filler, status, owner string
		err := tx.QueryRowContext(ctx, `SELECT filler_order_no, status, his_id FROM orders WHERE placer_order_no = ?`, o.Placer).Scan(&filler, &status, &owner)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return outcome{}, err
		}
		if found && owner != hisID {
			return appError("205", "申请单号 %s 已属于其他患者", o.Placer), nil
		}
		switch o.Control {
		case "NW", "":
			if found {
				out.Orders = append(out.Orders, orderAck{Control: "OK", Placer: o.Placer, Filler: filler, Status: status})
				continue
			}
			kind, item, err := s.orderKind(ctx, tx, m.Type, o)
			if err != nil {
				return outcome{}, err
			}
			if o.Name == "" {
				o.Name = item.Name
			}
			if o.Code == "" {
				return appError("101", "医嘱 %s 缺少项目编码", o.Placer), nil
			}
			if o.Specimen == "" {
				o.Specimen = item.Specimen
			}
			filler, err = nextID(ctx, tx, fillerPrefix[kind], 8)
			if err != nil {
				return outcome{}, err
			}
			var due any
			if kind == "LAB" || kind == "EXAM" {
				due = m.At.Add(s.cfg.ResultDelay).UnixMilli()
			}
			if o.DeptCode == "" {
				o.DeptCode = m.Visit.DeptCode
			}
			if o.DoctorCode == "" {
				o.DoctorCode, o.DoctorName = m.Visit.DoctorCode, m.Visit.DoctorName
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO orders (placer_order_no, filler_order_no, kind, his_id, visit_no, code, name, quantity, unit, dose, dose_unit,
				frequency, route, specimen, clinical_info, doctor_code, doctor_name, department_code, status, ordered_at, result_due, control_id)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'IP', ?, ?, ?)`,
				o.Placer, filler, kind, hisID, m.Visit.No, o.Code, o.Name, o.Quantity, o.Unit, o.Dose, o.DoseUnit,
				o.Frequency, o.Route, o.Specimen, o.ClinicalInfo, o.DoctorCode, o.DoctorName, o.DeptCode, fmtDB(m.At), due, m.ControlID); err != nil {
				return outcome{}, err
			}
			out.Orders = append(out.Orders, orderAck{Control: "OK", Placer: o.Placer, Filler: filler, Status: "IP"})
		case "CA":
			switch {
			case !found:
				return appError("204", "要撤销的医嘱不存在：%s", o.Placer), nil
			case status == "CM":
				return appError("207", "医嘱 %s 已出结果，不能撤销", o.Placer), nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'CA', result_due = NULL WHERE placer_order_no = ?`, o.Placer); err != nil {
				return outcome{}, err
			}
			out.Orders = append(out.Orders, orderAck{Control: "CR", Placer: o.Placer, Filler: filler, Status: "CA"})
		default:
			return rejected("103", "不支持的医嘱控制码（ORC-1）：%s", o.Control), nil
		}
	}
	return out, nil
}

// orderKind decides what a line orders: the message type says it, except
// for ORM^O01 where the catalogue does (labs when the code is unknown).
func (s *Sim) orderKind(ctx context.Context, tx *sql.Tx, msgType string, o orderIn) (string, catalogItem, error) {
	var it catalogItem
	err := tx.QueryRowContext(ctx, `SELECT kind, name, specimen FROM catalog WHERE code = ?`, o.Code).Scan(&it.Kind, &it.Name, &it.Specimen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", it, err
	}
	switch {
	case o.Kind != "":
		return o.Kind, it, nil
	case msgType == "OMP^O09":
		return "DRUG", it, nil
	case msgType == "OML^O21":
		return "LAB", it, nil
	case msgType == "OMG^O19":
		return "EXAM", it, nil
	case it.Kind != "":
		return it.Kind, it, nil
	}
	return "LAB", it, nil
}

// storeDocument stores a signed EMR (MDM^T02). The same document number
// again is stored as its next version.
func (s *Sim) storeDocument(ctx context.Context, tx *sql.Tx, m *inMsg) (outcome, error) {
	hisID, out, err := s.resolvePatient(ctx, tx, &m.Patient, false)
	if err != nil || hisID == "" {
		return out, err
	}
	d := m.Doc
	if d == nil || d.No == "" {
		return appError("101", "缺少文档编号（TXA-12）"), nil
	}
	if len(d.Content) == 0 {
		return appError("101", "病历内容为空（OBX-5）"), nil
	}
	at := d.ActivityAt
	if at.IsZero() {
		at = m.At
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO documents (document_no, version, his_id, visit_no, doc_type, status, activity_at, content_type, content, received_at, control_id)
		VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (document_no) DO UPDATE SET version = version + 1, his_id = excluded.his_id, visit_no = excluded.visit_no, doc_type = excluded.doc_type,
			status = excluded.status, activity_at = excluded.activity_at, content_type = excluded.content_type, content = excluded.content,
			received_at = excluded.received_at, control_id = excluded.control_id`,
		d.No, hisID, m.Visit.No, d.Type, d.Status, fmtDB(at), d.ContentType, d.Content, fmtDB(time.Now()), m.ControlID)
	return accepted(), err
}

// storeFees stores posted fee lines (DFT^P03). The platform posts fees it
// has collected, so they are stored as posted, never as unpaid; a line whose
// FT1-23 names an unpaid HIS fee id settles that fee. A platform fee id seen
// before is not stored twice.
func (s *Sim) storeFees(ctx context.Context, tx *sql.Tx, m *inMsg) (outcome, error) {
	hisID, out, err := s.resolvePatient(ctx, tx, &m.Patient, false)
	if err != nil || hisID == "" {
		return out, err
	}
	if len(m.Fees) == 0 {
		return appError("101", "费用没有任何明细（缺少 FT1 段）"), nil
	}
	for _, f := range m.Fees {
		if f.PlatformID == "" {
			return appError("101", "费用明细缺少交易号（FT1-2）"), nil
		}
		if f.ItemCode == "" {
			return appError("101", "费用明细 %s 缺少收费项目（FT1-7）", f.PlatformID), nil
		}
		typ := f.Type
		switch typ {
		case "":
			typ = "CG"
		case "CG", "CR":
		default:
			return rejected("103", "不支持的交易类型（FT1-6）：%s", typ), nil
		}
		amount := f.AmountFen
		if amount < 0 {
			amount = -amount
		}
		if typ == "CR" {
			amount = -amount
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM fees WHERE platform_fee_id = ?`, f.PlatformID).Scan(&n); err != nil {
			return outcome{}, err
		}
		if n > 0 {
			continue
		}
		id, err := nextID(ctx, tx, "F", 8)
		if err != nil {
			return outcome{}, err
		}
		at := f.At
		if at.IsZero() {
			at = m.At
		}
		dept := f.DeptCode
		if dept == "" {
			dept = m.Visit.DeptCode
		}
		doc, docName := f.DoctorCode, f.DoctorName
		if doc == "" {
			doc, docName = m.Visit.DoctorCode, m.Visit.DoctorName
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO fees (fee_id, his_id, visit_no, platform_fee_id, type, item_code, item_name, quantity, amount_fen,
			department_code, doctor_code, doctor_name, filler_order_no, status, created_at, control_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'posted', ?, ?)`,
			id, hisID, m.Visit.No, f.PlatformID, typ, f.ItemCode, f.ItemName, f.Quantity, amount,
			dept, doc, docName, f.FillerOrderNo, fmtDB(at), m.ControlID); err != nil {
			return outcome{}, err
		}
		if f.FillerOrderNo != "" && typ == "CG" {
			if _, err := tx.ExecContext(ctx, `UPDATE fees SET status = 'paid' WHERE fee_id = ? AND his_id = ? AND status = 'unpaid'`, f.FillerOrderNo, hisID); err != nil {
				return outcome{}, err
			}
		}
	}
	return accepted(), nil
}
