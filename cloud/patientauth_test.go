package cloud_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/accounts"
	"ihos/billpay"
	"ihos/booking"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/his/hissim"
	"ihos/payments"
	"ihos/sms/smssim"
)

// patientRig is the booking-and-payment rig with the cloud's patient
// accounts wired to the SMS and identity-verification simulators; linking
// to the HIS (an RPC to the hospital's appliance) answers from the HIS
// simulator's demo patients.
type patientRig struct {
	*payBookRig
	sms *smssim.Sim
}

func newPatientRig(t *testing.T, dsn string) *patientRig {
	c := cloudtest.Start(t, cloudtest.Options{DSN: dsn, Pay: true, Patients: true, MaxIdleConnsPerHost: 256,
		AdjustPay: func(pc *cloud.PayChannelConfig) { pc.QueryAfter = 200 * time.Millisecond }})
	return &patientRig{payBookRig: payBookRigOf(c), sms: c.SMS}
}

// as calls the API with a patient session: "Bearer" (the mini-program's
// web-view) when csrf is "", else the H5 cookie with csrf as its token
// ("-" sends none). It decodes a success into out and returns the status
// and the error's message.
func (r *patientRig) as(token, csrf, method, path string, body, out any) (int, string) {
	r.t.Helper()
	auth := cloudtest.Bearer(token)
	switch csrf {
	case "":
	case "-":
		auth = cloudtest.PatientCookie(token, "")
	default:
		auth = cloudtest.PatientCookie(token, csrf)
	}
	return r.Call(method, path, body, out, auth)
}

// login signs phone in with the code the SMS simulator received.
func (r *patientRig) login(phone string) (token, csrf string) {
	r.t.Helper()
	return r.PatientLogin(phone)
}

// verified logs phone in and verifies the real name of demo patient p.
func (r *patientRig) verified(phone string, p hissim.DemoPatient) (token, csrf string, self accounts.Member) {
	r.t.Helper()
	return r.VerifiedPatient(phone, p)
}

const notFamily = "只能为本人或家庭成员办理"

// TestPatientSessions drives the booking and payment APIs with real patient
// sessions: a patient books and pays for themselves and a family member,
// never for another account's people, and never reaches the staff routes;
// the command-line token still acts for anyone.
func TestPatientSessions(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		r := newPatientRig(t, dsn)
		sched := r.schedule(tomorrow(), "08:00", "12:00", "text", 30)
		slot := func(n int) string { return fmt.Sprintf("%s:%d", sched, n) }
		testPatientSessions(t, r, slot)
	})
}

