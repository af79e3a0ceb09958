package hissim

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"ihos/his/hl7"
)

// handleHL7 answers one message from the MLLP server.
func (s *Sim) handleHL7(ctx context.Context, req *hl7.Message) *hl7.Message {
	mode := s.currentMode()
	if mode.Name == ModeSlow {
		pause(ctx, mode.Delay)
	}
	typ, trigger, _ := req.Type()
	full := typ + "^" + trigger
	controlID := req.ControlID()
	log := s.log.With("type", full, "control_id", controlID)

	if typ == "QBP" {
		rsp := s.query(ctx, req, trigger)
		patient := ""
		if trigger != "Q22" { // the other queries name the patient by HIS id in QPD-3
			patient = req.Get("QPD-3-1")
		}
		if err := s.logArrivalTx(ctx, controlID, full, "mllp", patient, "", rsp.Get("MSA-1")); err != nil {
			log.Error("log arrival", "err", err)
		}
		log.Info("query answered", "status", rsp.Get("QAK-2"))
		return rsp
	}

	m, refusal := readHL7(req)
	if refusal != nil {
		if err := s.logArrivalTx(ctx, controlID, full, "mllp", m.Patient.HISID, strings.Join(m.placers(), " "), refusal.Code); err != nil {
			log.Error("log arrival", "err", err)
		}
		log.Warn("message refused", "code", refusal.Code, "text", refusal.Text)
		return hisAck(req, refusal.Code, refusal.Text, refusal.ErrCode)
	}
	if mode.Name == ModeError {
		if err := s.logArrivalTx(ctx, controlID, full, "mllp", m.Patient.HISID, strings.Join(m.placers(), " "), mode.AckCode); err != nil {
			log.Error("log arrival", "err", err)
		}
		return hisAck(req, mode.AckCode, mode.Text, hl7.CodeInternal)
	}

	var answer *hl7.Message // the ACK stored with the message is the one sent
	out, prev, err := s.accept(ctx, m, func(out outcome) ([]byte, int, error) {
		answer = ackFor(req, out)
		b, err := answer.Encode()
		return b, 0, err
	})
	switch {
	case err != nil:
		log.Error("message failed", "err", err)
		return hisAck(req, "AE", "HIS 内部错误，请稍后重发", hl7.CodeInternal)
	case prev != nil:
		log.Info("duplicate message answered again", "code", prev.Code)
		if prev.Via == "mllp" {
			if again, err := hl7.Parse(prev.Answer); err == nil {
				return again
			}
		}
		return hisAck(req, prev.Code, prev.Text, "")
	}
	log.Info("message processed", "code", out.Code, "text", out.Text)
	if answer != nil && out.Code == "AA" {
		return answer
	}
	return ackFor(req, out)
}

// hisAck is hl7.Ack answering as the HIS: the request's MSH-5 and MSH-6
// become MSH-3 and MSH-4, and "HIS" stands in when it left them empty.
func hisAck(req *hl7.Message, code, text, errCode string) *hl7.Message {
	a := hl7.Ack(req, code, text, errCode)
	if req.Get("MSH-5") == "" {
		a.Set("MSH-3", "HIS")
	}
	if req.Get("MSH-6") == "" {
		a.Set("MSH-4", "HIS")
	}
	return a
}

// ackFor builds the ACK of an outcome: for accepted orders one ORC per line
// after MSA, with ORC-2 our placer number and ORC-3 the filler number.
func ackFor(req *hl7.Message, out outcome) *hl7.Message {
	ack := hisAck(req, out.Code, out.Text, out.ErrCode)
	for _, o := range out.Orders {
		orc := ack.Add("ORC")
		orc.Set("1", o.Control)
		orc.Set("2", o.Placer)
		orc.Set("3", o.Filler)
		orc.Set("5", o.Status)
	}
	return ack
}

