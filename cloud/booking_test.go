package cloud_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/booking"
	"ihos/cloud"
	"ihos/internal/auth"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
)

// bookRig is a cloud serving over a real socket, with a hospital's
// replicated master data written into its database as sync would.
type bookRig struct {
	t     testing.TB
	app   *cloud.App
	url   string
	token string
	hc    *http.Client
	rt    string // the release rule's time of day
}

func newBookRig(t testing.TB, dsn string) *bookRig {
	t.Helper()
	ctx := context.Background()
	app, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(t.TempDir(), "cloud"), HTTP: "127.0.0.1:0", LogLevel: "error", Database: dsn}})
	if err != nil {
		t.Fatalf("cloud.New: %v", err)
	}
	t.Cleanup(app.Close)
	if _, err := app.Hospitals.Add(ctx, testHosp, "示例市第一人民医院"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Middleware(app.Handler))
	t.Cleanup(srv.Close)
	token, err := os.ReadFile(filepath.Join(app.Node.Config.DataDir, node.CLITokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 512
	return &bookRig{t: t, app: app, url: srv.URL, token: strings.TrimSpace(string(token)), hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (r *bookRig) exec(q string, args ...any) {
	r.t.Helper()
	err := r.app.Node.DB.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// seed writes department 内科 with doctor doc1 (主任医师, text 20 元 and
// voice 30 元 by title), and a release rule that released tomorrow's slots
// this minute, one patient each.
func (r *bookRig) seed() {
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, category, online, enabled, version, created_at, updated_at)
		VALUES ('d1', ?, 'i1', 'NK', '内科', '临床', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, title, specialty, online, enabled, version, created_at, updated_at)
		VALUES ('doc1', ?, 'i1', 'd1', 'J001', '张三', 'doctor', '主任医师', '高血压', 1, 1, 1, ?, ?)`, testHosp, now, now)
	r.exec(`INSERT INTO consultation_settings (id, hospital_id, title, staff_id, text_enabled, text_fee, text_minutes, voice_enabled, voice_fee, voice_minutes,
		video_enabled, video_fee, video_minutes, enabled, version, created_at, updated_at) VALUES (?, ?, '主任医师', NULL, 1, 2000, 30, 1, 3000, 15, 0, 0, 0, 1, 1, ?, ?)`,
		ihos.NewID(), testHosp, now, now)
	r.rt = time.Now().In(ihos.Shanghai).Format("15:04")
	r.exec(`INSERT INTO release_rules (id, hospital_id, department_id, days_ahead, release_time, quota, enabled, version, created_at, updated_at)
		VALUES (?, ?, NULL, 1, ?, 1, 1, 1, ?, ?)`, ihos.NewID(), testHosp, r.rt, now, now)
}

func (r *bookRig) schedule(date, start, end, visitType string, slotMinutes int) string {
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO online_schedules (id, hospital_id, staff_id, visit_date, start_time, end_time, visit_type, slot_minutes, slot_count, enabled, version, created_at, updated_at)
		VALUES (?, ?, 'doc1', ?, ?, ?, ?, ?, 0, 1, 1, ?, ?)`, id, testHosp, date, start, end, visitType, slotMinutes, now, now)
	return id
}

// do calls the API (with the command-line token unless anonymous) and
// decodes the answer into out; it returns the status and the error body's
// message.
func (r *bookRig) do(method, path string, body, out any, anonymous bool) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.url+path, rd)
	if !anonymous {
		req.Header.Set(node.CLITokenHeader, r.token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e web.ErrorBody
	if resp.StatusCode >= 400 {
		json.Unmarshal(b, &e)
		return resp.StatusCode, e.Message
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Sprintf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode, ""
}

func tomorrow() string { return time.Now().In(ihos.Shanghai).AddDate(0, 0, 1).Format(time.DateOnly) }

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
	cl, err := cloud.New(ctx, cloud.Config{Config: node.Config{DataDir: filepath.Join(t.TempDir(), "cloud"), HTTP: "127.0.0.1:0", LogLevel: "error"},
		LeafListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	code, err := cl.Hospitals.Add(ctx, testHosp, "示例市第一人民医院")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Middleware(cl.Handler))
	defer srv.Close()
	token, _ := os.ReadFile(filepath.Join(cl.Node.Config.DataDir, node.CLITokenFile))
	r := &bookRig{t: t, app: cl, url: srv.URL, token: strings.TrimSpace(string(token)), hc: http.DefaultClient}

	appDir := filepath.Join(t.TempDir(), "appliance")
	if _, err := appliance.Enroll(ctx, appDir, srv.URL, code.Code); err != nil {
		t.Fatal(err)
	}
	a, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: appDir, LogLevel: "error"}, CloudLeaf: code.LeafURL})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

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
	dept := create("departments", map[string]any{"institution_id": inst, "code": "BKNK", "name": "互联网内科", "category": "临床", "online": true})
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
