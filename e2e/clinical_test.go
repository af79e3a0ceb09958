package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/booking"
	"ihos/cloud"
	"ihos/einvoice/einvsim"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/payments"
	"ihos/prescriptions"
	"ihos/visits"
)

// apiError is an error answer.
type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

// call sends a JSON request: with the command-line token of dataDir (and
// acting as staff member acting, if set), or with a patient's bearer token.
// A 2xx answer is decoded into out, an error answer returned.
func call(t *testing.T, method, url, dataDir, acting, bearer string, body, out any) (int, apiError) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if dataDir != "" {
		token, err := os.ReadFile(dataDir + "/" + node.CLITokenFile)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(node.CLITokenHeader, strings.TrimSpace(string(token)))
	}
	if acting != "" {
		req.Header.Set(cloud.ActingStaffHeader, acting)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	if resp.StatusCode >= 300 {
		json.Unmarshal(b, &e)
	} else if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, url, b, err)
		}
	}
	return resp.StatusCode, e
}

func wantRefusal(t *testing.T, what string, code int, e apiError, status int, msg string) {
	t.Helper()
	text := e.Message
	for _, f := range e.Fields {
		text += " " + f
	}
	if code != status || !strings.Contains(text, msg) {
		t.Fatalf("%s: %d %q, want %d with %q", what, code, text, status, msg)
	}
}

// The online follow-up visit through both services, every link a real
// socket: a patient (SMS login, real name, HIS link) books the demo doctor
// with their condition — refused for a relative never diagnosed in that
// department, and with a clear 503 while the HIS is down — pays, and the
// visit opens with the condition as their first message; they write while
// waiting. The doctor prescribes and signs with the e-signature of the
// first demo start (PIN from the credentials file) over the sync RPC; the
// signature verifies through the appliance's signing API. The patient's
// payment is refused until the pharmacist approves, then paid at the
// channel simulator; the prescription goes to the HIS simulator exactly
// once with its charge posted as paid, and placing it again with the same
// key places nothing; its
// e-invoice is issued by the appliance (finance platform simulator).
func TestOnlineFollowUpJourney(t *testing.T) {
	for _, c := range []struct {
		engine string
		dsn    func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"mysql", func(t *testing.T) string { return sqldbtest.MySQLDSN(t) }},
	} {
		t.Run(c.engine, func(t *testing.T) {
			const einvKey = "e2e-einvoice-signing-key"
			einv, err := einvsim.Start(context.Background(), einvsim.Config{Key: einvKey, Payee: "示例市第一人民医院"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { einv.Close() })
			var credsPath string
			s := startPayStack(t, c.dsn(t), func(cfg *appliance.Config) {
				credsPath = cfg.Credentials
				cfg.EInvoice = appliance.EInvoiceConfig{URL: einv.ServiceURL(), AppID: einv.AppID(), Key: einvKey}
			})
			testFollowUpJourney(t, s, credsPath)
		})
	}
}

