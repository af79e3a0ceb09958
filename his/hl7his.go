package his

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/his/hl7"
	"ihos/his/mllp"
)

// HL7 is the HIS adapter that speaks HL7 v2.5.1 over MLLP, as
// docs/his-interface.md profiles it. It keeps Conns connections to the HIS
// (each carries one message at a time, as MLLP requires) so the queue's lanes
// and the queries do not wait for one another.
type HL7 struct {
	Addr         string // the HIS's MLLP listener, host:port
	Conns        int    // connections (default 8, one per queue lane)
	ReplyTimeout time.Duration
	// Facility is our MSH-4 (the hospital's code); HISApp and HISFacility are
	// MSH-5 and MSH-6 (default "HIS").
	Facility, HISApp, HISFacility string
	// Observe receives every exchange (for the message log); may be nil.
	Observe func(context.Context, Exchange)

	pool chan *mllp.Client
}

// NewHL7 returns an adapter for the HIS at addr.
func NewHL7(addr string) *HL7 { return &HL7{Addr: addr} }

func (h *HL7) client(ctx context.Context) (*mllp.Client, error) {
	if h.pool == nil {
		panic("his: HL7 adapter used before Start")
	}
	select {
	case c := <-h.pool:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Start makes the connection pool; connections open on first use.
func (h *HL7) Start() *HL7 {
	n := h.Conns
	if n <= 0 {
		n = 8
	}
	if h.ReplyTimeout <= 0 {
		h.ReplyTimeout = 30 * time.Second
	}
	h.pool = make(chan *mllp.Client, n)
	for range n {
		h.pool <- &mllp.Client{Addr: h.Addr, ReplyTimeout: h.ReplyTimeout}
	}
	return h
}

// Close closes the connections.
func (h *HL7) Close() error {
	if h.pool == nil {
		return nil
	}
	for range cap(h.pool) {
		c := <-h.pool
		c.Close()
	}
	return nil
}

// errUnavailable is what callers see when the HIS cannot be reached.
func errUnavailable(err error) error {
	return &ihos.Error{Code: ihos.EUnavailable, Message: "医院 HIS 系统暂时无法连接，请稍后重试", Err: err}
}

// send sends m and returns the reply, logging the exchange.
func (h *HL7) send(ctx context.Context, m *hl7.Message) (*hl7.Message, error) {
	c, err := h.client(ctx)
	if err != nil {
		return nil, errUnavailable(err)
	}
	defer func() { h.pool <- c }()
	typ, trigger, _ := m.Type()
	ex := Exchange{At: time.Now(), Direction: "out", Type: typ + "^" + trigger, ControlID: m.ControlID()}
	if raw, err := m.Encode(); err == nil {
		ex.Request = string(raw)
	}
	reply, err := c.Send(ctx, m)
	ex.Elapsed = time.Since(ex.At)
	if err != nil {
		ex.Err = err.Error()
		h.observe(ctx, ex)
		return nil, errUnavailable(err)
	}
	if raw, err := reply.Encode(); err == nil {
		ex.Response = string(raw)
	}
	ex.AckCode, ex.AckText = ackOf(reply)
	h.observe(ctx, ex)
	return reply, nil
}

func (h *HL7) observe(ctx context.Context, ex Exchange) {
	if h.Observe != nil {
		h.Observe(ctx, ex)
	}
}

// ackOf reads MSA-1 and the reason (MSA-3, else ERR-8).
func ackOf(m *hl7.Message) (code, text string) {
	code = m.Get("MSA-1")
	text = m.Get("MSA-3")
	if text == "" {
		text = m.Get("ERR-8")
	}
	switch code {
	case "CA":
		code = ihos.AckAccepted
	case "CE":
		code = ihos.AckError
	case "CR":
		code = ihos.AckRejected
	}
	return code, text
}

func (h *HL7) newMessage(typ, trigger, structure, id string) *hl7.Message {
	m := hl7.New(typ, trigger, structure, id)
	if h.Facility != "" {
		m.Set("MSH-4", h.Facility)
	}
	m.Set("MSH-5", or(h.HISApp, "HIS"))
	m.Set("MSH-6", or(h.HISFacility, "HIS"))
	return m
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// setPatient writes PID.
func setPatient(m *hl7.Message, p ihos.HISPatient) {
	pid := m.Add("PID")
	pid.Set("1", "1")
	rep := 1
	for _, id := range []struct{ value, auth, typ string }{
		{p.HISID, "HIS", ihos.IDHISPatient}, {p.IDNumber, "CHN", ihos.IDResident}, {p.InsuranceCard, "YB", ihos.IDInsurance},
	} {
		if id.value == "" {
			continue
		}
		r := "3(" + strconv.Itoa(rep) + ")"
		pid.Set(r+"-1", id.value)
		pid.Set(r+"-4", id.auth)
		pid.Set(r+"-5", id.typ)
		rep++
	}
	pid.Set("5-1", p.Name)
	pid.Set("7", strings.ReplaceAll(p.BirthDate, "-", ""))
	pid.Set("8", or(p.Sex, "U"))
	pid.Set("13", p.Phone)
}

// readPatient reads a PID segment.
func readPatient(pid *hl7.Segment) ihos.HISPatient {
	p := ihos.HISPatient{Name: pid.Get("5-1"), Sex: pid.Get("8"), Phone: pid.Get("13-1")}
	if b := pid.Get("7"); len(b) >= 8 {
		p.BirthDate = b[:4] + "-" + b[4:6] + "-" + b[6:8]
	}
	for i := 1; i <= pid.Repetitions(3); i++ {
		r := "3(" + strconv.Itoa(i) + ")"
		v := pid.Get(r + "-1")
		switch pid.Get(r + "-5") {
		case ihos.IDHISPatient:
			p.HISID = v
		case ihos.IDResident:
			p.IDNumber = v
		case ihos.IDInsurance:
			p.InsuranceCard = v
		default:
			if p.HISID == "" {
				p.HISID = v
			}
		}
	}
	return p
}

func setVisit(m *hl7.Message, d ihos.HISMessageData, at time.Time) {
	pv1 := m.Add("PV1")
	pv1.Set("1", "1")
	pv1.Set("2", "O")
	pv1.Set("3-1", d.DepartmentCode)
	pv1.Set("3-9", d.DepartmentName)
	pv1.Set("7-1", d.DoctorCode)
	pv1.Set("7-2", d.DoctorName)
	pv1.Set("10", "ONLINE")
	pv1.Set("19", d.VisitNo)
	pv1.Set("44", hl7.Timestamp(at))
}

func setEvent(m *hl7.Message, trigger string, at time.Time) {
	evn := m.Add("EVN")
	evn.Set("1", trigger)
	evn.Set("2", hl7.Timestamp(at))
}

// encode builds the HL7 message for an outbound event.
func (h *HL7) encode(msg ihos.HISMessage) (*hl7.Message, error) {
	d := msg.Data
	at := msg.At
	if at.IsZero() {
		at = time.Now()
	}
	var m *hl7.Message
	switch msg.Event {
	case ihos.HISRegisterVisit:
		m = h.newMessage("ADT", "A04", "ADT_A01", msg.ID)
		setEvent(m, "A04", at)
		setPatient(m, d.Patient)
		setVisit(m, d, at)
	case ihos.HISPharmacyOrder, ihos.HISLabOrder, ihos.HISExamOrder:
		switch msg.Event {
		case ihos.HISPharmacyOrder:
			m = h.newMessage("OMP", "O09", "OMP_O09", msg.ID)
		case ihos.HISLabOrder:
			m = h.newMessage("OML", "O21", "OML_O21", msg.ID)
		default:
			m = h.newMessage("OMG", "O19", "OMG_O19", msg.ID)
		}
		setPatient(m, d.Patient)
		setVisit(m, d, at)
		if len(d.Orders) == 0 {
			return nil, ihos.Errorf(ihos.EInvalid, "医嘱没有任何项目")
		}
		for i, o := range d.Orders {
			orc := m.Add("ORC")
			orc.Set("1", "NW")
			orc.Set("2", o.PlacerOrderNo)
			orc.Set("9", hl7.Timestamp(at))
			orc.Set("12-1", d.DoctorCode)
			orc.Set("12-2", d.DoctorName)
			orc.Set("17-1", d.DepartmentCode)
			if msg.Event == ihos.HISPharmacyOrder {
				rxo := m.Add("RXO")
				rxo.Set("1-1", o.Code)
				rxo.Set("1-2", o.Name)
				rxo.Set("2", o.Dose)
				rxo.Set("4-1", o.DoseUnit)
				rxo.Set("7-2", o.Frequency)
				rxo.Set("9", "N")
				rxo.Set("11", o.Quantity)
				rxo.Set("12-1", o.Unit)
				rxo.Set("13", "0")
				if o.Route != "" {
					m.Add("RXR").Set("1-2", o.Route)
				}
				continue
			}
			obr := m.Add("OBR")
			obr.Set("1", strconv.Itoa(i+1))
			obr.Set("2", o.PlacerOrderNo)
			obr.Set("4-1", o.Code)
			obr.Set("4-2", o.Name)
			obr.Set("13", d.ClinicalInfo)
			obr.Set("15-1", o.Specimen)
			obr.Set("16-1", d.DoctorCode)
			obr.Set("16-2", d.DoctorName)
		}
	case ihos.HISEMR:
		m = h.newMessage("MDM", "T02", "MDM_T02", msg.ID)
		setEvent(m, "T02", at)
		setPatient(m, d.Patient)
		setVisit(m, d, at)
		txa := m.Add("TXA")
		txa.Set("1", "1")
		txa.Set("2", "EMR")
		txa.Set("4", hl7.Timestamp(at))
		txa.Set("12-1", d.DocumentNo)
		txa.Set("17", "AU")
		obx := m.Add("OBX")
		obx.Set("1", "1")
		obx.Set("2", "ED")
		obx.Set("3-1", "EMR")
		obx.Set("3-2", "门诊病历")
		obx.Set("5-2", "application")
		obx.Set("5-3", "json")
		obx.Set("5-4", "Base64")
		obx.Set("5-5", base64.StdEncoding.EncodeToString(d.Document))
		obx.Set("11", "F")
	case ihos.HISFees:
		m = h.newMessage("DFT", "P03", "DFT_P03", msg.ID)
		setEvent(m, "P03", at)
		setPatient(m, d.Patient)
		setVisit(m, d, at)
		if len(d.Fees) == 0 {
			return nil, ihos.Errorf(ihos.EInvalid, "费用没有任何项目")
		}
		for i, f := range d.Fees {
			ft1 := m.Add("FT1")
			ft1.Set("1", strconv.Itoa(i+1))
			ft1.Set("2", f.FeeID)
			ft1.Set("4", hl7.Timestamp(at))
			amount := f.AmountFen
			if amount < 0 {
				ft1.Set("6", "CR")
				amount = -amount
			} else {
				ft1.Set("6", "CG")
			}
			ft1.Set("7-1", f.ItemCode)
			ft1.Set("7-2", f.ItemName)
			ft1.Set("10", f.Quantity)
			ft1.Set("11-1", ihos.FormatYuan(amount))
			ft1.Set("13-1", d.DepartmentCode)
			ft1.Set("20-1", d.DoctorCode)
			ft1.Set("20-2", d.DoctorName)
			ft1.Set("23", f.FillerOrderNo)
		}
	default:
		return nil, ihos.Errorf(ihos.EInvalid, "未知的 HIS 消息类型：%s", msg.Event)
	}
	return m, nil
}

// Deliver implements ihos.HIS.
func (h *HL7) Deliver(ctx context.Context, msg ihos.HISMessage) (ihos.HISAck, error) {
	m, err := h.encode(msg)
	if err != nil {
		return ihos.HISAck{Code: ihos.AckRejected, Text: ihos.ErrorMessage(err)}, nil
	}
	reply, err := h.send(ctx, m)
	if err != nil {
		return ihos.HISAck{}, err
	}
	code, text := ackOf(reply)
	if code == "" {
		return ihos.HISAck{}, errUnavailable(errors.New("the HIS's reply has no MSA-1"))
	}
	ack := ihos.HISAck{Code: code, Text: text}
	for _, orc := range reply.All("ORC") {
		if placer, filler := orc.Get("2"), orc.Get("3"); placer != "" && filler != "" {
			if ack.Filler == nil {
				ack.Filler = map[string]string{}
			}
			ack.Filler[placer] = filler
		}
	}
	return ack, nil
}

// query sends a QBP and returns the RSP when the HIS answered it, nil when it
// found nothing.
func (h *HL7) query(ctx context.Context, trigger, structure, name string, params ...string) (*hl7.Message, error) {
	m := h.newMessage("QBP", trigger, structure, ihos.NewID())
	qpd := m.Add("QPD")
	qpd.Set("1", name)
	if n, label, ok := strings.Cut(name, "^"); ok {
		qpd.Set("1-1", n)
		qpd.Set("1-2", label)
	}
	qpd.Set("2", m.ControlID())
	for i, p := range params {
		qpd.Set(strconv.Itoa(3+i), p)
	}
	m.Add("RCP").Set("1", "I")
	reply, err := h.send(ctx, m)
	if err != nil {
		return nil, err
	}
	code, text := ackOf(reply)
	if code != ihos.AckAccepted {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 查询失败：" + or(text, code), Err: errors.New("HIS answered " + code)}
	}
	if reply.Get("QAK-2") == "NF" {
		return nil, nil
	}
	return reply, nil
}

// FindPatients implements ihos.HIS.
func (h *HL7) FindPatients(ctx context.Context, id ihos.PatientIdentifier) ([]ihos.HISPatient, error) {
	m := h.newMessage("QBP", "Q22", "QBP_Q21", ihos.NewID())
	qpd := m.Add("QPD")
	qpd.Set("1", "IHE PDQ Query")
	qpd.Set("2", m.ControlID())
	qpd.Set("3(1)-1", "@PID.3.1")
	qpd.Set("3(1)-2", id.Value)
	qpd.Set("3(2)-1", "@PID.3.5")
	qpd.Set("3(2)-2", id.Type)
	m.Add("RCP").Set("1", "I")
	reply, err := h.send(ctx, m)
	if err != nil {
		return nil, err
	}
	if code, text := ackOf(reply); code != ihos.AckAccepted {
		return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 查询失败：" + or(text, code), Err: errors.New("HIS answered " + code)}
	}
	var out []ihos.HISPatient
	for _, pid := range reply.All("PID") {
		out = append(out, readPatient(pid))
	}
	return out, nil
}

// VisitHistory implements ihos.HIS.
func (h *HL7) VisitHistory(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISVisit, error) {
	sinceText := ""
	if !since.IsZero() {
		sinceText = since.In(ihos.Shanghai).Format("20060102")
	}
	reply, err := h.query(ctx, "ZV1", "QBP_Q11", "ZV1^就诊历史", hisPatientID, sinceText)
	if err != nil || reply == nil {
		return nil, err
	}
	var out []ihos.HISVisit
	for _, seg := range reply.Segments {
		switch seg.Name {
		case "PV1":
			out = append(out, ihos.HISVisit{VisitNo: seg.Get("19"), DepartmentCode: seg.Get("3-1"), DepartmentName: seg.Get("3-9"),
				DoctorCode: seg.Get("7-1"), DoctorName: seg.Get("7-2"), VisitedAt: hl7.ParseTimestamp(seg.Get("44"))})
		case "ZPV":
			if len(out) == 0 {
				continue
			}
			v := &out[len(out)-1]
			v.QueueNo, v.TimeSlot, v.Status = seg.Get("1"), seg.Get("2"), seg.Get("4")
			if fee := seg.Get("3"); fee != "" {
				fen, err := ihos.ParseYuan(fee)
				if err != nil {
					return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 返回的挂号费无法识别", Err: err}
				}
				v.FeeFen = fen
			}
		case "DG1":
			if len(out) == 0 {
				continue
			}
			v := &out[len(out)-1]
			v.Diagnoses = append(v.Diagnoses, ihos.Diagnosis{Code: seg.Get("3-1"), Name: seg.Get("3-2"), DiagnosedAt: hl7.ParseTimestamp(seg.Get("5"))})
		}
	}
	return out, nil
}

// UnpaidFees implements ihos.HIS.
func (h *HL7) UnpaidFees(ctx context.Context, hisPatientID string) ([]ihos.HISFee, error) {
	reply, err := h.query(ctx, "ZF1", "QBP_Q11", "ZF1^待缴费用", hisPatientID)
	if err != nil || reply == nil {
		return nil, err
	}
	var out []ihos.HISFee
	for _, ft1 := range reply.All("FT1") {
		fen, err := ihos.ParseYuan(ft1.Get("11-1"))
		if err != nil {
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 返回的费用金额无法识别", Err: err}
		}
		if ft1.Get("6") == "CR" && fen > 0 {
			fen = -fen
		}
		out = append(out, ihos.HISFee{FeeID: ft1.Get("2"), VisitNo: ft1.Get("26"), ItemCode: ft1.Get("7-1"), ItemName: ft1.Get("7-2"),
			Quantity: ft1.Get("10"), AmountFen: fen, DepartmentCode: ft1.Get("13-1"), DoctorCode: ft1.Get("20-1"),
			CreatedAt: hl7.ParseTimestamp(ft1.Get("4"))})
	}
	return out, nil
}

// Reports implements ihos.HIS: the ZR1 query, answered with one
// PV1 ORC OBR {OBX} group per report.
func (h *HL7) Reports(ctx context.Context, hisPatientID string, since time.Time) ([]ihos.HISReport, error) {
	sinceText := ""
	if !since.IsZero() {
		sinceText = since.In(ihos.Shanghai).Format("20060102")
	}
	reply, err := h.query(ctx, "ZR1", "QBP_Q11", "ZR1^检查检验报告", hisPatientID, sinceText)
	if err != nil || reply == nil {
		return nil, err
	}
	var out []ihos.HISReport
	var visit *hl7.Segment // the PV1 of the group being read
	for _, seg := range reply.Segments {
		switch seg.Name {
		case "PV1":
			visit = seg
		case "OBR":
			r := ihos.HISReport{ReportNo: seg.Get("3"), PlacerOrderNo: seg.Get("2"), Kind: seg.Get("24"),
				ServiceCode: seg.Get("4-1"), ServiceName: seg.Get("4-2"), DoctorName: seg.Get("32-1-2"),
				ResultStatus: seg.Get("25"), ReportedAt: hl7.ParseTimestamp(seg.Get("22"))}
			if visit != nil {
				r.VisitNo, r.DepartmentName = visit.Get("19"), visit.Get("3-9")
			}
			out = append(out, r)
			visit = nil
		case "OBX":
			if len(out) == 0 {
				continue
			}
			r := &out[len(out)-1]
			o := ihos.HISObservation{Type: seg.Get("2"), Code: seg.Get("3-1"), Name: seg.Get("3-2"), Value: seg.Get("5"),
				Units: seg.Get("6-1"), Range: seg.Get("7"), Flag: seg.Get("8")}
			r.Observations = append(r.Observations, o)
			if o.Code == "IMPRESSION" {
				r.Conclusion = o.Value
			}
		}
	}
	return out, nil
}

// Catalog implements ihos.HIS.
func (h *HL7) Catalog(ctx context.Context, kind string) ([]ihos.CatalogItem, error) {
	reply, err := h.query(ctx, "ZC1", "QBP_Q11", "ZC1^目录查询", kind)
	if err != nil || reply == nil {
		return nil, err
	}
	var out []ihos.CatalogItem
	for _, z := range reply.All("ZCI") {
		price, err := ihos.ParseYuan(z.Get("6"))
		if err != nil {
			return nil, &ihos.Error{Code: ihos.EUnavailable, Message: "HIS 目录中的价格无法识别：" + z.Get("3"), Err: err}
		}
		it := ihos.CatalogItem{Kind: or(z.Get("1"), kind), Code: z.Get("2"), Name: z.Get("3"), Spec: z.Get("4"), Unit: z.Get("5"),
			PriceFen: price, Category: z.Get("9"), Active: z.Get("10") != "N", Specimen: z.Get("11")}
		if s := z.Get("7"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				it.Stock = &n
			}
		}
		for i := 1; i <= z.Repetitions(8); i++ {
			if f := z.Get("8(" + strconv.Itoa(i) + ")"); f != "" {
				it.Flags = append(it.Flags, f)
			}
		}
		out = append(out, it)
	}
	return out, nil
}