func testPatientSessions(t *testing.T, r *patientRig, slot func(int) string) {
	// Not verified yet: the account acts for nobody.
	fresh, _ := r.login("13900139000")
	if code, msg := r.as(fresh, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot(0), Condition: "高血压复诊，血压控制尚可"}, nil); code != 403 || msg != "请先完成实名认证" {
		t.Fatalf("unverified booking: %d %s", code, msg)
	}

	alice, aliceCSRF, self := r.verified("13800138000", hissim.DemoPatients[0])
	var parent accounts.Member
	if code, msg := r.as(alice, "", "POST", "/api/patient/members", map[string]any{"name": hissim.DemoPatients[1].Name,
		"id_number": hissim.DemoPatients[1].IDNumber, "relation": "parent"}, &parent); code != 201 {
		t.Fatalf("add parent: %d %s", code, msg)
	}
	bob, _, stranger := r.verified("13700137000", hissim.DemoPatients[2])

	// Booking for oneself: patient_id defaults to the holder.
	var mine booking.Booking
	if code, msg := r.as(alice, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot(0), Condition: "高血压复诊，血压控制尚可"}, &mine); code != 201 || mine.PatientID != self.PatientID {
		t.Fatalf("book for oneself: %d %s %+v", code, msg, mine)
	}
	// For a family member.
	var theirs booking.Booking
	if code, msg := r.as(alice, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot(1), PatientID: parent.PatientID, Condition: "冠心病复诊"}, &theirs); code != 201 || theirs.PatientID != parent.PatientID {
		t.Fatalf("book for a parent: %d %s %+v", code, msg, theirs)
	}
	// Never for someone else's.
	if code, msg := r.as(alice, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot(2), PatientID: stranger.PatientID, Condition: "复诊"}, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Fatalf("book for a stranger: %d %s", code, msg)
	}
	if code, msg := r.as(bob, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot(2), PatientID: "P1"}, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Fatalf("book for an unknown patient: %d %s", code, msg)
	}

	// Lists: one's own by default, a member's on request, nobody else's.
	var list struct{ Items []booking.Booking }
	if code, msg := r.as(alice, "", "GET", "/api/booking/bookings", nil, &list); code != 200 || len(list.Items) != 1 || list.Items[0].ID != mine.ID {
		t.Fatalf("own bookings: %d %s %+v", code, msg, list)
	}
	if code, msg := r.as(alice, "", "GET", "/api/booking/bookings?patient_id="+parent.PatientID, nil, &list); code != 200 || len(list.Items) != 1 || list.Items[0].ID != theirs.ID {
		t.Fatalf("parent's bookings: %d %s %+v", code, msg, list)
	}
	if code, msg := r.as(bob, "", "GET", "/api/booking/bookings?patient_id="+self.PatientID, nil, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Fatalf("another account's bookings: %d %s", code, msg)
	}
	if code, _ := r.as(bob, "", "GET", "/api/booking/bookings", nil, &list); code != 200 || len(list.Items) != 0 {
		t.Fatalf("bob's bookings: %d %+v", code, list)
	}
	// Someone else's booking by id does not exist for them.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/booking/bookings/" + mine.ID},
		{"POST", "/api/booking/bookings/" + mine.ID + "/pay"},
		{"POST", "/api/booking/bookings/" + mine.ID + "/cancel"},
	} {
		if code, msg := r.as(bob, "", c.method, c.path, nil, nil); code != 404 || msg != "预约不存在" {
			t.Errorf("bob %s %s: %d %s", c.method, c.path, code, msg)
		}
	}

	// Paying for oneself through the booking: the channel's notify books it.
	var pay payments.PayResult
	if code, msg := r.as(alice, "", "POST", "/api/booking/bookings/"+mine.ID+"/pay", map[string]string{"openid": "oAlice"}, &pay); code != 200 || pay.Payment == nil || pay.Payment.PatientID != self.PatientID {
		t.Fatalf("pay own booking: %d %s %+v", code, msg, pay)
	}
	r.PayAt(pay.Payment.OutTradeNo)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var b booking.Booking
		if code, msg := r.as(alice, "", "GET", "/api/booking/bookings/"+mine.ID, nil, &b); code != 200 {
			t.Fatalf("get own booking: %d %s", code, msg)
		}
		if b.Status == booking.StatusBooked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("own booking is %s after paying", b.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var p ihos.Payment
	if code, msg := r.as(alice, "", "GET", "/api/pay/orders/"+pay.Payment.ID+"?refresh=1", nil, &p); code != 200 || p.Status != ihos.PaymentPaid {
		t.Fatalf("own payment: %d %s %+v", code, msg, p)
	}
	// The H5 page's cookie (the same session) pays for the parent; a write
	// without the CSRF token is refused.
	cookie, csrf := alice, aliceCSRF
	if code, msg := r.as(cookie, "-", "POST", "/api/booking/bookings/"+theirs.ID+"/pay", nil, nil); code != 403 || !strings.Contains(msg, "CSRF") {
		t.Fatalf("cookie without CSRF: %d %s", code, msg)
	}
	var parentPay payments.PayResult
	if code, msg := r.as(cookie, csrf, "POST", "/api/booking/bookings/"+theirs.ID+"/pay", nil, &parentPay); code != 200 || parentPay.Payment == nil || parentPay.Payment.PatientID != parent.PatientID {
		t.Fatalf("pay parent's booking: %d %s %+v", code, msg, parentPay)
	}

	// Orders of the payment API: for a member, at the account's hospital.
	// A booking's fee is paid through the booking, never as a payment of
	// the patient's own amount.
	cheap := cloud.OrderRequest{BusinessType: ihos.PayConsultation, BusinessID: theirs.ID, PatientID: parent.PatientID, Amount: 1}
	if code, msg := r.as(alice, "", "POST", "/api/pay/orders", cheap, nil); code != 403 || msg != "该费用请在预约详情或门诊缴费中支付" {
		t.Fatalf("own-amount booking payment: %d %s", code, msg)
	}
	order := cloud.OrderRequest{BusinessType: ihos.PayClinicOrder, BusinessID: "C-patient-1", PatientID: parent.PatientID, Amount: 1500, OpenID: "oAlice"}
	var res payments.PayResult
	if code, msg := r.as(alice, "", "POST", "/api/pay/orders", order, &res); code != 200 || res.Payment == nil || res.Payment.HospitalID != testHosp || res.Payment.PatientID != parent.PatientID {
		t.Fatalf("order for a parent: %d %s %+v", code, msg, res)
	}
	other := order
	other.BusinessID, other.PatientID = "C-patient-2", stranger.PatientID
	if code, msg := r.as(alice, "", "POST", "/api/pay/orders", other, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Fatalf("order for a stranger: %d %s", code, msg)
	}
	other.PatientID, other.HospitalID = "", "h2"
	if code, msg := r.as(alice, "", "POST", "/api/pay/orders", other, nil); code != 403 || msg != "只能在您注册的医院办理" {
		t.Fatalf("order at another hospital: %d %s", code, msg)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/pay/orders/" + res.Payment.ID},
		{"GET", "/api/pay/orders/" + res.Payment.ID + "?refresh=1"},
		{"POST", "/api/pay/orders/" + res.Payment.ID + "/cancel"},
	} {
		if code, msg := r.as(bob, "", c.method, c.path, nil, nil); code != 404 || msg != "支付订单不存在" {
			t.Errorf("bob %s %s: %d %s", c.method, c.path, code, msg)
		}
	}
	if code, msg := r.as(alice, "", "POST", "/api/pay/orders/"+res.Payment.ID+"/cancel", map[string]string{"reason": "不需要了"}, &p); code != 200 || p.Status != ihos.PaymentCancelled {
		t.Fatalf("cancel own order: %d %s %+v", code, msg, p)
	}

	// Staff routes stay staff-only for a patient session.
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/admin/payments"},
		{"GET", "/api/admin/payments/" + pay.Payment.ID},
		{"POST", "/api/admin/payments/" + pay.Payment.ID + "/refunds"},
		{"GET", "/api/admin/insurance/statement?hospital_id=" + testHosp},
	} {
		if code, _ := r.as(alice, "", c.method, c.path, map[string]any{"amount": 1, "reason": "x"}, nil); code != 401 && code != 403 {
			t.Errorf("patient %s %s: %d", c.method, c.path, code)
		}
	}
	// No session at all is told to log in; the command-line token (staff)
	// still reads anyone's booking.
	if code, _ := r.as("", "", "GET", "/api/pay/orders/"+res.Payment.ID, nil, nil); code != 401 {
		t.Errorf("anonymous order: %d", code)
	}
	if code, msg := r.as("not-a-session", "", "GET", "/api/pay/orders/"+res.Payment.ID, nil, nil); code != 401 || msg != accounts.ErrNoSession.Message {
		t.Errorf("stale session: %d %s", code, msg)
	}
	if b := r.get(mine.ID); b.Status != booking.StatusBooked {
		t.Errorf("staff read: %+v", b)
	}

	// Bills and the insurance quote: only a HIS record linked to a member.
	q := url.Values{"his_patient_id": {hissim.DemoPatients[0].HISID}}
	if code, msg := r.as(alice, "", "GET", "/api/pay/bills?"+q.Encode(), nil, nil); code != 403 || !strings.HasPrefix(msg, "只能查询本人或家庭成员已关联") {
		t.Fatalf("bills before linking: %d %s", code, msg)
	}
	var linked accounts.Member
	if code, msg := r.as(alice, "", "POST", "/api/patient/members/"+self.ID+"/link-his", nil, &linked); code != 200 || linked.HISPatientID != hissim.DemoPatients[0].HISID {
		t.Fatalf("link: %d %s %+v", code, msg, linked)
	}
	// Past the check, the fees are read from the hospital's HIS through
	// its appliance, which this cloud has none of.
	for _, path := range []string{"/api/pay/bills?" + q.Encode(), "/api/pay/bills"} {
		if code, msg := r.as(alice, "", "GET", path, nil, nil); code != 503 || !strings.HasPrefix(msg, "医院系统暂时无法连接") {
			t.Errorf("own bills %s: %d %s", path, code, msg)
		}
	}
	for _, his := range []string{hissim.DemoPatients[1].HISID, hissim.DemoPatients[2].HISID} {
		q := url.Values{"his_patient_id": {his}}
		if code, msg := r.as(alice, "", "GET", "/api/pay/bills?"+q.Encode(), nil, nil); code != 403 {
			t.Errorf("bills of %s: %d %s", his, code, msg)
		}
		if code, msg := r.as(alice, "", "POST", "/api/pay/bills", billpay.CreateRequest{HISPatientID: his, FeeIDs: []string{"F1"}}, nil); code != 403 {
			t.Errorf("paying bills of %s: %d %s", his, code, msg)
		}
	}
	if code, msg := r.as(alice, "", "POST", "/api/pay/bills", billpay.CreateRequest{HISPatientID: hissim.DemoPatients[0].HISID, PatientID: stranger.PatientID, FeeIDs: []string{"F1"}}, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Errorf("own record for a stranger: %d %s", code, msg)
	}
	if code, msg := r.as(bob, "", "POST", "/api/pay/insurance/quote", cloud.QuoteRequest{PatientID: self.PatientID, Amount: 100}, nil); code != 403 || !strings.HasPrefix(msg, notFamily) {
		t.Errorf("quote for another account: %d %s", code, msg)
	}
	if code, msg := r.as(alice, "", "POST", "/api/pay/insurance/quote", cloud.QuoteRequest{PatientID: parent.PatientID, HISPatientID: hissim.DemoPatients[0].HISID, Amount: 100}, nil); code != 403 {
		t.Errorf("quote for a parent with one's own record: %d %s", code, msg)
	}
	if code, msg := r.as(alice, "", "POST", "/api/pay/insurance/quote", cloud.QuoteRequest{Amount: 100}, nil); code != 503 {
		t.Errorf("own quote: %d %s", code, msg)
	}
}
