package cloud_test

import (
	"context"
	"fmt"
	"net/url"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/internal/auth"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel/paysim"
	"ihos/payments"
	"ihos/visits"
)

// bookRig is a cloud serving over a real socket, with a hospital's
// replicated master data written into its database as sync would.
type bookRig struct {
	parts
	rt string // the release rule's time of day
}

func newBookRig(t testing.TB, dsn string) *bookRig {
	t.Helper()
	return &bookRig{parts: partsOf(cloudtest.Start(t, cloudtest.Options{DSN: dsn, MaxIdleConnsPerHost: 512, Timeout: time.Minute}))}
}

func (r *bookRig) exec(q string, args ...any) {
	r.t.Helper()
	r.Exec(q, args...)
}

// seed writes department 内科 with doctor doc1 (主任医师, text 20 元 and
// voice 30 元 by title), and a release rule that released tomorrow's slots
// this minute, one patient each. 内科 is a pilot department without the
// follow-up-only rule: no hospital is connected to answer the HIS check
// (TestFollowUpOnlyRule checks the rule with one).
func (r *bookRig) seed() {
	r.Department(cloudtest.Department{ID: "d1", Code: "NK", Name: "内科", NewPatients: true})
	r.Staff(cloudtest.Staff{ID: "doc1", Department: "d1", JobNo: "J001", Name: "张三", Kind: ihos.StaffDoctor, Title: "主任医师", Specialty: "高血压", Online: true})
	r.Fees(cloudtest.Fees{Title: "主任医师", Text: 2000, Voice: 3000})
	r.rt = time.Now().In(ihos.Shanghai).Format("15:04")
	r.ReleaseRule(1, r.rt, 1)
}

func (r *bookRig) schedule(date, start, end, visitType string, slotMinutes int) string {
	return r.Schedule(cloudtest.Schedule{Staff: "doc1", Date: date, Start: start, End: end, Type: visitType, SlotMinutes: slotMinutes})
}

// do calls the API (with the command-line token unless anonymous) and
// decodes the answer into out; it returns the status and the error body's
// message. It never fails the test: goroutines call it.
func (r *bookRig) do(method, path string, body, out any, anonymous bool) (int, string) {
	if anonymous {
		return r.Try(method, path, body, out)
	}
	return r.Try(method, path, body, out, r.CLI())
}

func tomorrow() string { return cloudtest.Tomorrow() }