// readHL7 reads a message that changes something into an inMsg; a refusal
// when it cannot be acted on at all.
func readHL7(req *hl7.Message) (*inMsg, *outcome) {
	typ, trigger, _ := req.Type()
	m := &inMsg{ControlID: req.ControlID(), Type: typ + "^" + trigger, Via: "mllp"}
	refuse := func(o outcome) (*inMsg, *outcome) { return m, &o }
	switch typ {
	case "ADT":
		if trigger != "A04" {
			return refuse(rejected("201", "不支持的事件：%s（仅支持 ADT^A04）", m.Type))
		}
	case "OMP", "OML", "OMG", "ORM":
		want := map[string]string{"OMP": "O09", "OML": "O21", "OMG": "O19", "ORM": "O01"}[typ]
		if trigger != want {
			return refuse(rejected("201", "不支持的事件：%s", m.Type))
		}
	case "MDM":
		if trigger != "T02" {
			return refuse(rejected("201", "不支持的事件：%s（仅支持 MDM^T02）", m.Type))
		}
	case "DFT":
		if trigger != "P03" {
			return refuse(rejected("201", "不支持的事件：%s（仅支持 DFT^P03）", m.Type))
		}
	default:
		return refuse(rejected("200", "不支持的消息类型：%s", m.Type))
	}
	if m.ControlID == "" {
		return refuse(rejected("101", "缺少消息控制号（MSH-10）"))
	}
	if evn := req.Segment("EVN"); evn != nil {
		m.At = hl7.ParseTimestamp(evn.Get("2"))
	}
	pid := req.Segment("PID")
	if pid == nil {
		return refuse(appError("101", "缺少 PID 段"))
	}
	m.Patient = readPID(pid)
	if pv1 := req.Segment("PV1"); pv1 != nil {
		m.Visit = visitIn{
			No:       pv1.Get("19"),
			DeptCode: pv1.Get("3-1"), DeptName: pv1.Get("3-9"),
			DoctorCode: pv1.Get("7-1"), DoctorName: pv1.Get("7-2"),
			At: hl7.ParseTimestamp(pv1.Get("44")),
		}
	}
	switch typ {
	case "OMP", "OML", "OMG", "ORM":
		m.Orders = readOrders(req, typ)
	case "MDM":
		doc, refusal := readDocument(req)
		if refusal != nil {
			return refuse(*refusal)
		}
		m.Doc = doc
	case "DFT":
		for _, ft1 := range req.All("FT1") {
			f := feeIn{
				PlatformID: ft1.Get("2"), At: hl7.ParseTimestamp(ft1.Get("4")), Type: ft1.Get("6"),
				ItemCode: ft1.Get("7-1"), ItemName: ft1.Get("7-2"), Quantity: ft1.Get("10"),
				DeptCode: ft1.Get("13-1"), DoctorCode: ft1.Get("20-1"), DoctorName: ft1.Get("20-2"),
				FillerOrderNo: ft1.Get("23-1"),
			}
			if f.ItemName == "" {
				f.ItemName = ft1.Get("8")
			}
			amount := ft1.Get("11-1")
			if amount == "" {
				return refuse(appError("101", "费用明细 %s 缺少金额（FT1-11）", f.PlatformID))
			}
			fen, err := parseYuan(amount)
			if err != nil {
				return refuse(appError("102", "费用明细 %s 的金额（FT1-11）格式不正确：%s", f.PlatformID, amount))
			}
			f.AmountFen = fen
			m.Fees = append(m.Fees, f)
		}
	}
	return m, nil
}

// readPID reads the identifiers and demographics of a PID segment.
func readPID(pid *hl7.Segment) patientIn {
	p := patientIn{Name: pid.Get("5-1"), Sex: pid.Get("8"), Phone: pid.Get("13-1")}
	if p.Phone == "" {
		p.Phone = pid.Get("13-12")
	}
	if b := pid.Get("7"); len(b) >= 8 {
		p.BirthDate = b[:8]
	}
	for i := 1; i <= pid.Repetitions(3); i++ {
		r := "3(" + strconv.Itoa(i) + ")"
		v := strings.TrimSpace(pid.Get(r + "-1"))
		if v == "" {
			continue
		}
		switch pid.Get(r + "-5") {
		case "PI":
			p.HISID = v
		case "NNCHN":
			p.IDNumber = v
		case "HC":
			p.InsuranceCard = v
		default:
			if pid.Get(r+"-4") == "HIS" && p.HISID == "" {
				p.HISID = v
			}
		}
	}
	return p
}

