package hissim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"ihos"

	"ihos/his/hl7"
	"ihos/his/mllp"
)

func TestIDCheckDigit(t *testing.T) {
	for _, id := range []string{"110101199003078515", "11010519491231002X", "440524188001010014"} {
		if !ihos.ValidIDNumber(id) {
			t.Errorf("%s should be valid", id)
		}
	}
	for _, id := range []string{"110101199003078514", "11010519491231002", "1101011990030785X5", ""} {
		if ihos.ValidIDNumber(id) {
			t.Errorf("%s should be invalid", id)
		}
	}
	if got := ihos.IDCheckDigit("11010519491231002"); got != 'X' {
		t.Errorf("check digit = %c, want X", got)
	}
}

func TestDemoData(t *testing.T) {
	s := startSim(t, Config{})
	ctx := context.Background()
	count := func(q string, args ...any) int {
		var n int
		if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM patients`); n != 60 || len(DemoPatients) != 60 {
		t.Errorf("%d patients, %d demo patients, want 60", n, len(DemoPatients))
	}
	for kind, want := range map[string]int{"DRUG": 500, "EXAM": 100, "LAB": 100} {
		if n := count(`SELECT count(*) FROM catalog WHERE kind = ?`, kind); n != want {
			t.Errorf("%d %s items, want %d", n, kind, want)
		}
	}
	if n := count(`SELECT count(DISTINCT code) FROM catalog`); n != 700 {
		t.Errorf("%d distinct codes, want 700", n)
	}

	fixed := []DemoPatient{
		{HISID: "P000001", Name: "张三", IDNumber: "110101199003078515", Sex: "M", BirthDate: "19900307"},
		{HISID: "P000002", Name: "李四", Sex: "F"},
		{HISID: "P000003", Name: "王五", Sex: "M"},
	}
	for i, f := range fixed {
		p := DemoPatients[i]
		if p.HISID != f.HISID || p.Name != f.Name || p.Sex != f.Sex || (f.IDNumber != "" && p.IDNumber != f.IDNumber) {
			t.Errorf("demo patient %d = %+v, want %+v", i, p, f)
		}
	}
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, p := range DemoPatients {
		if !ihos.ValidIDNumber(p.IDNumber) {
			t.Errorf("%s %s: invalid ID number %s", p.HISID, p.Name, p.IDNumber)
		}
		if p.IDNumber[6:14] != p.BirthDate {
			t.Errorf("%s: ID number %s does not hold the birth date %s", p.HISID, p.IDNumber, p.BirthDate)
		}
		if odd := (p.IDNumber[16]-'0')%2 == 1; odd != (p.Sex == "M") {
			t.Errorf("%s: ID number %s does not match sex %s", p.HISID, p.IDNumber, p.Sex)
		}
		if len(p.Phone) != 11 || p.Phone[0] != '1' {
			t.Errorf("%s: phone %q", p.HISID, p.Phone)
		}
		if seen[p.IDNumber] || names[p.Name] {
			t.Errorf("%s: duplicate ID number or name", p.HISID)
		}
		seen[p.IDNumber], names[p.Name] = true, true
	}

	// The fixed patients' histories.
	v1 := past(s.visits(ctx, "P000001", time.Time{}))
	if len(v1) != 1 || len(v1[0].Diagnoses) != 1 || v1[0].Diagnoses[0].Code != "I10" || v1[0].Diagnoses[0].Name != "原发性高血压" {
		t.Fatalf("张三's visits: %+v", v1)
	}
	if age := time.Since(v1[0].At); age < 29*24*time.Hour || age > 31*24*time.Hour {
		t.Errorf("张三's visit is %v old, want 30 days", age)
	}
	fees, _ := s.unpaidFees(ctx, "P000001")
	if len(fees) != 1 || fees[0].AmountFen != 6700 {
		t.Errorf("张三's unpaid fees: %+v", fees)
	}
	v2 := past(s.visits(ctx, "P000002", time.Time{}))
	if len(v2) != 1 || v2[0].Diagnoses[0].Code != "E11.9" {
		t.Errorf("李四's visits: %+v", v2)
	}
	if v3 := past(s.visits(ctx, "P000003", time.Time{})); len(v3) != 0 {
		t.Errorf("王五 has visits: %+v", v3)
	}

	// The rest: recent visits, only old ones, none; some unpaid fees.
	// (Today's registrations, with a queue number, and their fees are left out.)
	recent := count(`SELECT count(DISTINCT his_id) FROM visits WHERE visited_at >= ? AND queue_no = ''`, fmtDB(time.Now().AddDate(0, -6, 0)))
	onlyOld := count(`SELECT count(*) FROM (SELECT his_id FROM visits WHERE queue_no = '' GROUP BY his_id HAVING max(visited_at) < ?)`, fmtDB(time.Now().AddDate(-1, 0, 0)))
	none := count(`SELECT count(*) FROM patients WHERE his_id NOT IN (SELECT his_id FROM visits WHERE queue_no = '')`)
	owing := count(`SELECT count(DISTINCT his_id) FROM fees WHERE status = 'unpaid' AND visit_no NOT IN (SELECT visit_no FROM visits WHERE queue_no <> '')`)
	t.Logf("patients with recent visits %d, only old visits %d, none %d, owing %d", recent, onlyOld, none, owing)
	if recent < 35 || onlyOld < 3 || none < 3 || owing < 5 {
		t.Errorf("history spread: recent %d, only old %d, none %d, owing %d", recent, onlyOld, none, owing)
	}
	if n := count(`SELECT count(*) FROM diagnoses WHERE code NOT IN ('I10','E11.9','J45.9','K29.7','M54.5','N18.9','I25.1','J44.9','E78.5','F32.9','E03.9','E05.9','I48.9','I63.9','G43.9','G47.0','K21.9','M17.9','M81.9','M10.9','N40','K76.0','F41.1','J06.9','J20.9','K52.9')`); n != 0 {
		t.Errorf("%d diagnoses with unexpected codes", n)
	}

	// Flags and catalogue details.
	drugs, err := s.catalog(ctx, "DRUG")
	if err != nil {
		t.Fatal(err)
	}
	flagged := map[string]map[string]bool{}
	for _, d := range drugs {
		if d.Stock == nil || d.PriceFen <= 0 || d.Spec == "" || d.Unit == "" || (d.Category != "西药" && d.Category != "中成药") {
			t.Fatalf("drug %+v", d)
		}
		for _, f := range d.Flags {
			if flagged[f] == nil {
				flagged[f] = map[string]bool{}
			}
			flagged[f][d.Name] = true
		}
	}
	for flag, want := range map[string][]string{
		"NARC":  {"盐酸吗啡注射液", "硫酸吗啡缓释片", "芬太尼透皮贴剂", "盐酸哌替啶注射液"},
		"PSY1":  {"盐酸哌甲酯缓释片"},
		"PSY2":  {"地西泮片", "艾司唑仑片", "阿普唑仑片", "酒石酸唑吡坦片"},
		"TOX":   {"硫酸阿托品注射液"},
		"ANTI1": {"阿莫西林胶囊", "头孢氨苄胶囊"},
		"ANTI2": {"注射用头孢曲松钠", "乳酸左氧氟沙星片"},
		"ANTI3": {"注射用美罗培南", "注射用盐酸万古霉素", "利奈唑胺片"},
	} {
		for _, name := range want {
			if !flagged[flag][name] {
				t.Errorf("%s is not flagged %s", name, flag)
			}
		}
	}
	labs, _ := s.catalog(ctx, "LAB")
	for _, l := range labs {
		if len(l.Panel) == 0 || l.Specimen == "" || l.Category != "检验" {
			t.Errorf("lab %+v", l)
		}
	}
	exams, _ := s.catalog(ctx, "EXAM")
	cats := map[string]int{}
	for _, e := range exams {
		cats[e.Category]++
		if _, ok := examReports[e.Report]; !ok {
			t.Errorf("exam %s: no report template %q", e.Name, e.Report)
		}
	}
	for _, c := range []string{"放射", "超声", "内镜", "心电"} {
		if cats[c] == 0 {
			t.Errorf("no exam of category %s", c)
		}
	}
}

func TestDemoDataIsDeterministic(t *testing.T) {
	a, b := startSim(t, Config{}), startSim(t, Config{})
	ctx := context.Background()
	for _, kind := range []string{"DRUG", "EXAM", "LAB"} {
		x, _ := a.catalog(ctx, kind)
		y, _ := b.catalog(ctx, kind)
		jx, _ := json.Marshal(x)
		jy, _ := json.Marshal(y)
		if string(jx) != string(jy) {
			t.Errorf("%s catalogues differ between two first starts", kind)
		}
	}
	for _, p := range DemoPatients[:10] {
		va, _ := a.visits(ctx, p.HISID, time.Time{})
		vb, _ := b.visits(ctx, p.HISID, time.Time{})
		if len(va) != len(vb) {
			t.Errorf("%s: %d visits vs %d", p.HISID, len(va), len(vb))
		}
	}
}

func TestMessagesOverMLLP(t *testing.T) {
	s := startSim(t, Config{ResultDelay: time.Hour})
	c := client(t, s)
	ctx := context.Background()

	// ADT^A04 registers an online visit.
	adt := message("ADT", "A04", "ADT_A01", newID("M"), zhangSan, "VISIT-ONLINE-1")
	wantAck(t, send(t, c, adt), "AA")
	visits := past(s.visits(ctx, "P000001", time.Time{}))
	if len(visits) != 2 || visits[0].Service != "ONLINE" || visits[0].DeptCode != "0301" || visits[0].DoctorName != "王建国" {
		t.Fatalf("visits after A04: %+v", visits)
	}

	// Pharmacy order: one ORC per line in the ACK, with placer and filler.
	p1, p2 := newID("RX"), newID("RX")
	omp := orderMessage("OMP", newID("M"), zhangSan, line{p1, "YP00001", "硝苯地平控释片"}, line{p2, "YP00050", ""})
	ack := send(t, c, omp)
	wantAck(t, ack, "AA")
	if ack.Get("MSA-2") != omp.ControlID() {
		t.Errorf("MSA-2 = %q", ack.Get("MSA-2"))
	}
	orcs := ack.All("ORC")
	if len(orcs) != 2 || orcs[0].Get("2") != p1 || orcs[1].Get("2") != p2 || !strings.HasPrefix(orcs[0].Get("3"), "RX") || orcs[0].Get("3") == orcs[1].Get("3") {
		t.Fatalf("ACK ORC segments: %v", ack)
	}
	var route, freq, qty, name, kind string
	if err := s.db.QueryRow(`SELECT route, frequency, quantity, name, kind FROM orders WHERE placer_order_no = ?`, p2).Scan(&route, &freq, &qty, &name, &kind); err != nil {
		t.Fatal(err)
	}
	if route != "口服" || freq != "每日一次" || qty != "2" || name == "" || kind != "DRUG" {
		t.Errorf("stored drug line: route %q freq %q qty %q name %q kind %q", route, freq, qty, name, kind)
	}

	// Lab, exam and the generic ORM.
	for _, tc := range []struct {
		typ, code, prefix, kind string
	}{{"OML", "JY0001", "LAB", "LAB"}, {"OMG", "JC0020", "EXM", "EXAM"}, {"ORM", "JC0001", "EXM", "EXAM"}} {
		placer := newID(tc.typ)
		ack := send(t, c, orderMessage(tc.typ, newID("M"), zhangSan, line{placer, tc.code, ""}))
		wantAck(t, ack, "AA")
		if ack.Get("ORC-2") != placer || !strings.HasPrefix(ack.Get("ORC-3"), tc.prefix) || ack.Get("ORC-5") != "IP" {
			t.Errorf("%s ACK: ORC %q %q %q", tc.typ, ack.Get("ORC-2"), ack.Get("ORC-3"), ack.Get("ORC-5"))
		}
		if err := s.db.QueryRow(`SELECT kind FROM orders WHERE placer_order_no = ?`, placer).Scan(&kind); err != nil || kind != tc.kind {
			t.Errorf("%s stored as %q (%v)", tc.typ, kind, err)
		}
	}

	// MDM^T02: the signed EMR.
	docNo := newID("DOC")
	mdm := message("MDM", "T02", "MDM_T02", newID("M"), zhangSan, "VISIT-ONLINE-1")
	txa := mdm.Add("TXA")
	txa.Set("1", "1")
	txa.Set("2", "EMR")
	txa.Set("4", hl7.Timestamp(time.Now()))
	txa.Set("12-1", docNo)
	txa.Set("17", "AU")
	obx := mdm.Add("OBX")
	obx.Set("1", "1")
	obx.Set("2", "ED")
	obx.Set("3-1", "EMR")
	obx.Set("3-2", "门诊病历")
	obx.Set("5-2", "application")
	obx.Set("5-3", "json")
	obx.Set("5-4", "Base64")
	emr := `{"主诉":"头晕一周","诊断":"原发性高血压"}`
	obx.Set("5-5", base64.StdEncoding.EncodeToString([]byte(emr)))
	wantAck(t, send(t, c, mdm), "AA")
	var content []byte
	if err := s.db.QueryRow(`SELECT content FROM documents WHERE document_no = ?`, docNo).Scan(&content); err != nil || string(content) != emr {
		t.Errorf("stored document %q (%v)", content, err)
	}

	// DFT^P03: fees, stored as posted; refunds negative.
	dft := message("DFT", "P03", "DFT_P03", newID("M"), zhangSan, "VISIT-ONLINE-1")
	f1, f2 := newID("FEE"), newID("FEE")
	for i, f := range []struct{ id, typ, amount string }{{f1, "CG", "30.00"}, {f2, "CR", "12.5"}} {
		ft1 := dft.Add("FT1")
		ft1.Set("1", strconv.Itoa(i+1))
		ft1.Set("2", f.id)
		ft1.Set("4", hl7.Timestamp(time.Now()))
		ft1.Set("6", f.typ)
		ft1.Set("7-1", "ZC001")
		ft1.Set("7-2", "互联网复诊费")
		ft1.Set("10", "1")
		ft1.Set("11-1", f.amount)
		ft1.Set("13-1", "0301")
		ft1.Set("20-1", "D0301")
		ft1.Set("20-2", "王建国")
	}
	wantAck(t, send(t, c, dft), "AA")
	var fen int64
	var status string
	if err := s.db.QueryRow(`SELECT amount_fen, status FROM fees WHERE platform_fee_id = ?`, f2).Scan(&fen, &status); err != nil || fen != -1250 || status != "posted" {
		t.Errorf("refund stored as %d %s (%v)", fen, status, err)
	}
	if fees, _ := s.unpaidFees(ctx, "P000001"); len(fees) != 1 {
		t.Errorf("posted fees show as unpaid: %+v", fees)
	}

	got := s.Received("")
	if len(got) != 7 {
		t.Fatalf("received %d messages: %+v", len(got), got)
	}
	if r := s.Received("OMP^O09"); len(r) != 1 || r[0].ControlID != omp.ControlID() || r[0].PatientHISID != "P000001" ||
		strings.Join(r[0].Placer, ",") != p1+","+p2 || r[0].Duplicate || r[0].AckCode != "AA" || r[0].Via != "mllp" {
		t.Errorf("Received(OMP^O09) = %+v", r)
	}
	if r := s.Received("ORM"); len(r) != 1 {
		t.Errorf("Received(ORM) = %+v", r)
	}
}

func TestRefusals(t *testing.T) {
	s := startSim(t, Config{ResultDelay: time.Hour})
	c := client(t, s)

	// An order for a patient the HIS does not know.
	nobody := testPatient{hisID: "P999999", name: "查无此人"}
	ack := send(t, c, orderMessage("OMP", newID("M"), nobody, line{newID("RX"), "YP00001", ""}))
	wantAck(t, ack, "AE")
	if !strings.Contains(ack.Get("MSA-3"), "患者不存在") || ack.Get("ERR-8") != ack.Get("MSA-3") || ack.Get("ERR-3-1") != "204" {
		t.Errorf("AE reason: MSA-3 %q ERR-3 %q ERR-8 %q", ack.Get("MSA-3"), ack.Get("ERR-3-1"), ack.Get("ERR-8"))
	}
	// Known by ID number only: found.
	byID := testPatient{idNumber: "110101199003078515", name: "张三"}
	wantAck(t, send(t, c, orderMessage("OML", newID("M"), byID, line{newID("L"), "JY0002", ""})), "AA")

	// An unknown message type is rejected with code 200.
	m := hl7.New("ZZZ", "Z01", "", newID("M"))
	m.Add("PID")
	ack = send(t, c, m)
	wantAck(t, ack, "AR")
	if ack.Get("ERR-3-1") != "200" {
		t.Errorf("ERR-3 = %q, want 200", ack.Get("ERR-3-1"))
	}
	// A known type with an unsupported trigger.
	ack = send(t, c, message("ADT", "A08", "ADT_A01", newID("M"), zhangSan, "V1"))
	wantAck(t, ack, "AR")

	// A refused message is not remembered: the same control id is acted on
	// once it is right.
	id := newID("M")
	placer := newID("RX")
	wantAck(t, send(t, c, orderMessage("OMP", id, nobody, line{placer, "YP00001", ""})), "AE")
	wantAck(t, send(t, c, orderMessage("OMP", id, zhangSan, line{placer, "YP00001", ""})), "AA")
	if r := s.Received("OMP^O09"); len(r) != 3 || r[1].AckCode != "AE" || r[2].AckCode != "AA" || r[2].Duplicate {
		t.Errorf("received: %+v", r)
	}
}

func TestDuplicateControlID(t *testing.T) {
	s := startSim(t, Config{ResultDelay: time.Hour})
	c := client(t, s)
	id := newID("M")
	m := orderMessage("OML", id, zhangSan, line{newID("L"), "JY0001", ""}, line{newID("L"), "JY0004", ""})
	first := send(t, c, m)
	wantAck(t, first, "AA")
	again := send(t, c, m)
	a, _ := first.Encode()
	b, _ := again.Encode()
	if string(a) != string(b) {
		t.Errorf("the resend got another answer:\n%s\n%s", a, b)
	}
	var n int
	s.db.QueryRow(`SELECT count(*) FROM orders WHERE control_id = ?`, id).Scan(&n)
	if n != 2 {
		t.Errorf("%d order lines stored, want 2", n)
	}
	r := s.Received("OML^O21")
	if len(r) != 2 || r[0].Duplicate || !r[1].Duplicate || r[1].ControlID != id {
		t.Errorf("received: %+v", r)
	}
	// A new message naming a placer number seen before keeps its filler number.
	m2 := orderMessage("OML", newID("M"), zhangSan, line{m.Get("ORC-2"), "JY0001", ""})
	ack := send(t, c, m2)
	if ack.Get("ORC-3") != first.Get("ORC-3") {
		t.Errorf("filler %q, want %q", ack.Get("ORC-3"), first.Get("ORC-3"))
	}
}

func TestQueries(t *testing.T) {
	s := startSim(t, Config{})
	c := client(t, s)

	// PDQ by ID number, insurance card and HIS id.
	for _, q := range [][2]string{{"110101199003078515", "NNCHN"}, {"1101A0000001", "HC"}, {"P000001", "PI"}} {
		rsp := send(t, c, pdq(q[0], q[1]))
		typ, trigger, structure := rsp.Type()
		if typ != "RSP" || trigger != "K22" || structure != "RSP_K21" {
			t.Fatalf("answer type %s^%s^%s", typ, trigger, structure)
		}
		wantAck(t, rsp, "AA")
		if rsp.Get("MSH-3") != "HIS" || rsp.Get("MSH-5") != "IHOS" || rsp.Get("MSA-2") != rsp.Get("QAK-1") {
			t.Errorf("RSP header: MSH-3 %q MSH-5 %q MSA-2 %q QAK-1 %q", rsp.Get("MSH-3"), rsp.Get("MSH-5"), rsp.Get("MSA-2"), rsp.Get("QAK-1"))
		}
		pids := rsp.All("PID")
		if rsp.Get("QAK-2") != "OK" || len(pids) != 1 || pids[0].Get("5-1") != "张三" || rsp.Get("QPD-3(1)-2") != q[0] {
			t.Fatalf("PDQ %v: %d PID, QAK-2 %q", q, len(pids), rsp.Get("QAK-2"))
		}
		pid := pids[0]
		if pid.Get("3(1)-1") != "P000001" || pid.Get("3(1)-5") != "PI" || pid.Get("3(2)-1") != "110101199003078515" || pid.Get("3(2)-5") != "NNCHN" ||
			pid.Get("3(3)-1") != "1101A0000001" || pid.Get("3(3)-5") != "HC" || pid.Get("7") != "19900307" || pid.Get("8") != "M" || pid.Get("13") != "13800138000" {
			t.Errorf("PID: %v", pid.Fields)
		}
	}
	rsp := send(t, c, pdq("110101199001010011", "NNCHN"))
	wantAck(t, rsp, "AA")
	if rsp.Get("QAK-2") != "NF" || len(rsp.All("PID")) != 0 {
		t.Errorf("unknown ID number: QAK-2 %q", rsp.Get("QAK-2"))
	}
	rsp = send(t, c, pdq("", "NNCHN"))
	if rsp.Get("MSA-1") != "AE" || rsp.Get("QAK-2") != "AE" {
		t.Errorf("PDQ without a value: MSA-1 %q QAK-2 %q", rsp.Get("MSA-1"), rsp.Get("QAK-2"))
	}

	// Visit history.
	rsp = send(t, c, query("ZV1", "QBP_Q11", "ZV1^就诊历史", "P000001", ""))
	if typ, trigger, _ := rsp.Type(); typ != "RSP" || trigger != "ZV2" {
		t.Fatalf("ZV1 answered with %s^%s", typ, trigger)
	}
	// Today's registration first (with its ZPV), then the visit 30 days ago.
	if n := len(rsp.All("PV1")); n != 2 || len(rsp.All("ZPV")) != 2 {
		t.Fatalf("ZV1 of 张三: %d PV1", n)
	}
	if rsp.Get("ZPV-1") == "" || rsp.Get("ZPV-2") == "" || rsp.Get("ZPV-3") != "50.00" || rsp.Get("ZPV-4") != "registered" {
		t.Errorf("today's ZPV: %v", rsp.Segment("ZPV").Fields)
	}
	if rsp.Get("ZPV(2)-1") != "" || rsp.Get("ZPV(2)-4") != "seen" {
		t.Errorf("past visit's ZPV: %v", rsp.All("ZPV")[1].Fields)
	}
	if rsp.Get("PV1(2)-3-1") != "0301" || rsp.Get("PV1(2)-3-9") != "心血管内科" || rsp.Get("PV1(2)-19") == "" || rsp.Get("PV1(2)-44") == "" || rsp.Get("PV1(2)-7-2") == "" {
		t.Errorf("PV1: %v", rsp.All("PV1")[1].Fields)
	}
	if rsp.Get("DG1-3-1") != "I10" || rsp.Get("DG1-3-2") != "原发性高血压" || rsp.Get("DG1-3-3") != "ICD10" || rsp.Get("DG1-6") != "F" || rsp.Get("DG1-5") == "" {
		t.Errorf("DG1: %v", rsp.Segment("DG1").Fields)
	}
	if at := hl7.ParseTimestamp(rsp.Get("PV1(2)-44")); time.Since(at) < 29*24*time.Hour {
		t.Errorf("PV1-44 %s", rsp.Get("PV1(2)-44"))
	}
	// 李四's only visit was 60 days ago: since 45 days, only today's registration.
	since := time.Now().AddDate(0, 0, -45).In(beijing).Format("20060102")
	rsp = send(t, c, query("ZV1", "QBP_Q11", "ZV1^就诊历史", "P000002", since))
	if rsp.Get("QAK-2") != "OK" || len(rsp.All("PV1")) != 1 || rsp.Get("ZPV-1") == "" || rsp.Segment("DG1") != nil {
		t.Errorf("李四 since %s: QAK-2 %q, %d PV1", since, rsp.Get("QAK-2"), len(rsp.All("PV1")))
	}
	rsp = send(t, c, query("ZV1", "QBP_Q11", "ZV1^就诊历史", "P000003", ""))
	if len(rsp.All("PV1")) != 1 || rsp.Get("ZPV-1") == "" || rsp.Segment("DG1") != nil {
		t.Errorf("王五 (no history, registered today): %d PV1", len(rsp.All("PV1")))
	}

	// Unpaid fees.
	rsp = send(t, c, query("ZF1", "QBP_Q11", "ZF1^待缴费用", "P000001"))
	if typ, trigger, _ := rsp.Type(); typ != "RSP" || trigger != "ZF2" || len(rsp.All("FT1")) != 1 {
		t.Fatalf("ZF1: %s^%s with %d FT1", typ, trigger, len(rsp.All("FT1")))
	}
	if rsp.Get("FT1-2") == "" || rsp.Get("FT1-6") != "CG" || rsp.Get("FT1-7-2") != "硝苯地平控释片" || rsp.Get("FT1-10") != "2" ||
		rsp.Get("FT1-11-1") != "67.00" || rsp.Get("FT1-13-1") != "0301" || rsp.Get("FT1-26") == "" || rsp.Get("FT1-20-1") == "" {
		t.Errorf("FT1: %v", rsp.Segment("FT1").Fields)
	}

	// Catalogue.
	for kind, want := range map[string]int{"DRUG": 500, "EXAM": 100, "LAB": 100} {
		rsp := send(t, c, query("ZC1", "QBP_Q11", "ZC1^目录查询", kind))
		zci := rsp.All("ZCI")
		if typ, trigger, _ := rsp.Type(); typ != "RSP" || trigger != "ZC2" || len(zci) != want || rsp.Get("QAK-4") != strconv.Itoa(want) {
			t.Fatalf("ZC1 %s: %s^%s with %d ZCI", kind, typ, trigger, len(zci))
		}
		z := zci[0]
		if z.Get("1") != kind || z.Get("2") == "" || z.Get("3") == "" || z.Get("6") == "" || z.Get("10") != "Y" {
			t.Errorf("ZCI %s: %v", kind, z.Fields)
		}
		switch kind {
		case "DRUG":
			if z.Get("4") != "30mg*7片" || z.Get("5") != "盒" || z.Get("6") != "33.50" || z.Get("7") == "" || z.Get("9") != "西药" {
				t.Errorf("first drug: %v", z.Fields)
			}
			narc := 0
			for _, z := range zci {
				for i := 1; i <= z.Repetitions(8); i++ {
					if z.Get("8("+strconv.Itoa(i)+")") == "NARC" {
						narc++
					}
				}
			}
			if narc < 6 {
				t.Errorf("%d narcotic drugs in ZCI-8", narc)
			}
		case "LAB":
			if z.Get("11") != "静脉血" || z.Get("9") != "检验" || z.Get("7") != "" {
				t.Errorf("first lab: %v", z.Fields)
			}
		}
	}
	rsp = send(t, c, query("ZC1", "QBP_Q11", "ZC1^目录查询", "FOOD"))
	if rsp.Get("MSA-1") != "AE" {
		t.Errorf("unknown catalogue kind: MSA-1 %q", rsp.Get("MSA-1"))
	}
	if r := s.Received("QBP^ZC1"); len(r) != 4 {
		t.Errorf("%d ZC1 queries recorded", len(r))
	}
}

func TestCharsetGB18030(t *testing.T) {
	s := startSim(t, Config{})
	c := client(t, s)
	q := pdq("110101199003078515", "NNCHN")
	q.Set("MSH-18", "GB 18030-2000")
	rsp := send(t, c, q)
	if rsp.Get("MSH-18") != "GB 18030-2000" || rsp.Get("PID-5-1") != "张三" {
		t.Errorf("MSH-18 %q, name %q", rsp.Get("MSH-18"), rsp.Get("PID-5-1"))
	}
}

func TestHTTPVariant(t *testing.T) {
	s := startSim(t, Config{ResultDelay: 100 * time.Millisecond})
	base := s.HTTPURL() + "/his/api"

	var pats struct {
		Patients []map[string]string `json:"patients"`
	}
	for _, q := range []string{"id_number=110101199003078515", "insurance_card=1101A0000001", "his_id=P000001"} {
		if code := getJSON(t, base+"/patients?"+q, &pats); code != 200 || len(pats.Patients) != 1 || pats.Patients[0]["name"] != "张三" || pats.Patients[0]["birth_date"] != "1990-03-07" {
			t.Fatalf("patients?%s: %d %+v", q, code, pats)
		}
	}
	if code := getJSON(t, base+"/patients?id_number=110101199001010011", &pats); code != 200 || len(pats.Patients) != 0 {
		t.Errorf("unknown ID number: %d %+v", code, pats)
	}
	var errBody apiError
	if code := getJSON(t, base+"/patients", &errBody); code != 400 || errBody.Code != "AE" {
		t.Errorf("no identifier: %d %+v", code, errBody)
	}

	var visits struct {
		Visits []struct {
			VisitNo   string `json:"visit_no"`
			VisitedAt string `json:"visited_at"`
			QueueNo   string `json:"queue_no"`
			TimeSlot  string `json:"time_slot"`
			FeeFen    int64  `json:"fee_fen"`
			Status    string `json:"status"`
			Diagnoses []struct {
				Code        string `json:"code"`
				DiagnosedAt string `json:"diagnosed_at"`
			} `json:"diagnoses"`
		} `json:"visits"`
	}
	// Today's registration, then the visit 30 days ago.
	if code := getJSON(t, base+"/patients/P000001/visits", &visits); code != 200 || len(visits.Visits) != 2 || visits.Visits[1].Diagnoses[0].Code != "I10" ||
		visits.Visits[0].QueueNo == "" || visits.Visits[0].TimeSlot == "" || visits.Visits[0].FeeFen != 5000 || visits.Visits[0].Status != "registered" || visits.Visits[1].Status != "seen" {
		t.Fatalf("visits: %d %+v", code, visits)
	}
	if _, err := time.Parse(time.RFC3339, visits.Visits[1].VisitedAt); err != nil {
		t.Errorf("visited_at %q", visits.Visits[1].VisitedAt)
	}
	since := time.Now().AddDate(0, 0, -10).Format("2006-01-02")
	if code := getJSON(t, base+"/patients/P000001/visits?since="+since, &visits); code != 200 || len(visits.Visits) != 1 || visits.Visits[0].QueueNo == "" {
		t.Errorf("visits since %s: %d %+v", since, code, visits)
	}
	if code := getJSON(t, base+"/patients/P999999/visits", &errBody); code != 404 || errBody.Code != "AE" {
		t.Errorf("unknown patient: %d %+v", code, errBody)
	}
	var fees struct {
		Fees []struct {
			FeeID, VisitNo, ItemCode, ItemName, Quantity string
			AmountFen                                    int64 `json:"amount_fen"`
		} `json:"fees"`
	}
	if code := getJSON(t, base+"/patients/P000001/fees?status=unpaid", &fees); code != 200 || len(fees.Fees) != 1 || fees.Fees[0].AmountFen != 6700 {
		t.Errorf("fees: %d %+v", code, fees)
	}
	var cat struct {
		Items []itemJSON `json:"items"`
	}
	for kind, want := range map[string]int{"drug": 500, "exam": 100, "lab": 100} {
		if code := getJSON(t, base+"/catalog/"+kind, &cat); code != 200 || len(cat.Items) != want {
			t.Errorf("catalog/%s: %d, %d items", kind, code, len(cat.Items))
		}
	}

	// Messages: an order, its resend, an unknown patient, an unknown event.
	id := newID("H")
	p1, p2 := newID("L"), newID("E")
	order := map[string]any{
		"message_id": id, "event": "lab_order", "at": time.Now(),
		"data": map[string]any{
			"patient": map[string]any{"his_id": "P000001", "name": "张三"}, "visit_no": "V-HTTP-1",
			"department_code": "0301", "doctor_code": "D0301", "doctor_name": "王建国",
			"orders": []map[string]any{{"placer_order_no": p1, "code": "JY0006", "name": "血脂四项", "quantity": 1}},
		},
	}
	var ans struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Filler  map[string]string `json:"filler"`
	}
	if code := postJSON(t, base+"/messages", order, &ans); code != 200 || ans.Code != "AA" || !strings.HasPrefix(ans.Filler[p1], "LAB") {
		t.Fatalf("lab order: %d %+v", code, ans)
	}
	filler := ans.Filler[p1]
	if code := postJSON(t, base+"/messages", order, &ans); code != 200 || ans.Code != "AA" || ans.Filler[p1] != filler {
		t.Errorf("resend: %d %+v", code, ans)
	}
	if r := s.Received("OML^O21"); len(r) != 2 || r[0].Via != "http" || !r[1].Duplicate || r[0].Placer[0] != p1 {
		t.Errorf("received: %+v", r)
	}
	exam := map[string]any{
		"message_id": newID("H"), "event": "exam_order",
		"data": map[string]any{
			"patient": map[string]any{"id_number": "110101199003078515"}, "visit_no": "V-HTTP-1",
			"orders": []map[string]any{{"placer_order_no": p2, "code": "JC0020", "name": "胸部CT平扫"}},
		},
	}
	if code := postJSON(t, base+"/messages", exam, &ans); code != 200 || ans.Code != "AA" {
		t.Fatalf("exam order: %d %+v", code, ans)
	}
	bad := map[string]any{"message_id": newID("H"), "event": "pharmacy_order",
		"data": map[string]any{"patient": map[string]any{"his_id": "P999999"}, "orders": []map[string]any{{"placer_order_no": newID("RX"), "code": "YP00001", "quantity": "1"}}}}
	if code := postJSON(t, base+"/messages", bad, &ans); code != 422 || ans.Code != "AE" || !strings.Contains(ans.Message, "患者不存在") {
		t.Errorf("unknown patient: %d %+v", code, ans)
	}
	if code := postJSON(t, base+"/messages", map[string]any{"message_id": newID("H"), "event": "discharge"}, &ans); code != 400 || ans.Code != "AR" {
		t.Errorf("unknown event: %d %+v", code, ans)
	}
	for _, ev := range []map[string]any{
		{"message_id": newID("H"), "event": "register_visit", "data": map[string]any{"patient": map[string]any{"his_id": "P000002"}, "visit_no": newID("V"), "department_code": "0302"}},
		{"message_id": newID("H"), "event": "emr", "data": map[string]any{"patient": map[string]any{"his_id": "P000002"}, "visit_no": "V1", "document_no": newID("D"), "document": []byte(`{"a":1}`)}},
		{"message_id": newID("H"), "event": "fees", "data": map[string]any{"patient": map[string]any{"his_id": "P000002"}, "visit_no": "V1",
			"fees": []map[string]any{{"fee_id": newID("F"), "item_code": "ZC001", "item_name": "互联网复诊费", "quantity": "1", "amount_fen": 3000}}}},
	} {
		if code := postJSON(t, base+"/messages", ev, &ans); code != 200 || ans.Code != "AA" {
			t.Errorf("%s: %d %+v", ev["event"], code, ans)
		}
	}

	// Results, polled.
	var res struct {
		Results []resultJSON `json:"results"`
	}
	eventually(t, 10*time.Second, "two results", func() bool {
		getJSON(t, base+"/results?after=0", &res)
		return len(res.Results) == 2
	})
	lab := res.Results[0]
	if lab.PlacerOrderNo != p1 || lab.FillerOrderNo != filler || lab.OrderStatus != "CM" || lab.ResultStatus != "F" || lab.PatientHISID != "P000001" ||
		lab.ServiceCode != "JY0006" || len(lab.Observations) != 4 || lab.Observations[0].Code != "TC" || lab.Observations[0].Units != "mmol/L" {
		t.Errorf("lab result: %+v", lab)
	}
	if ex := res.Results[1]; ex.PlacerOrderNo != p2 || len(ex.Observations) != 2 || ex.Observations[0].Code != "FINDING" || ex.Observations[1].Name != "诊断意见" {
		t.Errorf("exam result: %+v", ex)
	}
	getJSON(t, base+"/results?after="+strconv.FormatInt(lab.Seq, 10)+"&limit=10", &res)
	if len(res.Results) != 1 || res.Results[0].PlacerOrderNo != p2 {
		t.Errorf("after %d: %+v", lab.Seq, res.Results)
	}
}

func TestModes(t *testing.T) {
	s := startSim(t, Config{ResultDelay: time.Hour})
	c := client(t, s)
	addr := s.MLLPAddr()
	base := s.HTTPURL()
	wantAck(t, send(t, c, pdq("P000001", "PI")), "AA")

	// Down: MLLP refused, /his/api 503, /control still answers.
	s.SetMode(Mode{Name: ModeDown})
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("MLLP still accepts connections while down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := c.Send(ctx, pdq("P000001", "PI"))
	cancel()
	if !errors.Is(err, mllp.ErrUnavailable) {
		t.Errorf("send while down: %v", err)
	}
	var e apiError
	if code := getJSON(t, base+"/his/api/patients?his_id=P000001", &e); code != 503 {
		t.Errorf("/his/api while down: %d", code)
	}
	var st struct {
		Mode modeJSON `json:"mode"`
	}
	if code := getJSON(t, base+"/control", &st); code != 200 || st.Mode.Mode != "down" {
		t.Errorf("/control while down: %d %+v", code, st)
	}

	// Up again through the control API, on the same address.
	if code := postJSON(t, base+"/control/mode", map[string]any{"mode": "up"}, &st); code != 200 || st.Mode.Mode != "up" {
		t.Fatalf("mode up: %d %+v", code, st)
	}
	if s.MLLPAddr() != addr {
		t.Errorf("address changed: %s, was %s", s.MLLPAddr(), addr)
	}
	wantAck(t, send(t, c, pdq("P000001", "PI")), "AA")

	// Slow: every answer waits.
	postJSON(t, base+"/control/mode", map[string]any{"mode": "slow", "delay_ms": 500}, &st)
	start := time.Now()
	wantAck(t, send(t, c, pdq("P000001", "PI")), "AA")
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("slow MLLP answer in %v", el)
	}
	start = time.Now()
	getJSON(t, base+"/his/api/patients?his_id=P000001", nil)
	if el := time.Since(start); el < 500*time.Millisecond {
		t.Errorf("slow HTTP answer in %v", el)
	}
	start = time.Now()
	getJSON(t, base+"/control", nil)
	if el := time.Since(start); el > 450*time.Millisecond {
		t.Errorf("/control slowed down: %v", el)
	}

	// Error: every message refused with the given code and text; queries still answered.
	if code := postJSON(t, base+"/control/mode", map[string]any{"mode": "error", "ack_code": "AE", "text": "数据库维护中"}, &st); code != 200 {
		t.Fatalf("mode error: %d", code)
	}
	id := newID("M")
	placer := newID("RX")
	ack := send(t, c, orderMessage("OMP", id, zhangSan, line{placer, "YP00001", ""}))
	if ack.Get("MSA-1") != "AE" || ack.Get("MSA-3") != "数据库维护中" {
		t.Errorf("error mode ACK: %q %q", ack.Get("MSA-1"), ack.Get("MSA-3"))
	}
	wantAck(t, send(t, c, pdq("P000001", "PI")), "AA")
	var ans apiError
	if code := postJSON(t, base+"/his/api/messages", map[string]any{"message_id": newID("H"), "event": "register_visit",
		"data": map[string]any{"patient": map[string]any{"his_id": "P000001"}, "visit_no": "X"}}, &ans); code != 422 || ans.Code != "AE" || ans.Message != "数据库维护中" {
		t.Errorf("error mode HTTP: %d %+v", code, ans)
	}
	s.SetMode(Mode{Name: ModeError, AckCode: "AR", Text: "拒收"})
	wantAck(t, send(t, c, orderMessage("OMP", newID("M"), zhangSan, line{newID("RX"), "YP00001", ""})), "AR")

	// Back up: the message refused in error mode is acted on when resent.
	s.SetMode(Mode{Name: ModeUp})
	wantAck(t, send(t, c, orderMessage("OMP", id, zhangSan, line{placer, "YP00001", ""})), "AA")
	if r := s.Received("OMP^O09"); len(r) != 3 || r[0].AckCode != "AE" || r[2].AckCode != "AA" || r[2].Duplicate {
		t.Errorf("received: %+v", r)
	}
	if code := postJSON(t, base+"/control/mode", map[string]any{"mode": "sideways"}, &ans); code != 400 {
		t.Errorf("bad mode: %d", code)
	}
	var list struct {
		Messages []Received `json:"messages"`
	}
	if code := getJSON(t, base+"/control/messages?type=OMP^O09", &list); code != 200 || len(list.Messages) != 3 || list.Messages[0].ControlID != id {
		t.Errorf("/control/messages: %d %+v", code, list)
	}
}

func TestResultsPushed(t *testing.T) {
	sink := newSink(t, "")
	s := startSim(t, Config{ResultsTo: sink.addr, ResultDelay: 150 * time.Millisecond})
	c := client(t, s)
	l1, l2, e1 := newID("L"), newID("L"), newID("E")
	ack := send(t, c, orderMessage("OML", newID("M"), zhangSan, line{l1, "JY0001", "血常规(五分类)"}, line{l2, "JY0002", "尿常规"}))
	wantAck(t, ack, "AA")
	wantAck(t, send(t, c, orderMessage("OMG", newID("M"), zhangSan, line{e1, "JC0020", "胸部CT平扫"})), "AA")
	// Pharmacy orders get no result.
	wantAck(t, send(t, c, orderMessage("OMP", newID("M"), zhangSan, line{newID("RX"), "YP00001", ""})), "AA")

	msgs := sink.wait(t, 3, 10*time.Second)
	byPlacer := map[string]*hl7.Message{}
	for _, m := range msgs {
		if typ, trigger, structure := m.Type(); typ != "ORU" || trigger != "R01" || structure != "ORU_R01" {
			t.Fatalf("pushed %s^%s^%s", typ, trigger, structure)
		}
		byPlacer[m.Get("ORC-2")] = m
	}
	cbc := byPlacer[l1]
	if cbc == nil {
		t.Fatal("no result for the blood count")
	}
	if cbc.Get("ORC-1") != "RE" || cbc.Get("ORC-3") != ack.Get("ORC(1)-3") || cbc.Get("ORC-5") != "CM" || cbc.Get("OBR-2") != l1 || cbc.Get("OBR-3") != ack.Get("ORC(1)-3") ||
		cbc.Get("OBR-4-1") != "JY0001" || cbc.Get("OBR-25") != "F" || cbc.Get("OBR-22") == "" || cbc.Get("PID-3(1)-1") != "P000001" || cbc.Get("PV1-19") == "" {
		t.Errorf("blood count ORU:\n%v", cbc)
	}
	obx := cbc.All("OBX")
	if len(obx) != 16 {
		t.Fatalf("%d OBX, want 16", len(obx))
	}
	flags := map[string]int{}
	for i, o := range obx {
		if o.Get("1") != strconv.Itoa(i+1) || o.Get("2") != "NM" || o.Get("11") != "F" || o.Get("14") == "" || o.Get("7") == "" {
			t.Errorf("OBX %d: %v", i+1, o.Fields)
		}
		v, err := strconv.ParseFloat(o.Get("5"), 64)
		lo, hi, _ := strings.Cut(o.Get("7"), "-")
		want := "N"
		if v > atof(hi) {
			want = "H"
		} else if v < atof(lo) {
			want = "L"
		}
		if err != nil || o.Get("8") != want {
			t.Errorf("OBX %d: value %q range %q flag %q, want %s", i+1, o.Get("5"), o.Get("7"), o.Get("8"), want)
		}
		flags[o.Get("8")]++
	}
	if wbc := obx[0]; wbc.Get("3-1") != "WBC" || wbc.Get("3-2") != "白细胞计数" || wbc.Get("6-1") != "10^9/L" || wbc.Get("7") != "3.50-9.50" {
		t.Errorf("WBC: %v", wbc.Fields)
	}
	urine := byPlacer[l2]
	if urine == nil || urine.Get("OBX(3)-2") != "ST" || urine.Get("OBX(3)-3-2") != "尿蛋白" {
		t.Errorf("urine ORU: %v", urine)
	}
	ct := byPlacer[e1]
	if ct == nil || len(ct.All("OBX")) != 2 || ct.Get("OBX(1)-2") != "TX" || ct.Get("OBX(1)-3-1") != "FINDING" || ct.Get("OBX(1)-3-2") != "检查所见" ||
		ct.Get("OBX(2)-3-1") != "IMPRESSION" || ct.Get("OBX(2)-3-2") != "诊断意见" || !strings.Contains(ct.Get("OBX(1)-5"), "肺") {
		t.Errorf("CT ORU: %v", ct)
	}
	eventually(t, 5*time.Second, "results marked sent", func() bool {
		var n int
		s.db.QueryRow(`SELECT count(*) FROM results WHERE push_state = 'sent'`).Scan(&n)
		return n == 3
	})
	var orderStatus string
	s.db.QueryRow(`SELECT status FROM orders WHERE placer_order_no = ?`, l1).Scan(&orderStatus)
	if orderStatus != "CM" {
		t.Errorf("order status %q", orderStatus)
	}

	// The values are fixed by the order.
	a := labObservations(l1, "JY0001", "", analytesOf(t, s, "JY0001"))
	b := labObservations(l1, "JY0001", "", analytesOf(t, s, "JY0001"))
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) || a[0].Value != obx[0].Get("5") {
		t.Error("lab values are not deterministic")
	}
	// Across many orders the flags are mostly N with some H and L.
	count := map[string]int{}
	for i := range 200 {
		for _, o := range labObservations("ORDER-"+strconv.Itoa(i), "JY0004", "", analytesOf(t, s, "JY0004")) {
			count[o.Flag]++
		}
	}
	if count["N"] < count["H"]+count["L"] || count["H"] == 0 || count["L"] == 0 {
		t.Errorf("flag spread %v", count)
	}
}

func analytesOf(t *testing.T, s *Sim, code string) []analyte {
	t.Helper()
	it, ok, err := s.item(context.Background(), code)
	if err != nil || !ok {
		t.Fatalf("item %s: %v", code, err)
	}
	return it.Panel
}

func TestCancelledOrderGetsNoResult(t *testing.T) {
	s := startSim(t, Config{ResultDelay: 300 * time.Millisecond})
	c := client(t, s)
	placer := newID("L")
	wantAck(t, send(t, c, orderMessage("OML", newID("M"), zhangSan, line{placer, "JY0001", ""})), "AA")
	cancel := orderMessage("OML", newID("M"), zhangSan, line{placer, "JY0001", ""})
	cancel.Set("ORC-1", "CA")
	ack := send(t, c, cancel)
	wantAck(t, ack, "AA")
	if ack.Get("ORC-1") != "CR" || ack.Get("ORC-5") != "CA" {
		t.Errorf("cancel ACK ORC: %q %q", ack.Get("ORC-1"), ack.Get("ORC-5"))
	}
	time.Sleep(600 * time.Millisecond)
	res, _ := s.results(context.Background(), 0, 10)
	if len(res) != 0 {
		t.Errorf("a cancelled order got a result: %+v", res)
	}
	unknown := orderMessage("OML", newID("M"), zhangSan, line{newID("L"), "JY0001", ""})
	unknown.Set("ORC-1", "CA")
	wantAck(t, send(t, c, unknown), "AE")
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	dead := freeAddr(t) // nothing listens here yet
	s1, err := Start(context.Background(), Config{DataDir: dir, ResultsTo: dead, ResultDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := &mllp.Client{Addr: s1.MLLPAddr()}
	sent := orderMessage("OML", newID("M"), zhangSan, line{newID("L"), "JY0005", "肾功能"})
	first := send(t, c, sent)
	wantAck(t, first, "AA")
	// A second order whose result is not due before the restart.
	late := newID("E")
	s1Late := orderMessage("OMG", newID("M"), zhangSan, line{late, "JC0060", ""})
	db := s1.db
	wantAck(t, send(t, c, s1Late), "AA")
	if _, err := db.Exec(`UPDATE orders SET result_due = ? WHERE placer_order_no = ?`, time.Now().Add(time.Second).UnixMilli(), late); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a result waiting to be pushed", func() bool {
		var n, attempts int
		db.QueryRow(`SELECT count(*), coalesce(max(attempts), 0) FROM results WHERE push_state = 'pending'`).Scan(&n, &attempts)
		return n == 1 && attempts >= 1
	})
	c.Close()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// The receiver comes up; the simulator starts again on the same data.
	sink := newSink(t, dead)
	s2 := startSim(t, Config{DataDir: dir, ResultsTo: sink.addr, ResultDelay: time.Hour})
	msgs := sink.wait(t, 2, 10*time.Second)
	if msgs[0].Get("ORC-2") != sent.Get("ORC-2") || msgs[1].Get("ORC-2") != late {
		t.Errorf("pushed after restart: %s, %s", msgs[0].Get("ORC-2"), msgs[1].Get("ORC-2"))
	}
	c2 := client(t, s2)
	again := send(t, c2, sent)
	a, _ := first.Encode()
	b, _ := again.Encode()
	if string(a) != string(b) {
		t.Errorf("resend after restart answered differently:\n%s\n%s", a, b)
	}
	r := s2.Received("")
	if len(r) != 3 || !r[2].Duplicate || r[0].ControlID != sent.ControlID() {
		t.Errorf("received after restart: %+v", r)
	}
	var patients int
	s2.db.QueryRow(`SELECT count(*) FROM patients`).Scan(&patients)
	if patients != 60 {
		t.Errorf("%d patients after restart (seeded twice?)", patients)
	}
}

func TestResultRefusedIsNotRetried(t *testing.T) {
	sink := newSink(t, "")
	sink.code = "AE"
	s := startSim(t, Config{ResultsTo: sink.addr, ResultDelay: 10 * time.Millisecond})
	c := client(t, s)
	wantAck(t, send(t, c, orderMessage("OML", newID("M"), zhangSan, line{newID("L"), "JY0008", ""})), "AA")
	sink.wait(t, 1, 5*time.Second)
	eventually(t, 5*time.Second, "the result marked rejected", func() bool {
		var n int
		s.db.QueryRow(`SELECT count(*) FROM results WHERE push_state = 'rejected'`).Scan(&n)
		return n == 1
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(sink.messages()); n != 1 {
		t.Errorf("refused result sent %d times", n)
	}
}