func testFollowUpJourney(t *testing.T, s *payStack, credsPath string) {
	ctx := context.Background()
	cloudDir := s.cloud.Node.Config.DataDir
	var creds struct {
		Doctor struct {
			PIN string `json:"pin"`
		} `json:"doctor"`
		SVS struct {
			Token string `json:"token"`
		} `json:"svs"`
	}
	raw, err := os.ReadFile(credsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &creds); err != nil || len(creds.Doctor.PIN) < 6 || creds.SVS.Token == "" {
		t.Fatalf("credentials %s: %v", raw, err)
	}
	var doctor, pharmacist string
	s.appliance.Node.DB.QueryRow(`SELECT id FROM staff WHERE job_no = 'D1001'`).Scan(&doctor)
	s.appliance.Node.DB.QueryRow(`SELECT id FROM staff WHERE job_no = 'P1031'`).Scan(&pharmacist)

	// The hospital offers the doctor online: fees, a release rule and a
	// sitting tomorrow, unless the demo already has them.
	sys := ihos.WithActor(ctx, ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})
	create := func(resource string, rec admin.Record) {
		t.Helper()
		res, err := s.appliance.Store.Resource(resource)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.appliance.Store.Create(sys, res, rec); err != nil {
			t.Fatalf("create %s: %v", resource, err)
		}
	}
	count := func(q string, args ...any) int {
		var n int
		s.appliance.Node.DB.QueryRow(q, args...).Scan(&n)
		return n
	}
	if count(`SELECT COUNT(*) FROM consultation_settings WHERE (staff_id = ? OR title = (SELECT title FROM staff WHERE id = ?)) AND text_enabled = 1 AND deleted_at IS NULL`, doctor, doctor) == 0 {
		create("consultation_settings", admin.Record{"staff_id": doctor, "text_enabled": true, "text_fee": int64(3000), "text_minutes": int64(30)})
	}
	if count(`SELECT COUNT(*) FROM release_rules WHERE deleted_at IS NULL`) == 0 {
		create("release_rules", admin.Record{"days_ahead": int64(3), "release_time": "00:00", "quota": int64(5)})
	}
	day := time.Now().In(ihos.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly)
	if count(`SELECT COUNT(*) FROM online_schedules WHERE staff_id = ? AND visit_date = ? AND visit_type = 'text' AND deleted_at IS NULL`, doctor, day) == 0 {
		create("online_schedules", admin.Record{"staff_id": doctor, "visit_date": day, "start_time": "09:00", "end_time": "12:00", "visit_type": "text", "slot_minutes": int64(20)})
	}
	var refreshed map[string]any
	if code := s.callAppliance(t, "POST", "/api/his/catalog/refresh", nil, &refreshed); code != 200 {
		t.Fatalf("catalogue refresh: %d %v", code, refreshed)
	}
	var slots struct{ Items []booking.Slot }
	var free []booking.Slot
	eventually(t, 20*time.Second, "the doctor's slots and the catalogue in the cloud", func() bool {
		code, _ := call(t, "GET", s.cloudURL+"/api/public/doctors/"+doctor+"/slots?date="+day, "", "", "", nil, &slots)
		free = free[:0]
		for _, sl := range slots.Items {
			if sl.Status == booking.SlotAvailable && sl.VisitType == "text" && sl.Remaining > 0 {
				free = append(free, sl)
			}
		}
		var drugs int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM his_catalog WHERE hospital_id = 'h1' AND kind = 'DRUG' AND enabled = 1`).Scan(&drugs)
		return code == 200 && len(free) >= 2 && drugs > 0
	})

	// The patient: SMS login, real name (张三, P000001, diagnosed with
	// hypertension in cardiology), a parent (P000002, diagnosed in
	// endocrinology only), both linked to the HIS.
	smsSim := patientSims(t, s.cloud)
	phone := "13800138000"
	if code, e := call(t, "POST", s.cloudURL+"/api/patient/sms-code", "", "", "", map[string]string{"phone": phone}, nil); code != http.StatusNoContent {
		t.Fatalf("sms-code: %d %+v", code, e)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if code, e := call(t, "POST", s.cloudURL+"/api/patient/login", "", "", "", map[string]string{"hospital_id": "h1", "phone": phone, "code": smsSim.LastCode(phone)}, &sess); code != 200 {
		t.Fatalf("login: %d %+v", code, e)
	}
	tok := sess.Token
	type member struct {
		ID        string `json:"id"`
		PatientID string `json:"patient_id"`
	}
	var self, parent member
	holder, par := hissim.DemoPatients[0], hissim.DemoPatients[1]
	if code, e := call(t, "POST", s.cloudURL+"/api/patient/realname", "", "", tok, map[string]string{"name": holder.Name, "id_number": holder.IDNumber}, &self); code != 200 {
		t.Fatalf("real name: %d %+v", code, e)
	}
	if code, e := call(t, "POST", s.cloudURL+"/api/patient/members", "", "", tok, map[string]string{"name": par.Name, "id_number": par.IDNumber, "relation": "parent"}, &parent); code != 201 {
		t.Fatalf("parent: %d %+v", code, e)
	}
	for _, m := range []member{self, parent} {
		eventually(t, 10*time.Second, "the HIS link", func() bool {
			code, _ := call(t, "POST", s.cloudURL+"/api/patient/members/"+m.ID+"/link-his", "", "", tok, nil, nil)
			return code == 200
		})
	}
	eventually(t, 10*time.Second, "the links in the cloud", func() bool {
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM patient_links WHERE patient_id IN (?, ?) AND status = 'linked'`, self.PatientID, parent.PatientID).Scan(&n)
		return n == 2
	})

	// Booking: the condition is required from a patient; the parent was
	// never diagnosed in cardiology; the HIS down is a 503, not a guess.
	bookURL := s.cloudURL + "/api/booking/bookings"
	code, e := call(t, "POST", bookURL, "", "", tok, map[string]any{"slot_id": free[0].ID, "patient_id": self.PatientID}, nil)
	wantRefusal(t, "no condition", code, e, 400, "请填写病情描述")
	code, e = call(t, "POST", bookURL, "", "", tok, map[string]any{"slot_id": free[0].ID, "patient_id": parent.PatientID, "condition": "血糖偏高"}, nil)
	wantRefusal(t, "never diagnosed in cardiology", code, e, 403, "互联网医院仅提供复诊服务：近 180 天内没有在本院心血管内科线下就诊并确诊的记录")
	s.his.SetMode(hissim.Mode{Name: hissim.ModeDown})
	code, e = call(t, "POST", bookURL, "", "", tok, map[string]any{"slot_id": free[0].ID, "patient_id": self.PatientID, "condition": "头晕"}, nil)
	wantRefusal(t, "the HIS down", code, e, 503, "医院系统暂时无法连接，无法核实您的线下就诊记录")
	s.his.SetMode(hissim.Mode{Name: hissim.ModeUp})
	condition, past := "近一周血压 150/95，偶有头晕", "高血压 3 年，服用硝苯地平控释片"
	var b booking.Booking
	eventually(t, 10*time.Second, "booking once the HIS is back", func() bool {
		code, _ := call(t, "POST", bookURL, "", "", tok, map[string]any{"slot_id": free[0].ID, "patient_id": self.PatientID, "condition": condition, "past_history": past}, &b)
		return code == 201
	})
	var got booking.Booking
	if code, e := call(t, "GET", bookURL+"/"+b.ID, "", "", tok, nil, &got); code != 200 || got.Condition != condition || got.PastHistory != past || got.AccountID == "" {
		t.Fatalf("booking as read: %d %+v %+v", code, e, got)
	}
	var res payments.PayResult
	if code, e := call(t, "POST", bookURL+"/"+b.ID+"/pay", "", "", tok, map[string]any{"openid": "oZhangSan"}, &res); code != 200 || res.Payment == nil {
		t.Fatalf("pay booking: %d %+v", code, e)
	}
	if _, err := s.pay.Pay("", res.Payment.OutTradeNo, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the booking paid and its visit open", func() bool {
		code, _ := call(t, "GET", bookURL+"/"+b.ID, "", "", tok, nil, &got)
		return code == 200 && got.Status == booking.StatusBooked && got.VisitID != ""
	})
	vid := got.VisitID
	// The patient writes while waiting; the condition is their first message.
	if code, e := call(t, "POST", s.cloudURL+"/api/visits/"+vid+"/messages", "", "", tok, map[string]string{"kind": "text", "body": "今天早上血压 148/92"}, nil); code != 201 && code != 200 {
		t.Fatalf("a message while waiting: %d %+v", code, e)
	}
	var msgs struct{ Messages []visits.Message }
	if code, e := call(t, "GET", s.cloudURL+"/api/visits/"+vid+"/messages", "", "", tok, nil, &msgs); code != 200 {
		t.Fatalf("messages: %d %+v", code, e)
	}
	var patientMsgs []string
	for _, m := range msgs.Messages {
		if m.SenderRole == visits.RolePatient {
			patientMsgs = append(patientMsgs, m.Body)
		}
	}
	if len(patientMsgs) != 2 || patientMsgs[0] != "病情描述："+condition+"\n既往史："+past {
		t.Fatalf("patient messages %q", patientMsgs)
	}

	// The doctor accepts and prescribes; signing goes to the appliance.
	if _, err := s.cloud.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: doctor}, vid); err != nil {
		t.Fatal(err)
	}
	var drug string
	s.cloud.Node.DB.QueryRow(`SELECT code FROM his_catalog WHERE hospital_id = 'h1' AND kind = 'DRUG' AND enabled = 1 AND flags = '' ORDER BY code LIMIT 1`).Scan(&drug)
	rx := s.cloudURL + "/api/prescriptions"
	var p prescriptions.Prescription
	if code, e := call(t, "POST", rx, cloudDir, doctor, "", map[string]any{"visit_id": vid, "diagnosis": "原发性高血压（I10）",
		"items": []map[string]any{{"code": drug, "quantity": 2, "dose": "30", "dose_unit": "mg", "frequency": "qd", "route": "口服", "days": 28}}}, &p); code != 201 {
		t.Fatalf("create: %d %+v", code, e)
	}
	code, e = call(t, "POST", rx+"/"+p.ID+"/sign", cloudDir, doctor, "", map[string]string{"pin": "00000000"}, nil)
	wantRefusal(t, "a wrong PIN", code, e, 403, "签名密码错误")
	if code, e := call(t, "POST", rx+"/"+p.ID+"/sign", cloudDir, doctor, "", map[string]string{"pin": creds.Doctor.PIN}, &p); code != 200 || p.Status != prescriptions.StatusSigned {
		t.Fatalf("sign: %d %+v", code, e)
	}
	// The signature verifies through the appliance's signing API.
	var ver struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
		Signer struct {
			Subject string `json:"subject"`
		} `json:"signer"`
	}
	verify := func(doc string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.appURL+"/api/svs/verify-message", strings.NewReader(`{"p7":"`+base64.StdEncoding.EncodeToString(p.Signature)+
			`","data":"`+base64.StdEncoding.EncodeToString([]byte(doc))+`","level":1}`))
		req.Header.Set("Authorization", "Bearer "+creds.SVS.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		ver.Valid, ver.Reason = false, ""
		if err := json.NewDecoder(resp.Body).Decode(&ver); err != nil || resp.StatusCode != 200 {
			t.Fatalf("verify-message: %d %v", resp.StatusCode, err)
		}
	}
	verify(p.SignedDoc)
	var doctorName string
	s.appliance.Node.DB.QueryRow(`SELECT name FROM staff WHERE id = ?`, doctor).Scan(&doctorName)
	if !ver.Valid || !strings.Contains(ver.Signer.Subject, doctorName) {
		t.Fatalf("the signature through /api/svs/verify-message: %+v (doctor %s)", ver, doctorName)
	}
	verify(strings.Replace(p.SignedDoc, `"quantity":2`, `"quantity":20`, 1))
	if ver.Valid {
		t.Fatal("a changed prescription verifies")
	}

	// Paying: refused until the pharmacist approves; the amount is the
	// prescription's.
	if code, e := call(t, "POST", rx+"/"+p.ID+"/submit", cloudDir, doctor, "", nil, &p); code != 200 {
		t.Fatalf("submit: %d %+v", code, e)
	}
	code, e = call(t, "POST", rx+"/"+p.ID+"/pay", "", "", tok, map[string]any{"openid": "oZhangSan"}, nil)
	wantRefusal(t, "paying before approval", code, e, 409, "处方尚未经药师审核通过，不能支付")
	if code, e := call(t, "POST", rx+"/"+p.ID+"/approve", cloudDir, pharmacist, "", nil, &p); code != 200 || p.Status != prescriptions.StatusApproved {
		t.Fatalf("approve: %d %+v", code, e)
	}
	if code, e := call(t, "POST", rx+"/"+p.ID+"/pay", "", "", tok, map[string]any{"openid": "oZhangSan", "amount": 1}, &res); code != 200 ||
		res.Payment == nil || res.Payment.Total != p.TotalFen || res.Payment.BusinessType != ihos.PayPrescription {
		t.Fatalf("pay prescription: %d %+v %+v", code, e, res.Payment)
	}
	if _, err := s.pay.Pay("", res.Payment.OutTradeNo, ""); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 20*time.Second, "the prescription sent to the HIS", func() bool {
		code, _ := call(t, "GET", rx+"/"+p.ID, "", "", tok, nil, &p)
		return code == 200 && p.Status == prescriptions.StatusSentToHIS
	})
	t.Logf("paid → sent to the HIS in %v", took)
	placer := his.KeyedOrderNo(p.ID, 0)
	if len(p.HISOrders) != 1 || p.HISOrders[0] != placer || p.PaymentID != res.Payment.ID {
		t.Fatalf("sent %+v", p)
	}
	eventually(t, 20*time.Second, "the pharmacy order at the HIS simulator", func() bool {
		return len(s.his.Received("OMP^O09")) == 1
	})
	// Placing it again with the same key (a retry after a lost answer)
	// returns the same order and sends nothing new.
	req := his.OrderRequest{Kind: ihos.CatalogDrug, Key: p.ID, Patient: ihos.HISPatient{HISID: holder.HISID},
		Items: []ihos.HISOrderLine{{Code: drug, Quantity: "2"}}}
	var again his.PlacedOrders
	if err := s.cloud.Link.Call(ctx, "h1", his.RPCPlaceOrder, req, &again); err != nil || len(again.Orders) != 1 || again.Orders[0].ID != placer {
		t.Fatalf("placing again: %+v %v", again, err)
	}
	time.Sleep(500 * time.Millisecond)
	got2 := s.his.Received("OMP^O09")
	if len(got2) != 1 || got2[0].PatientHISID != holder.HISID || len(got2[0].Placer) != 1 || got2[0].Placer[0] != placer {
		t.Fatalf("the HIS received %+v", got2)
	}
	// The charge, paid online, is posted to the HIS once too.
	eventually(t, 20*time.Second, "the charge posted to the HIS", func() bool { return len(s.his.Received("DFT^P03")) >= 1 })
	if got := s.his.Received("DFT^P03"); len(got) != 1 || got[0].PatientHISID != holder.HISID || got[0].AckCode != "AA" {
		t.Fatalf("fee postings at the HIS: %+v", got)
	}
	if n := count(`SELECT COUNT(*) FROM his_orders WHERE id = ?`, placer); n != 1 {
		t.Fatalf("%d order rows on the appliance", n)
	}
	// The paid prescription gets its e-invoice like any paid order, and the
	// patient's phone sees it (the invoice replicates to the cloud).
	eventually(t, 30*time.Second, "the prescription's e-invoice in the cloud", func() bool {
		var n int
		s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM invoices WHERE payment_id = ? AND business_type = ? AND status = 'issued' AND total = ?`,
			res.Payment.ID, ihos.PayPrescription, p.TotalFen).Scan(&n)
		return n == 1
	})
}