// TestBookingAPI drives the public directory and the booking rules through
// the cloud's HTTP API: each refusal is a 4xx with its Chinese message.
func TestBookingAPI(t *testing.T) {
	r := newBookRig(t, "")
	r.seed()
	day := tomorrow()
	text := r.schedule(day, "08:00", "09:00", "text", 30)
	video := r.schedule(day, "10:00", "11:00", "video", 30)
	later := r.schedule(time.Now().In(ihos.Shanghai).AddDate(0, 0, 5).Format(time.DateOnly), "08:00", "09:00", "text", 30)

	var page booking.DoctorPage
	q := url.Values{"department": {"d1"}, "title": {"主任医师"}, "q": {"高血压"}}
	if code, msg := r.do("GET", "/api/public/doctors?"+q.Encode(), nil, &page, true); code != 200 || page.Total != 1 {
		t.Fatalf("directory: %d %s %+v", code, msg, page)
	}
	d := page.Items[0]
	if d.Name != "张三" || d.DepartmentName != "内科" || len(d.Fees) != 2 || len(d.NextSlots) != 2 || d.NextSlots[0].ID != text+":0" {
		t.Fatalf("doctor %+v", d)
	}
	if code, _ := r.do("GET", "/api/public/doctors?q=骨科", nil, &page, true); code != 200 || page.Total != 0 {
		t.Fatalf("no match: %d %+v", code, page)
	}
	var home booking.Doctor
	if code, msg := r.do("GET", "/api/public/doctors/doc1", nil, &home, true); code != 200 || home.Specialty != "高血压" {
		t.Fatalf("homepage: %d %s %+v", code, msg, home)
	}
	if code, msg := r.do("GET", "/api/public/doctors/nobody", nil, nil, true); code != 404 || msg != "该医生暂未开通互联网诊疗" {
		t.Fatalf("unknown doctor: %d %s", code, msg)
	}
	var slots struct{ Items []booking.Slot }
	if code, msg := r.do("GET", "/api/public/doctors/doc1/slots?date="+day, nil, &slots, true); code != 200 || len(slots.Items) != 4 {
		t.Fatalf("slots: %d %s %+v", code, msg, slots)
	}

	book := func(slotID, patient, visitType string) (int, string, *booking.Booking) {
		var b booking.Booking
		code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: slotID, PatientID: patient, VisitType: visitType}, &b, false)
		return code, msg, &b
	}
	if code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: text + ":0", PatientID: "P1"}, nil, true); code != 401 {
		t.Fatalf("anonymous booking: %d %s", code, msg)
	}
	code, msg, b := book(text+":0", "P1", "text")
	if code != 201 || b.Status != booking.StatusAwaitingPayment || b.Fee != 2000 || b.FeeYuan != "20.00" {
		t.Fatalf("book: %d %s %+v", code, msg, b)
	}
	for _, c := range []struct {
		slot, patient, visitType string
		code                     int
		msg                      string
	}{
		{text + ":0", "P1", "", 409, "您已预约该时段，请勿重复预约"},
		{text + ":0", "P2", "", 409, "该时段已约满"},
		{text + ":2", "P2", "", 400, "该医生在此时间没有出诊安排"},
		{video + ":0", "P2", "", 409, "该医生未开通视频问诊"},
		{text + ":1", "P2", "voice", 400, "该时段为图文问诊，不提供语音问诊"},
		{later + ":0", "P2", "", 409, fmt.Sprintf("尚未放号，%s %s 开放预约", monthDay(time.Now().In(ihos.Shanghai).AddDate(0, 0, 4)), r.rt)},
	} {
		if code, msg, _ := book(c.slot, c.patient, c.visitType); code != c.code || msg != c.msg {
			t.Errorf("%s %s: %d %q, want %d %q", c.slot, c.patient, code, msg, c.code, c.msg)
		}
	}
	r.exec(`UPDATE online_schedules SET enabled = 0 WHERE id = ?`, text)
	if code, msg, _ := book(text+":1", "P2", ""); code != 409 || msg != "该排班已停诊，暂不能预约" {
		t.Errorf("disabled schedule: %d %q", code, msg)
	}
	r.exec(`UPDATE online_schedules SET enabled = 1 WHERE id = ?`, text)

	var cancelled booking.Booking
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/cancel", map[string]string{"reason": "时间冲突"}, &cancelled, false); code != 200 ||
		cancelled.Status != booking.StatusCancelled || cancelled.CancelReason != "时间冲突" {
		t.Fatalf("cancel: %d %s %+v", code, msg, cancelled)
	}
	if code, msg, _ := book(text+":0", "P2", ""); code != 201 {
		t.Fatalf("the returned unit: %d %s", code, msg)
	}
	var list struct{ Items []booking.Booking }
	if code, msg := r.do("GET", "/api/booking/bookings?patient_id=P1", nil, &list, false); code != 200 || len(list.Items) != 1 || list.Items[0].Status != booking.StatusCancelled {
		t.Fatalf("P1's bookings: %d %s %+v", code, msg, list)
	}
}

func monthDay(t time.Time) string { return fmt.Sprintf("%d 月 %d 日", t.Month(), t.Day()) }

// TestSlotRace is the acceptance race: 2,000 patients book 100 slots the
// moment they are released, all at once, through the HTTP API. Exactly 100
// bookings are made, every other request is told "该时段已约满" with a 409,
// and nothing fails, on SQLite and on MariaDB.
func TestSlotRace(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testSlotRace(t, "") })
	t.Run("mysql", func(t *testing.T) { testSlotRace(t, sqldbtest.MySQLDSN(t)) })
}