// readOrders reads the ORC groups of an order message: each ORC starts a
// line, and the RXO, RXR and OBR after it belong to that line.
func readOrders(req *hl7.Message, typ string) []orderIn {
	var out []orderIn
	var cur *orderIn
	for _, seg := range req.Segments {
		switch seg.Name {
		case "ORC":
			out = append(out, orderIn{
				Control: seg.Get("1"), Placer: seg.Get("2"),
				DoctorCode: seg.Get("12-1"), DoctorName: seg.Get("12-2"),
				DeptCode: seg.Get("17-1"),
			})
			cur = &out[len(out)-1]
		case "RXO":
			if cur == nil {
				continue
			}
			cur.Kind = "DRUG"
			cur.Code, cur.Name = seg.Get("1-1"), seg.Get("1-2")
			cur.Dose = seg.Get("2")
			cur.DoseUnit = first(seg.Get("4-1"), seg.Get("4-2"))
			cur.Frequency = first(seg.Get("7-2"), seg.Get("7-1"))
			cur.Quantity = seg.Get("11")
			cur.Unit = first(seg.Get("12-1"), seg.Get("12-2"))
		case "RXR":
			if cur != nil && cur.Route == "" {
				cur.Route = first(seg.Get("1-2"), seg.Get("1-1"))
			}
		case "OBR":
			if cur == nil {
				continue
			}
			if cur.Placer == "" {
				cur.Placer = seg.Get("2")
			}
			cur.Code, cur.Name = seg.Get("4-1"), seg.Get("4-2")
			cur.ClinicalInfo = seg.Get("13")
			cur.Specimen = seg.Get("15-1")
			if cur.DoctorCode == "" {
				cur.DoctorCode, cur.DoctorName = seg.Get("16-1"), seg.Get("16-2")
			}
			cur.Quantity = "1"
			switch typ {
			case "OML":
				cur.Kind = "LAB"
			case "OMG":
				cur.Kind = "EXAM"
			}
		}
	}
	return out
}

