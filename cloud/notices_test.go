package cloud_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/booking"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/his/hissim"
	"ihos/internal/node"
	"ihos/notices"
	"ihos/ratings"
	"ihos/sync"
	"ihos/visits"
)

// patientStream opens the patient's own stream (GET /api/events) with the
// H5 cookie and returns its events.
func (r *patientRig) patientStream(ctx context.Context, token string) <-chan sseEvent {
	r.t.Helper()
	ch, err := r.Stream(ctx, "/api/events", cloudtest.PatientCookie(token, ""))
	if err != nil {
		r.t.Fatalf("stream: %v", err)
	}
	return ch
}

// nextNotice waits for the stream's next "notice" event.
func nextNotice(t *testing.T, ch <-chan sseEvent) notices.Pushed {
	t.Helper()
	ev := nextEvent(t, ch, "notice")
	var p notices.Pushed
	if err := json.Unmarshal([]byte(ev.Data), &p); err != nil {
		t.Fatalf("notice %s: %v", ev.Data, err)
	}
	return p
}

// waitNotices polls the notice list until it has want titles (newest
// first, joined with |).
func (r *patientRig) waitNotices(t *testing.T, get func() []notices.Notice, want string) []notices.Notice {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := get()
		var titles []string
		for _, n := range l {
			titles = append(titles, n.Title)
		}
		if got := strings.Join(titles, "|"); got == want {
			return l
		} else if time.Now().After(deadline) {
			t.Fatalf("notices %q, want %q", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// waitDoctor waits for a doctor's notice of kind (with body, if given).
func (r *patientRig) waitDoctor(t *testing.T, get func() []notices.Notice, kind, body string) notices.Notice {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := get()
		for _, n := range l {
			if n.Kind == kind && (body == "" || n.Body == body) {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("doctor's notices %+v: no %s %q", l, kind, body)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// TestPatientSide runs the patient's side of a visit through the cloud's API
// with real patient sessions: the message center fills from the journey's
// own changes (booking, payment, acceptance, messages, the hospital's
// e-invoice) and pushes live on the patient's stream; the doctor's notices;
// the rating rules; the doctor list's rating and volume; the personal
// center's visits and orders — never another account's.
func TestPatientSide(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		r := newPatientRig(t, dsn)
		sched := r.schedule(tomorrow(), "08:00", "12:00", "text", 30)
		testPatientSide(t, r, sched+":0")
	})
}

func testPatientSide(t *testing.T, r *patientRig, slot string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, aliceCSRF, self := r.verified("13800138000", hissim.DemoPatients[0])
	bob, _, _ := r.verified("13700137000", hissim.DemoPatients[2])
	patientNotices := func(token string) func() []notices.Notice {
		return func() []notices.Notice {
			var l []notices.Notice
			if code, msg := r.as(token, "", "GET", "/api/patient/notices", nil, &l); code != 200 {
				t.Fatalf("notices: %d %s", code, msg)
			}
			return l
		}
	}
	doctorNotices := func() []notices.Notice {
		var l []notices.Notice
		if code, eb := r.visit.call("GET", "/api/doctor/notices", "doctor:doc1", nil, &l); code != 200 {
			t.Fatalf("doctor notices: %d %+v", code, eb)
		}
		return l
	}

	// Book and pay: 预约成功 and 支付成功 for the account, a waiting patient
	// for the doctor.
	var b booking.Booking
	if code, msg := r.as(alice, "", "POST", "/api/booking/bookings", booking.Request{SlotID: slot, Condition: "头晕三天，血压偏高"}, &b); code != 201 {
		t.Fatalf("book: %d %s", code, msg)
	}
	pay := r.payFor(b.ID)
	r.PayAt(pay.Payment.OutTradeNo)
	b = *r.waitBooking(b.ID, booking.StatusBooked)
	r.waitNotices(t, patientNotices(alice), "预约成功|支付成功")
	// The doctor: a new waiting patient (and the condition the patient
	// gave, when the visit opens with it as a first message).
	l := r.waitDoctor(t, doctorNotices, notices.KindPatientWaiting, "")
	if !strings.Contains(l.Body, hissim.DemoPatients[0].Name) || l.Link != "/doctor/#/visit/"+b.VisitID {
		t.Fatalf("doctor's notice %+v", l)
	}
	if got := patientNotices(bob)(); len(got) != 0 {
		t.Fatalf("bob's notices %+v", got)
	}

	var waiting []cloud.VisitItem
	if code, msg := r.as(alice, "", "GET", "/api/patient/visits", nil, &waiting); code != 200 || len(waiting) != 1 || waiting[0].Status != visits.StatusWaiting ||
		waiting[0].QueuePosition != 1 || waiting[0].Rated || waiting[0].CanRate {
		t.Fatalf("waiting visit: %d %s %+v", code, msg, waiting)
	}

	// Live: the patient's stream gets the acceptance and the doctor's
	// messages as "notice" events.
	stream := r.patientStream(ctx, alice)
	nextEvent(t, stream, "queue") // the stream is up
	if code, eb := r.visit.call("POST", "/api/visits/"+b.VisitID+"/accept", "doctor:doc1", nil, nil); code != 200 {
		t.Fatalf("accept: %d %+v", code, eb)
	}
	if p := nextNotice(t, stream); p.Title != "医生已接诊" || p.Kind != notices.KindAccepted || p.Unread != 3 || p.Link != "/h5/#/visit/"+b.VisitID {
		t.Fatalf("pushed %+v", p)
	}
	for i, text := range []string{"您好，请描述一下症状", "最近血压多少？"} {
		if code, eb := r.visit.call("POST", "/api/visits/"+b.VisitID+"/messages", "doctor:doc1", visits.MessageInput{Kind: "text", Body: text}, nil); code != 200 {
			t.Fatalf("message: %d %+v", code, eb)
		}
		// The first makes the notice, the second updates it (coalesced).
		p := nextNotice(t, stream)
		if p.Kind != notices.KindMessage || p.Body != text || p.Unread != 4 || (i == 1 && p.Title != "张三医生发来 2 条新消息") {
			t.Fatalf("pushed message %d: %+v", i, p)
		}
	}
	doctorStream, err := r.visit.subscribe(ctx, "/api/events", "doctor:doc1", "")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, doctorStream, "worklist") // the stream is up
	if code, eb := r.visit.call("POST", "/api/visits/"+b.VisitID+"/messages", "patient:"+self.PatientID, visits.MessageInput{Kind: "text", Body: "130/85"}, nil); code != 200 {
		t.Fatalf("patient message: %d %+v", code, eb)
	}
	if p := nextNotice(t, doctorStream); p.Kind != notices.KindMessage || p.Body != "130/85" || p.Link != "/doctor/#/visit/"+b.VisitID {
		t.Fatalf("pushed to the doctor: %+v", p)
	}
	if m := r.waitDoctor(t, doctorNotices, notices.KindMessage, "130/85"); !strings.HasPrefix(m.Title, hissim.DemoPatients[0].Name+"发来") || m.SubjectID != b.VisitID {
		t.Fatalf("doctor's message notice %+v", m)
	}

	// Unread counts and marking read (the cookie session needs its CSRF).
	var count struct{ Count int }
	if code, msg := r.as(alice, "", "GET", "/api/patient/notices/unread", nil, &count); code != 200 || count.Count != 4 {
		t.Fatalf("unread: %d %s %+v", code, msg, count)
	}
	pl := patientNotices(alice)()
	var read struct{ Updated, Unread int }
	if code, msg := r.as(alice, "-", "POST", "/api/patient/notices/read", map[string]any{"ids": []string{pl[0].ID}}, nil); code != 403 {
		t.Fatalf("read without CSRF: %d %s", code, msg)
	}
	if code, msg := r.as(alice, aliceCSRF, "POST", "/api/patient/notices/read", map[string]any{"ids": []string{pl[0].ID}}, &read); code != 200 || read.Updated != 1 || read.Unread != 3 {
		t.Fatalf("read one: %d %s %+v", code, msg, read)
	}
	if code, _ := r.as(bob, "", "POST", "/api/patient/notices/read", map[string]any{"ids": []string{pl[1].ID}}, &read); code != 200 || read.Updated != 0 {
		t.Fatalf("bob marks alice's: %+v", read)
	}
	if code, msg := r.as(alice, "", "POST", "/api/patient/notices/read", map[string]any{"ids": "all"}, &read); code != 200 || read.Updated != 3 || read.Unread != 0 {
		t.Fatalf("read all: %d %s %+v", code, msg, read)
	}
	if code, msg := r.as(alice, "", "POST", "/api/patient/notices/read", map[string]any{"ids": "some"}, nil); code != 400 {
		t.Fatalf("read some: %d %s", code, msg)
	}
	if code, _ := r.as(alice, "", "GET", "/api/doctor/notices", nil, nil); code != 403 {
		t.Fatalf("patient reads the doctor's notices: %d", code)
	}

	// Ratings: not before the visit ended, never someone else's, once.
	rate := ratings.Input{Score: 5, Comment: "医生非常耐心", Tags: []string{"耐心细致", "解答专业"}}
	if code, msg := r.as(alice, "", "POST", "/api/visits/"+b.VisitID+"/rating", rate, nil); code != 409 || msg != "问诊结束后才能评价" {
		t.Fatalf("rate in progress: %d %s", code, msg)
	}
	if code, eb := r.visit.call("POST", "/api/visits/"+b.VisitID+"/end", "doctor:doc1", nil, nil); code != 200 {
		t.Fatalf("end: %d %+v", code, eb)
	}
	if code, msg := r.as(bob, "", "POST", "/api/visits/"+b.VisitID+"/rating", rate, nil); code != 404 || msg != "问诊不存在" {
		t.Fatalf("bob rates: %d %s", code, msg)
	}
	if code, msg := r.as(alice, "", "POST", "/api/visits/"+b.VisitID+"/rating", ratings.Input{Score: 9}, nil); code != 400 {
		t.Fatalf("score 9: %d %s", code, msg)
	}
	var rt ratings.Rating
	if code, msg := r.as(alice, "", "POST", "/api/visits/"+b.VisitID+"/rating", rate, &rt); code != 201 || rt.Score != 5 {
		t.Fatalf("rate: %d %s %+v", code, msg, rt)
	}
	if code, msg := r.as(alice, "", "POST", "/api/visits/"+b.VisitID+"/rating", rate, nil); code != 409 || msg != "已评价" {
		t.Fatalf("rate twice: %d %s", code, msg)
	}
	if code, msg := r.do("POST", "/api/visits/"+b.VisitID+"/rating", rate, nil, false); code != 401 {
		t.Fatalf("staff rates: %d %s", code, msg)
	}
	var sum ratings.Summary
	if code, msg := r.do("GET", "/api/public/doctors/doc1/ratings?limit=5", nil, &sum, true); code != 200 || sum.Count != 1 || sum.Average != 5 ||
		len(sum.Items) != 1 || sum.Items[0].Patient != ratings.MaskName(hissim.DemoPatients[0].Name) || sum.Items[0].Comment != "医生非常耐心" {
		t.Fatalf("public ratings: %d %s %+v", code, msg, sum)
	}
	if strings.Contains(sum.Items[0].Patient, []string{hissim.DemoPatients[0].Name}[0][3:]) {
		t.Fatalf("name not masked: %q", sum.Items[0].Patient)
	}
	var own ratings.Rating
	if code, msg := r.as(alice, "", "GET", "/api/visits/"+b.VisitID+"/rating", nil, &own); code != 200 || own.ID != rt.ID {
		t.Fatalf("own rating: %d %s", code, msg)
	}
	// The doctor list: rating, number of ratings, ended visits (counted as
	// the visit's end passes the change feed).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var page struct {
			Items []struct {
				ID          string  `json:"id"`
				Rating      float64 `json:"rating"`
				RatingCount int64   `json:"rating_count"`
				VisitCount  int64   `json:"visit_count"`
			} `json:"items"`
		}
		if code, msg := r.do("GET", "/api/public/doctors?sort=rating", nil, &page, true); code != 200 || len(page.Items) != 1 {
			t.Fatalf("doctors: %d %s %+v", code, msg, page)
		}
		d := page.Items[0]
		if d.Rating == 5 && d.RatingCount == 1 && d.VisitCount == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("doctor list %+v", d)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if code, _ := r.do("GET", "/api/public/doctors?sort=volume", nil, nil, true); code != 200 {
		t.Fatalf("sort=volume: %d", code)
	}
	var home booking.ListedDoctor
	if code, msg := r.do("GET", "/api/public/doctors/doc1", nil, &home, true); code != 200 || home.Rating != 5 || home.RatingCount != 1 || home.VisitCount != 1 || home.Name != "张三" {
		t.Fatalf("homepage: %d %s %+v", code, msg, home)
	}

	// The personal center: the account's visits and orders, nobody else's.
	var vl []cloud.VisitItem
	if code, msg := r.as(alice, "", "GET", "/api/patient/visits", nil, &vl); code != 200 || len(vl) != 1 {
		t.Fatalf("visits: %d %s %+v", code, msg, vl)
	}
	if v := vl[0]; v.ID != b.VisitID || v.Status != visits.StatusEnded || v.StatusLabel != "已结束" || v.TypeLabel != "图文问诊" || v.DoctorName != "张三" ||
		v.DepartmentName != "内科" || v.PatientName != hissim.DemoPatients[0].Name || !v.SlotStart.Equal(b.StartAt) || v.BookingID != b.ID || !v.Rated || v.CanRate {
		t.Fatalf("visit item %+v", v)
	}
	if code, _ := r.as(bob, "", "GET", "/api/patient/visits", nil, &vl); code != 200 || len(vl) != 0 {
		t.Fatalf("bob's visits %+v", vl)
	}
	if code, msg := r.as(bob, "", "GET", "/api/patient/visits?patient="+self.PatientID, nil, nil); code != 403 {
		t.Fatalf("bob asks for alice's: %d %s", code, msg)
	}
	var ol []cloud.OrderItem
	if code, msg := r.as(alice, "", "GET", "/api/patient/orders", nil, &ol); code != 200 || len(ol) != 1 {
		t.Fatalf("orders: %d %s %+v", code, msg, ol)
	}
	if o := ol[0]; o.ID != pay.Payment.ID || o.BusinessKind != ihos.PayConsultation || o.BusinessLabel != "问诊费" || o.Amount != 2000 || o.State != ihos.PaymentPaid ||
		o.StateLabel != "已支付" || o.PaidAt.IsZero() || o.Invoice != nil {
		t.Fatalf("order %+v", o)
	}
	if code, _ := r.as(bob, "", "GET", "/api/patient/orders", nil, &ol); code != 200 || len(ol) != 0 {
		t.Fatalf("bob's orders %+v", ol)
	}

	// The hospital issues the e-invoice: it arrives through the sync apply,
	// makes a notice and shows on the order.
	now := ihos.FormatTime(time.Now())
	vals := map[string]string{"hospital_id": testHosp, "payment_id": pay.Payment.ID, "patient_id": self.PatientID, "business_type": ihos.PayConsultation,
		"bus_no": pay.Payment.ID, "bill_batch_code": "33010124", "bill_no": "0000012345", "random": "abc123", "qr_code": "https://einvoice.example/check/0000012345",
		"picture_net_url": "https://einvoice.example/0000012345.png", "total": "2000", "status": "issued", "issued_at": now, "version": "2",
		"created_at": now, "updated_at": now}
	row := sync.RowChange{Entity: "invoices", ID: ihos.NewID(), Version: 2, Values: map[string]*string{}}
	for k, v := range vals {
		row.Values[k] = &v
	}
	env := &sync.Envelope{ChangeID: ihos.NewID(), Hospital: testHosp, Origin: "appliance-h1", Side: sync.Appliance, HLC: 1, At: time.Now().UTC(), Rows: []sync.RowChange{row}}
	if ok, err := r.app.Replica.Apply(ctx, testHosp, env); err != nil || !ok {
		t.Fatalf("apply invoice: %v %v", ok, err)
	}
	p := nextNotice(t, stream)
	for p.Kind == notices.KindEnded { // the visit's end came before
		p = nextNotice(t, stream)
	}
	if p.Kind != notices.KindInvoice || !strings.Contains(p.Body, "0000012345") || p.Link != "/h5/#/orders" {
		t.Fatalf("invoice notice %+v", p)
	}
	if code, msg := r.as(alice, "", "GET", "/api/patient/orders", nil, &ol); code != 200 || ol[0].Invoice == nil || ol[0].Invoice.Number != "0000012345" ||
		ol[0].Invoice.Code != "33010124" || ol[0].Invoice.URL != "https://einvoice.example/0000012345.png" || ol[0].Invoice.StatusLabel != "已开票" {
		t.Fatalf("order with invoice: %d %s %+v", code, msg, ol[0].Invoice)
	}
	// Redelivered: applied once, one notice.
	if ok, err := r.app.Replica.Apply(ctx, testHosp, env); err != nil || ok {
		t.Fatalf("redelivered invoice: %v %v", ok, err)
	}
	var n int
	r.app.Node.DB.QueryRow(`SELECT COUNT(*) FROM notices WHERE kind = ?`, notices.KindInvoice).Scan(&n)
	if n != 1 {
		t.Fatalf("%d invoice notices", n)
	}
}

// TestNoticesAcrossRestart: the cloud stops and starts again on the same
// data; the notices of what happened before are not made twice, and what
// happens after still makes notices.
func TestNoticesAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "cloud")
	start := func() *visitRig {
		t.Helper()
		app, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: dir, HTTP: "127.0.0.1:0", LogLevel: "error"}})
		if err != nil {
			t.Fatalf("cloud.New: %v", err)
		}
		return &visitRig{parts: parts{t: t, app: app}}
	}
	r := start()
	if _, err := r.app.Hospitals.Add(ctx, testHosp, "示例市第一人民医院"); err != nil {
		t.Fatal(err)
	}
	now := ihos.FormatTime(time.Now())
	db := r.app.Node.DB
	for _, q := range []string{
		`INSERT INTO patients (id, hospital_id, name, version, created_at, updated_at) VALUES ('P1', 'h1', '王小明', 1, ?, ?)`,
		`INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, birth_date, created_at, updated_at) VALUES ('M1', 'A1', 'h1', 'P1', 'self', '1980-01-01', ?, ?)`,
	} {
		if _, err := db.Exec(q, now, now); err != nil {
			t.Fatal(err)
		}
	}
	v, err := r.app.Visits.Open(ctx, visits.VisitSpec{HospitalID: testHosp, BookingID: "B1", PatientID: "P1", DoctorID: "doc1", Type: "text", BookedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.app.Visits.Accept(ctx, visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, v.ID); err != nil {
		t.Fatal(err)
	}
	// Stop at once: the acceptance may or may not have become a notice yet.
	r.app.Close()

	r = start()
	defer r.app.Close()
	db = r.app.Node.DB
	kinds := func() string {
		rows, err := db.Query(`SELECT recipient_id, kind FROM notices ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var rc, k string
			rows.Scan(&rc, &k)
			out = append(out, rc+":"+k)
		}
		return strings.Join(out, " ")
	}
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for kinds() != want {
			if time.Now().After(deadline) {
				t.Fatalf("notices %q, want %q", kinds(), want)
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	wait("doc1:patient_waiting A1:visit_accepted")
	if _, err := r.app.Visits.Post(ctx, visits.Party{Role: visits.RoleDoctor, ID: "doc1"}, v.ID, visits.MessageInput{Kind: "text", Body: "您好"}); err != nil {
		t.Fatal(err)
	}
	wait("doc1:patient_waiting A1:visit_accepted A1:message")
	time.Sleep(300 * time.Millisecond) // nothing more comes
	wait("doc1:patient_waiting A1:visit_accepted A1:message")
}