func testSlotRace(t *testing.T, dsn string) {
	const patients, slotCount = 2000, 100
	r := newBookRig(t, dsn)
	r.seed()
	sched := r.schedule(tomorrow(), "08:00", "16:20", "text", 5) // 100 slots
	var (
		wg            stdsync.WaitGroup
		mu            stdsync.Mutex
		booked, full  int
		others        []string
		start         = make(chan struct{})
		bookedPerSlot = map[string]int{}
	)
	for i := range patients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			id := fmt.Sprintf("%s:%d", sched, i%slotCount)
			var b booking.Booking
			code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: id, PatientID: fmt.Sprintf("P%04d", i)}, &b, false)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case code == 201:
				booked++
				bookedPerSlot[b.SlotID]++
			case code == 409 && msg == "该时段已约满":
				full++
			default:
				others = append(others, fmt.Sprintf("%d %s", code, msg))
			}
		}()
	}
	close(start)
	wg.Wait()
	if booked != slotCount || full != patients-slotCount || len(others) > 0 {
		t.Fatalf("booked %d, sold out %d, other answers %d (first: %v)", booked, full, len(others), others[:min(5, len(others))])
	}
	for i := range slotCount {
		if id := fmt.Sprintf("%s:%d", sched, i); bookedPerSlot[id] != 1 {
			t.Fatalf("slot %s booked %d times", id, bookedPerSlot[id])
		}
	}
	db := r.app.Node.DB
	var rows, counters int
	if err := db.QueryRow(`SELECT COUNT(*) FROM bookings WHERE status <> 'cancelled'`).Scan(&rows); err != nil || rows != slotCount {
		t.Fatalf("booking rows %d %v", rows, err)
	}
	if err := db.QueryRow(`SELECT SUM(booked) FROM booking_slots WHERE schedule_id = ?`, sched).Scan(&counters); err != nil || counters != slotCount {
		t.Fatalf("slot counters %d %v", counters, err)
	}
	var page booking.DoctorPage
	if code, _ := r.do("GET", "/api/public/doctors", nil, &page, true); code != 200 || len(page.Items) != 1 || len(page.Items[0].NextSlots) != 0 {
		t.Fatalf("after the race the doctor shows free slots: %+v", page)
	}
}

// TestBookingReplication goes through both services: the hospital sets a
// doctor's fees, schedule and release rule in its console (the generic
// admin layer on the appliance), they reach the cloud, a patient books
// there, and the booking comes back to the hospital.
func TestBookingReplication(t *testing.T) {
	ctx := context.Background()
	r := &bookRig{parts: partsOf(cloudtest.Start(t, cloudtest.Options{LeafListen: "127.0.0.1:0"}))}
	cl := r.app
	a, _ := enrollAppliance(t, r.url, r.Code)

	admin := ihos.WithActor(ctx, ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})
	create := func(resource string, rec map[string]any) string {
		t.Helper()
		res, err := a.Store.Resource(resource)
		if err != nil {
			t.Fatal(err)
		}
		out, err := a.Store.Create(admin, res, rec)
		if err != nil {
			t.Fatalf("create %s: %v", resource, err)
		}
		return out["id"].(string)
	}
	inst := create("institutions", map[string]any{"code": "BK01", "name": "示例市第一人民医院"})
	// A pilot department (no follow-up-only rule): this appliance has no HIS.
	dept := create("departments", map[string]any{"institution_id": inst, "code": "BKNK", "name": "互联网内科", "category": "临床", "online": true,
		"online_follow_up_only": false})
	doc := create("staff", map[string]any{"institution_id": inst, "department_id": dept, "job_no": "BK001", "name": "赵六", "kind": "doctor",
		"title": "副主任医师", "license_no": "110000000000001", "practice_since": 2005, "id_number": "11010519491231002X", "online": true})
	create("consultation_settings", map[string]any{"title": "副主任医师", "text_enabled": true, "text_fee": 1000, "text_minutes": 20})
	create("consultation_settings", map[string]any{"staff_id": doc, "text_enabled": true, "text_fee": 2500, "text_minutes": 30})
	create("release_rules", map[string]any{"days_ahead": 2, "release_time": "00:00", "quota": 1})
	sched := create("online_schedules", map[string]any{"staff_id": doc, "visit_date": tomorrow(), "start_time": "09:00", "end_time": "10:00",
		"visit_type": "text", "slot_minutes": 20})

	var slots struct{ Items []booking.Slot }
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := r.do("GET", "/api/public/doctors/"+doc+"/slots?date="+tomorrow(), nil, &slots, true)
		if code == 200 && len(slots.Items) == 3 && slots.Items[0].Status == booking.SlotAvailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule did not reach the cloud: %d %+v", code, slots)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var b booking.Booking
	if code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: sched + ":1", PatientID: "P1"}, &b, false); code != 201 || b.Fee != 2500 {
		t.Fatalf("book: %d %s %+v", code, msg, b)
	}
	for deadline = time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var status string
		var fee int64
		err := a.Node.DB.QueryRow(`SELECT status, fee FROM bookings WHERE id = ?`, b.ID).Scan(&status, &fee)
		if err == nil && status == booking.StatusAwaitingPayment && fee == 2500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the booking did not reach the hospital: %v %s", err, status)
		}
	}
	// Disabling the schedule in the console stops booking in the cloud.
	res, _ := a.Store.Resource("online_schedules")
	if _, err := a.Store.SetEnabled(admin, res, sched, false); err != nil {
		t.Fatal(err)
	}
	for deadline = time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var enabled int
		if err := cl.Node.DB.QueryRow(`SELECT enabled FROM online_schedules WHERE id = ?`, sched).Scan(&enabled); err == nil && enabled == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the disabled schedule did not reach the cloud")
		}
	}
	if code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: sched + ":2", PatientID: "P2"}, nil, false); code != 409 || msg != "该排班已停诊，暂不能预约" {
		t.Fatalf("booking a disabled schedule: %d %s", code, msg)
	}
}