// readDocument reads TXA and the ED observation of an MDM^T02.
func readDocument(req *hl7.Message) (*docIn, *outcome) {
	txa := req.Segment("TXA")
	if txa == nil {
		o := appError("101", "缺少 TXA 段")
		return nil, &o
	}
	d := &docIn{No: txa.Get("12-1"), Type: txa.Get("2"), Status: txa.Get("17"), ActivityAt: hl7.ParseTimestamp(txa.Get("4"))}
	obx := req.Segment("OBX")
	if obx == nil {
		o := appError("101", "缺少病历内容（OBX 段）")
		return nil, &o
	}
	data := obx.Get("5-5")
	d.ContentType = obx.Get("5-2") + "/" + obx.Get("5-3")
	if d.ContentType == "/" {
		d.ContentType = ""
	}
	switch strings.ToUpper(obx.Get("5-4")) {
	case "BASE64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(data), ""))
		if err != nil {
			o := appError("102", "病历内容（OBX-5）不是有效的 Base64")
			return nil, &o
		}
		d.Content = b
	default:
		d.Content = []byte(data)
		if data == "" {
			d.Content = []byte(obx.Get("5"))
		}
	}
	return d, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// query answers a QBP: ZV1, ZF1, ZC1, ZR1 and the PDQ Q22.
func (s *Sim) query(ctx context.Context, req *hl7.Message, trigger string) *hl7.Message {
	qpd := req.Segment("QPD")
	var rspTrigger, structure string
	switch trigger {
	case "Q22":
		rspTrigger, structure = "K22", "RSP_K21"
	case "ZV1":
		rspTrigger, structure = "ZV2", "RSP_K11"
	case "ZF1":
		rspTrigger, structure = "ZF2", "RSP_K11"
	case "ZC1":
		rspTrigger, structure = "ZC2", "RSP_K11"
	case "ZR1":
		rspTrigger, structure = "ZR2", "RSP_K11"
	default:
		return hisAck(req, "AR", "不支持的查询：QBP^"+trigger, hl7.CodeUnsupportedEvent)
	}
	// rsp starts as an ACK (addressing, MSA, ERR) and becomes the RSP.
	rsp := func(code, status, text, errCode string) *hl7.Message {
		r := hisAck(req, code, text, errCode)
		r.Set("MSH-9-1", "RSP")
		r.Set("MSH-9-2", rspTrigger)
		r.Set("MSH-9-3", structure)
		qak := r.Add("QAK")
		qak.Set("2", status)
		if qpd != nil {
			qak.Set("1", qpd.Get("2"))
			if len(qpd.Fields) > 1 {
				qak.Set("3", "")
				qak.Fields[3] = qpd.Fields[1].Clone() // QAK-3 names the query as QPD-1 does
			}
		}
		if qpd != nil {
			echo := r.Add("QPD")
			for _, f := range qpd.Fields[1:] {
				echo.Fields = append(echo.Fields, f.Clone())
			}
		}
		return r
	}
	fail := func(code, errCode, text string) *hl7.Message { return rsp(code, code, text, errCode) }
	if qpd == nil {
		return fail("AE", hl7.CodeRequiredField, "缺少 QPD 段")
	}
	found := func(r *hl7.Message, n int) *hl7.Message {
		if n == 0 {
			r.Set("QAK-2", "NF")
		}
		r.Set("QAK-4", strconv.Itoa(n))
		r.Set("QAK-5", strconv.Itoa(n))
		r.Set("QAK-6", "0")
		return r
	}
	internal := func(err error) *hl7.Message {
		s.log.Error("query failed", "trigger", trigger, "err", err)
		return fail("AE", hl7.CodeInternal, "HIS 内部错误，请稍后重试")
	}

	switch trigger {
	case "Q22":
		var value, typ string
		for i := 1; i <= qpd.Repetitions(3); i++ {
			r := "3(" + strconv.Itoa(i) + ")"
			switch strings.TrimPrefix(qpd.Get(r+"-1"), "@") {
			case "PID.3.1", "PID.3":
				value = strings.TrimSpace(qpd.Get(r + "-2"))
			case "PID.3.5":
				typ = strings.TrimSpace(qpd.Get(r + "-2"))
			case "PV1.19": // the patient of a visit, as IHE PDQ asks it
				value, typ = strings.TrimSpace(qpd.Get(r+"-2")), "VN"
			}
		}
		if value == "" {
			return fail("AE", hl7.CodeRequiredField, "查询条件缺少患者标识（QPD-3 @PID.3.1）")
		}
		switch typ {
		case "", "PI", "NNCHN", "HC", "VN":
		default:
			return fail("AE", hl7.CodeTableValue, "不支持的标识类型（@PID.3.5）："+typ)
		}
		pats, err := s.findPatients(ctx, typ, value)
		if err != nil {
			return internal(err)
		}
		r := found(rsp("AA", "OK", "", ""), len(pats))
		for i, p := range pats {
			writePID(r.Add("PID"), i+1, p)
		}
		return r
	case "ZV1":
		hisID := qpd.Get("3-1")
		if hisID == "" {
			return fail("AE", hl7.CodeRequiredField, "查询条件缺少 HIS 患者号（QPD-3）")
		}
		var since time.Time
		if v := qpd.Get("4-1"); v != "" {
			if since = hl7.ParseTimestamp(v); since.IsZero() {
				return fail("AE", hl7.CodeDataType, "起始日期（QPD-4）格式不正确："+v)
			}
		}
		visits, err := s.visits(ctx, hisID, since)
		if err != nil {
			return internal(err)
		}
		r := found(rsp("AA", "OK", "", ""), len(visits))
		for i, v := range visits {
			pv1 := r.Add("PV1")
			pv1.Set("1", strconv.Itoa(i+1))
			pv1.Set("2", "O")
			pv1.Set("3-1", v.DeptCode)
			pv1.Set("3-9", v.DeptName)
			pv1.Set("7-1", v.DoctorCode)
			pv1.Set("7-2", v.DoctorName)
			if v.Service != "" {
				pv1.Set("10", v.Service)
			}
			pv1.Set("19", v.VisitNo)
			pv1.Set("44", hl7.Timestamp(v.At))
			zpv := r.Add("ZPV")
			zpv.Set("1", v.QueueNo)
			zpv.Set("2", v.TimeSlot)
			if v.FeeFen != 0 {
				zpv.Set("3", yuan(v.FeeFen))
			}
			zpv.Set("4", v.Status)
			for j, d := range v.Diagnoses {
				dg1 := r.Add("DG1")
				dg1.Set("1", strconv.Itoa(j+1))
				dg1.Set("3-1", d.Code)
				dg1.Set("3-2", d.Name)
				dg1.Set("3-3", "ICD10")
				dg1.Set("5", hl7.Timestamp(d.At))
				dg1.Set("6", d.Type)
			}
		}
		return r
	case "ZF1":
		hisID := qpd.Get("3-1")
		if hisID == "" {
			return fail("AE", hl7.CodeRequiredField, "查询条件缺少 HIS 患者号（QPD-3）")
		}
		fees, err := s.unpaidFees(ctx, hisID)
		if err != nil {
			return internal(err)
		}
		r := found(rsp("AA", "OK", "", ""), len(fees))
		for i, f := range fees {
			ft1 := r.Add("FT1")
			ft1.Set("1", strconv.Itoa(i+1))
			ft1.Set("2", f.FeeID)
			ft1.Set("4", hl7.Timestamp(f.At))
			ft1.Set("6", f.Type)
			ft1.Set("7-1", f.ItemCode)
			ft1.Set("7-2", f.ItemName)
			ft1.Set("10", f.Quantity)
			ft1.Set("11-1", yuan(f.AmountFen))
			ft1.Set("13-1", f.DeptCode)
			ft1.Set("20-1", f.DoctorCode)
			ft1.Set("20-2", f.DoctorName)
			ft1.Set("26", f.VisitNo)
		}
		return r
	case "ZR1":
		hisID := qpd.Get("3-1")
		if hisID == "" {
			return fail("AE", hl7.CodeRequiredField, "查询条件缺少 HIS 患者号（QPD-3）")
		}
		var since time.Time
		if v := qpd.Get("4-1"); v != "" {
			if since = hl7.ParseTimestamp(v); since.IsZero() {
				return fail("AE", hl7.CodeDataType, "起始日期（QPD-4）格式不正确："+v)
			}
		}
		reports, err := s.reports(ctx, hisID, since)
		if err != nil {
			return internal(err)
		}
		r := found(rsp("AA", "OK", "", ""), len(reports))
		for i, rep := range reports {
			writeReport(r, i+1, rep)
		}
		return r
	default: // ZC1
		kind := strings.ToUpper(strings.TrimSpace(qpd.Get("3-1")))
		switch kind {
		case "DRUG", "EXAM", "LAB":
		case "":
			return fail("AE", hl7.CodeRequiredField, "查询条件缺少目录类别（QPD-3：DRUG、EXAM 或 LAB）")
		default:
			return fail("AE", hl7.CodeTableValue, "不支持的目录类别（QPD-3）："+kind)
		}
		items, err := s.catalog(ctx, kind)
		if err != nil {
			return internal(err)
		}
		r := found(rsp("AA", "OK", "", ""), len(items))
		for _, it := range items {
			writeZCI(r.Add("ZCI"), it)
		}
		return r
	}
}

func writePID(pid *hl7.Segment, set int, p patientRow) {
	pid.Set("1", strconv.Itoa(set))
	rep := 1
	for _, id := range [][3]string{{p.HISID, "HIS", "PI"}, {p.IDNumber, "CHN", "NNCHN"}, {p.InsuranceCard, "YB", "HC"}} {
		if id[0] == "" {
			continue
		}
		r := "3(" + strconv.Itoa(rep) + ")"
		pid.Set(r+"-1", id[0])
		pid.Set(r+"-4", id[1])
		pid.Set(r+"-5", id[2])
		rep++
	}
	pid.Set("5-1", p.Name)
	pid.Set("7", p.BirthDate)
	pid.Set("8", p.Sex)
	pid.Set("13-1", p.Phone)
}

// writeZCI fills a catalogue item segment. ZCI-12 (manufacturer) goes beyond
// the profile: drugs of the same name and spec from different makers differ
// only there.
func writeZCI(z *hl7.Segment, it catalogItem) {
	z.Set("1", it.Kind)
	z.Set("2", it.Code)
	z.Set("3", it.Name)
	z.Set("4", it.Spec)
	z.Set("5", it.Unit)
	z.Set("6", yuan(it.PriceFen))
	if it.Stock != nil {
		z.Set("7", strconv.FormatInt(*it.Stock, 10))
	}
	for i, f := range it.Flags {
		z.Set("8("+strconv.Itoa(i+1)+")", f)
	}
	z.Set("9", it.Category)
	if it.Active {
		z.Set("10", "Y")
	} else {
		z.Set("10", "N")
	}
	z.Set("11", it.Specimen)
	if it.Manufacturer != "" {
		z.Set("12", it.Manufacturer)
	}
}