// payBookRig is a cloud wired to the payment channel simulator (newPayRig)
// with the booking rig's hospital data: book, pay at the channel, wait.
type payBookRig struct {
	*bookRig
	pay   *payRig
	visit *visitRig
}

func newPayBookRig(t *testing.T, dsn string) *payBookRig {
	return payBookRigOf(cloudtest.Start(t, cloudtest.Options{DSN: dsn, Pay: true, MaxIdleConnsPerHost: 256,
		AdjustPay: func(pc *cloud.PayChannelConfig) { pc.QueryAfter = 200 * time.Millisecond }}))
}

func payBookRigOf(c *cloudtest.Cloud) *payBookRig {
	r := &payBookRig{bookRig: &bookRig{parts: partsOf(c)}, pay: payRigOf(c), visit: &visitRig{parts: partsOf(c)}}
	r.seed()
	return r
}

// use points the rig's failures at subtest t.
func (r *payBookRig) use(t *testing.T) { r.t, r.pay.t, r.visit.t, r.Cloud.T = t, t, t, t }

func (r *payBookRig) book(slot, patient string) *booking.Booking {
	r.t.Helper()
	var b booking.Booking
	if code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: slot, PatientID: patient}, &b, false); code != 201 {
		r.t.Fatalf("book %s: %d %s", slot, code, msg)
	}
	return &b
}

func (r *payBookRig) get(id string) *booking.Booking {
	r.t.Helper()
	var b booking.Booking
	if code, msg := r.do("GET", "/api/booking/bookings/"+id, nil, &b, false); code != 200 {
		r.t.Fatalf("get %s: %d %s", id, code, msg)
	}
	return &b
}

// payFor starts paying booking id; the body also carries an amount, which
// must be ignored.
func (r *payBookRig) payFor(id string) *payments.PayResult {
	r.t.Helper()
	var res payments.PayResult
	if code, msg := r.do("POST", "/api/booking/bookings/"+id+"/pay", map[string]any{"openid": "oPatient", "amount": 1}, &res, false); code != 200 || res.Payment == nil {
		r.t.Fatalf("pay %s: %d %s", id, code, msg)
	}
	return &res
}

// waitBooking waits until the booking has status.
func (r *payBookRig) waitBooking(id, status string) *booking.Booking {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := r.get(id)
		if b.Status == status {
			return b
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("booking %s is %s, want %s", id, b.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// paidBooking books slot for patient, pays at the channel and waits until
// the booking is booked with its visit open.
func (r *payBookRig) paidBooking(slot, patient string) (*booking.Booking, *ihos.Payment) {
	r.t.Helper()
	b := r.book(slot, patient)
	res := r.payFor(b.ID)
	r.PayAt(res.Payment.OutTradeNo)
	b = r.waitBooking(b.ID, booking.StatusBooked)
	if b.VisitID == "" {
		r.t.Fatalf("booked without a visit: %+v", b)
	}
	return b, res.Payment
}

func (r *payBookRig) visitStatus(bookingID string) string {
	r.t.Helper()
	var s string
	if err := r.app.Node.DB.QueryRowContext(context.Background(), `SELECT status FROM visits WHERE booking_id = ?`, bookingID).Scan(&s); err != nil {
		r.t.Fatalf("visit of %s: %v", bookingID, err)
	}
	return s
}

// TestBookPayVisit runs issue 8's journey through the cloud's API and the
// channel simulator: book a released slot, pay, the notify books it and
// opens the visit (once), the patient waits with a queue position; unpaid
// bookings expire, cancelled ones are refunded — on SQLite and MariaDB.
func TestBookPayVisit(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		r := newPayBookRig(t, dsn)
		sched := r.schedule(tomorrow(), "08:00", "12:00", "text", 30)
		slot := func(n int) string { return fmt.Sprintf("%s:%d", sched, n) }
		t.Run("PaidOpensVisitOnce", func(t *testing.T) { r.use(t); r.testPaidOpensVisit(t, slot(0)) })
		t.Run("UnpaidExpires", func(t *testing.T) { r.use(t); r.testUnpaidExpires(t, slot(1)) })
		t.Run("CancelRefunds", func(t *testing.T) { r.use(t); r.testCancelRefunds(t, slot(2)) })
		t.Run("PaidAfterCancel", func(t *testing.T) { r.use(t); r.testPaidAfterCancel(t, slot(5)) })
		t.Run("CancelAfterAccept", func(t *testing.T) { r.use(t); r.testCancelAfterAccept(t, slot(3)) })
		t.Run("Refusals", func(t *testing.T) { r.use(t); r.testPayRefusals(t, slot(4)) })
	})
}

func (r *payBookRig) testPaidOpensVisit(t *testing.T, slot string) {
	r.pay.mode(paysim.Mode{DuplicateNotify: 2})
	b := r.book(slot, "P1")
	if b.Status != booking.StatusAwaitingPayment || b.StatusLabel != "待支付" || b.Fee != 2000 || b.PayBy.Sub(b.CreatedAt) != booking.PayWindow {
		t.Fatalf("booked: %+v", b)
	}
	res := r.payFor(b.ID)
	p := res.Payment
	// The fee comes from the consultation settings as stored on the
	// booking, not from the client's "amount": 1.
	if p.Total != 2000 || p.BusinessType != ihos.PayConsultation || p.BusinessID != b.ID || p.PatientID != "P1" || p.DoctorID != "doc1" ||
		p.DepartmentID != "d1" || p.Status != ihos.PaymentPaying || res.Prepay == nil || res.Prepay.PrepayID == "" {
		t.Fatalf("payment %+v prepay %+v", p, res.Prepay)
	}
	if again := r.payFor(b.ID); again.Payment.ID != p.ID {
		t.Fatalf("second pay made payment %s, want %s", again.Payment.ID, p.ID)
	}
	r.PayAt(p.OutTradeNo)
	b = r.waitBooking(b.ID, booking.StatusBooked)
	if b.StatusLabel != "已预约" || b.VisitID == "" || !b.PayBy.IsZero() {
		t.Fatalf("paid booking: %+v", b)
	}
	// The duplicate notifies arrive; a second worker (a restart, or another
	// cloud process) passes over the same rows: still one visit.
	deadline := time.Now().Add(5 * time.Second)
	for r.pay.count(`SELECT COUNT(*) FROM payment_notifies WHERE order_no = ? AND outcome = ?`, p.OutTradeNo, payments.OutcomeDuplicate) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("duplicate notifies not seen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	restarted := &booking.Service{DB: r.app.Node.DB, Payments: r.app.Payments, Visits: r.app.Visits}
	for range 2 {
		if _, err := restarted.Process(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.pay.count(`SELECT COUNT(*) FROM visits WHERE booking_id = ?`, b.ID); n != 1 {
		t.Fatalf("%d visits", n)
	}
	if n := r.pay.count(`SELECT COUNT(*) FROM visit_events WHERE visit_id = ?`, b.VisitID); n != 1 {
		t.Fatalf("%d visit events", n)
	}
	var v visits.Visit
	if code, eb := r.visit.call("GET", "/api/visits/"+b.VisitID, "patient:P1", nil, &v); code != 200 || v.Status != visits.StatusWaiting ||
		v.QueuePosition != 1 || v.DoctorID != "doc1" || v.Type != "text" || !v.BookedAt.Equal(b.CreatedAt) {
		t.Fatalf("visit: %d %+v %+v", code, eb, v)
	}
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/pay", map[string]string{"openid": "oPatient"}, nil, false); code != 409 || msg != "该预约已支付" {
		t.Fatalf("pay again: %d %s", code, msg)
	}
}

func (r *payBookRig) testUnpaidExpires(t *testing.T, slot string) {
	r.pay.mode(paysim.Mode{})
	b := r.book(slot, "P2")
	first := r.payFor(b.ID).Payment
	// The patient gives up on the payment: the booking still waits for one,
	// and paying again makes a new payment.
	var p ihos.Payment
	if code := r.pay.call("POST", "/api/pay/orders/"+first.ID+"/cancel", nil, &p); code != 200 {
		t.Fatalf("cancel payment: %d %+v", code, p)
	}
	r.pay.waitStatus(first.ID, ihos.PaymentCancelled, 5*time.Second)
	if got := r.get(b.ID); got.Status != booking.StatusAwaitingPayment {
		t.Fatalf("after the payment was cancelled: %+v", got)
	}
	second := r.payFor(b.ID).Payment
	if second.ID == first.ID {
		t.Fatal("no new payment")
	}
	// Its window passes (the booking is made older): the app's worker
	// expires it, returns the unit and cancels the open payment.
	old := ihos.FormatTime(time.Now().Add(-booking.PayWindow - time.Minute))
	r.exec(`UPDATE bookings SET created_at = ?, updated_at = ? WHERE id = ?`, old, old, b.ID)
	got := r.waitBooking(b.ID, booking.StatusCancelled)
	if got.CancelReason != "超时未支付" {
		t.Fatalf("expired: %+v", got)
	}
	r.pay.waitStatus(second.ID, ihos.PaymentCancelled, 5*time.Second)
	if counter, active, err := (&booking.Service{DB: r.app.Node.DB}).CountBooked(context.Background(), slot); err != nil || counter != 0 || active != 0 {
		t.Fatalf("slot after expiry: %d %d %v", counter, active, err)
	}
	if _, err := r.pay.sim.Pay("", second.OutTradeNo, ""); err == nil {
		t.Fatal("the expired booking's order was paid at the channel")
	}
	if nb := r.book(slot, "P3"); nb.Status != booking.StatusAwaitingPayment {
		t.Fatalf("the returned unit: %+v", nb)
	}
}

func (r *payBookRig) testCancelRefunds(t *testing.T, slot string) {
	r.pay.mode(paysim.Mode{})
	b, p := r.paidBooking(slot, "P4")
	var got booking.Booking
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/cancel", map[string]string{"reason": "临时有事"}, &got, false); code != 200 || got.Status != booking.StatusCancelled {
		t.Fatalf("cancel: %d %s %+v", code, msg, got)
	}
	r.pay.waitStatus(p.ID, ihos.PaymentRefunded, 5*time.Second)
	if s := r.visitStatus(b.ID); s != visits.StatusCancelled {
		t.Fatalf("visit %s", s)
	}
	if counter, _, err := (&booking.Service{DB: r.app.Node.DB}).CountBooked(context.Background(), slot); err != nil || counter != 0 {
		t.Fatalf("slot after cancel: %d %v", counter, err)
	}
	// Cancelling again, and the worker passing, refund nothing more.
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/cancel", nil, &got, false); code != 200 || got.Status != booking.StatusCancelled {
		t.Fatalf("cancel again: %d %s", code, msg)
	}
	if _, err := (&booking.Service{DB: r.app.Node.DB, Payments: r.app.Payments, Visits: r.app.Visits}).Process(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := r.pay.count(`SELECT COUNT(*) FROM refunds WHERE payment_id = ?`, p.ID); n != 1 {
		t.Fatalf("%d refunds", n)
	}
	if n := r.pay.count(`SELECT COUNT(*) FROM refunds WHERE payment_id = ? AND amount = 2000 AND request_key = ?`, p.ID, "booking-cancel:"+b.ID); n != 1 {
		t.Fatal("the refund is not the full fee under the booking's key")
	}
}

// The booking is cancelled without its payment being settled (a crash
// between the two, or an order whose close was not confirmed in time) and
// the payment is paid afterwards: the worker refunds it and opens no visit.
func (r *payBookRig) testPaidAfterCancel(t *testing.T, slot string) {
	r.pay.mode(paysim.Mode{})
	b := r.book(slot, "P8")
	p := r.payFor(b.ID).Payment
	if _, err := (&booking.Service{DB: r.app.Node.DB}).Cancel(context.Background(), b.ID, ""); err != nil {
		t.Fatal(err)
	}
	r.PayAt(p.OutTradeNo)
	r.pay.waitStatus(p.ID, ihos.PaymentRefunded, 10*time.Second)
	if got := r.get(b.ID); got.Status != booking.StatusCancelled {
		t.Fatalf("booking %+v", got)
	}
	if n := r.pay.count(`SELECT COUNT(*) FROM visits WHERE booking_id = ?`, b.ID); n != 0 {
		t.Fatalf("%d visits for a cancelled booking", n)
	}
}

func (r *payBookRig) testCancelAfterAccept(t *testing.T, slot string) {
	r.pay.mode(paysim.Mode{})
	b, p := r.paidBooking(slot, "P5")
	if code, eb := r.visit.call("POST", "/api/visits/"+b.VisitID+"/accept", "doctor:doc1", nil, nil); code != 200 {
		t.Fatalf("accept: %d %+v", code, eb)
	}
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/cancel", nil, nil, false); code != 409 || msg != "医生已接诊，不能取消" {
		t.Fatalf("cancel after accept: %d %s", code, msg)
	}
	if got := r.get(b.ID); got.Status != booking.StatusBooked {
		t.Fatalf("booking %+v", got)
	}
	if got := r.pay.get(p.ID); got.Status != ihos.PaymentPaid {
		t.Fatalf("payment %s", got.Status)
	}
}

func (r *payBookRig) testPayRefusals(t *testing.T, slot string) {
	b := r.book(slot, "P6")
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/cancel", nil, nil, false); code != 200 {
		t.Fatalf("cancel: %d %s", code, msg)
	}
	if code, msg := r.do("POST", "/api/booking/bookings/"+b.ID+"/pay", map[string]string{"openid": "o"}, nil, false); code != 409 || msg != "该预约已取消，不能支付" {
		t.Fatalf("pay cancelled: %d %s", code, msg)
	}
	// A doctor whose text visits are free: booked at once, the visit open.
	now := ihos.FormatTime(time.Now())
	r.Staff(cloudtest.Staff{ID: "doc2", Department: "d1", JobNo: "J002", Name: "李四", Kind: ihos.StaffDoctor, Title: "住院医师", Online: true})
	r.exec(`INSERT INTO consultation_settings (id, hospital_id, title, staff_id, text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes,
		video_enabled, video_fee, video_minutes, enabled, version, created_at, updated_at) VALUES (?, ?, '', 'doc2', 1, 0, 15, 0, 0, 0, 0, 0, 0, 1, 1, ?, ?)`,
		ihos.NewID(), testHosp, now, now)
	id := r.Schedule(cloudtest.Schedule{Staff: "doc2", Date: tomorrow(), Start: "08:00", End: "09:00", Type: "text", SlotMinutes: 30})
	free := r.book(id+":0", "P7")
	if free.Status != booking.StatusBooked || free.Fee != 0 || free.VisitID == "" {
		t.Fatalf("free booking: %+v", free)
	}
	if s := r.visitStatus(free.ID); s != visits.StatusWaiting {
		t.Fatalf("free visit %s", s)
	}
	if code, msg := r.do("POST", "/api/booking/bookings/"+free.ID+"/pay", map[string]string{"openid": "o"}, nil, false); code != 409 || msg != "该预约无需支付" {
		t.Fatalf("pay free: %d %s", code, msg)
	}
	if code, msg := r.do("POST", "/api/booking/bookings/nobody/pay", nil, nil, false); code != 404 {
		t.Fatalf("pay unknown: %d %s", code, msg)
	}
}
