package cloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/visits"
)

// visitRig is a cloud (no payment channel) on a real socket, with hospital
// h1 enrolled.
type visitRig struct{ parts }

func newVisitRig(t testing.TB, dsn string) *visitRig {
	t.Helper()
	return &visitRig{parts: partsOf(cloudtest.Start(t, cloudtest.Options{DSN: dsn, MaxIdleConnsPerHost: 2048}))}
}

// request builds a request as staff (the CLI token) acting for party ("" =
// none).
func (r *visitRig) request(method, path, party string, body io.Reader) *http.Request {
	req, _ := http.NewRequest(method, r.url+path, body)
	req.Header.Set(node.CLITokenHeader, r.token)
	if party != "" {
		req.Header.Set(cloud.ActingPartyHeader, party)
	}
	return req
}

// call sends JSON body as party and decodes the answer into out.
func (r *visitRig) call(method, path, party string, body, out any) (int, web.ErrorBody) {
	r.t.Helper()
	auth := []cloudtest.Auth{r.CLI()}
	if party != "" {
		auth = append(auth, cloudtest.Header(cloud.ActingPartyHeader, party))
	}
	resp, err := r.Send(method, path, body, auth...)
	if err != nil {
		r.t.Fatal(err)
	}
	var eb web.ErrorBody
	if resp.Status != http.StatusOK {
		json.Unmarshal(resp.Body, &eb)
	} else if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			r.t.Fatalf("%s %s: %s: %v", method, path, resp.Body, err)
		}
	}
	return resp.Status, eb
}

var visitSeq atomic.Int64

func (r *visitRig) open(patient, doctor string, booked time.Time) *visits.Visit {
	r.t.Helper()
	var v visits.Visit
	req := map[string]any{"hospital_id": testHosp, "booking_id": fmt.Sprintf("BK%d-%d", time.Now().UnixNano(), visitSeq.Add(1)),
		"patient_id": patient, "doctor_id": doctor, "department_id": "dep1", "type": "text", "booked_at": booked}
	if code, eb := r.call("POST", "/api/visits", "", req, &v); code != 200 {
		r.t.Fatalf("open: %d %+v", code, eb)
	}
	return &v
}

// sseEvent is one event read from a stream.
type sseEvent = cloudtest.Event

// subscribe opens an SSE stream as party and returns its events.
func (r *visitRig) subscribe(ctx context.Context, path, party, lastID string) (<-chan sseEvent, error) {
	auth := []cloudtest.Auth{r.CLI()}
	if party != "" {
		auth = append(auth, cloudtest.Header(cloud.ActingPartyHeader, party))
	}
	if lastID != "" {
		auth = append(auth, cloudtest.Header("Last-Event-ID", lastID))
	}
	return r.Stream(ctx, path, auth...)
}

func nextEvent(t testing.TB, ch <-chan sseEvent, names ...string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("stream closed")
			}
			for _, n := range names {
				if ev.Name == n {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event within 10 s", names)
		}
	}
}

// TestVisitAPI drives a visit through the cloud's HTTP API: open, the
// patient writes while waiting, the doctor accepts (their stream sees it
// all), an image goes both ways, the doctor ends, and every refusal comes
// back as a 4xx with a Chinese message.
func TestVisitAPI(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) { testVisitAPI(t, newVisitRig(t, dsn)) })
}

func testVisitAPI(t *testing.T, r *visitRig) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const pat, doc = "patient:P1", "doctor:D1"
	v := r.open("P1", "D1", time.Now())

	// Authorisation: staff/CLI credentials, and an acting party.
	req := r.request("GET", "/api/visits/"+v.ID, pat, nil)
	req.Header.Del(node.CLITokenHeader)
	if resp, err := r.hc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	if code, eb := r.call("GET", "/api/visits/"+v.ID, "", nil, nil); code != 400 || !strings.Contains(eb.Message, cloud.ActingPartyHeader) {
		t.Errorf("no party: %d %+v", code, eb)
	}
	var got visits.Visit
	if code, _ := r.call("GET", "/api/visits/"+v.ID, pat, nil, &got); code != 200 || got.QueuePosition != 1 || got.Status != "waiting" {
		t.Fatalf("get: %d %+v", code, got)
	}
	for _, other := range []string{"patient:P2", "doctor:D2"} {
		if code, eb := r.call("GET", "/api/visits/"+v.ID, other, nil, nil); code != 403 || eb.Message != "您不是该问诊的患者或医生，无权查看或操作" {
			t.Errorf("%s: %d %+v", other, code, eb)
		}
	}

	events, err := r.subscribe(ctx, "/api/visits/"+v.ID+"/events", doc, "")
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events, "opened")
	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/messages", pat, visits.MessageInput{Kind: "text", Body: "医生您好"}, nil); code != 200 {
		t.Fatalf("post: %d", code)
	}
	if ev := nextEvent(t, events, "message"); ev.ID != "2" || !strings.Contains(ev.Data, "医生您好") {
		t.Fatalf("doctor's stream: %+v", ev)
	}
	if code, eb := r.call("POST", "/api/visits/"+v.ID+"/accept", "doctor:D2", nil, nil); code != 403 || eb.Message != "这不是您的问诊，不能接诊" {
		t.Errorf("accept by another doctor: %d %+v", code, eb)
	}
	if code, eb := r.call("POST", "/api/visits/"+v.ID+"/end", doc, nil, nil); code != 409 || eb.Message != "医生尚未接诊，不能结束问诊" {
		t.Errorf("end waiting: %d %+v", code, eb)
	}
	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/accept", doc, nil, &got); code != 200 || got.Status != "in_progress" {
		t.Fatalf("accept: %d %+v", code, got)
	}
	nextEvent(t, events, "accepted")

	// An image: uploaded (multipart, as a browser sends it), posted, read
	// by the doctor only.
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 2, 2)))
	var form bytes.Buffer
	fmt.Fprintf(&form, "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n%s\r\n--XX--\r\n", buf.Bytes())
	up := r.request("POST", "/api/visits/"+v.ID+"/attachments", pat, &form)
	up.Header.Set("Content-Type", "multipart/form-data; boundary=XX")
	resp, err := r.hc.Do(up)
	if err != nil {
		t.Fatal(err)
	}
	var att visits.Attachment
	json.NewDecoder(resp.Body).Decode(&att)
	resp.Body.Close()
	if resp.StatusCode != 200 || att.ContentType != "image/png" {
		t.Fatalf("upload: %d %+v", resp.StatusCode, att)
	}
	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/messages", pat, visits.MessageInput{Kind: "image", AttachmentID: att.ID}, nil); code != 200 {
		t.Fatalf("post image: %d", code)
	}
	if ev := nextEvent(t, events, "message"); !strings.Contains(ev.Data, att.ID) {
		t.Fatalf("image message: %+v", ev)
	}
	for party, want := range map[string]int{doc: 200, pat: 200, "patient:P2": 403, "doctor:D2": 403} {
		resp, err := r.hc.Do(r.request("GET", "/api/attachments/"+att.ID, party, nil))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && (!bytes.Equal(b, buf.Bytes()) || resp.Header.Get("Content-Type") != "image/png")) {
			t.Errorf("attachment as %s: %d %s", party, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/messages", doc, visits.MessageInput{Kind: "text", Body: "收到，指标正常"}, nil); code != 200 {
		t.Fatal(code)
	}
	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/end", doc, map[string]string{"reason": "复诊完成"}, &got); code != 200 || got.Status != "ended" {
		t.Fatalf("end: %d %+v", code, got)
	}
	nextEvent(t, events, "ended")
	if code, eb := r.call("POST", "/api/visits/"+v.ID+"/messages", pat, visits.MessageInput{Kind: "text", Body: "谢谢"}, nil); code != 409 || eb.Message != "问诊已结束，不能再发送消息" {
		t.Errorf("post after end: %d %+v", code, eb)
	}
	var page struct{ Messages []visits.Message }
	if code, _ := r.call("GET", "/api/visits/"+v.ID+"/messages?after=2", pat, nil, &page); code != 200 || len(page.Messages) != 4 || page.Messages[0].Seq != 3 {
		t.Fatalf("messages after 2: %d %+v", code, page)
	}

	// The message center resumes where it left off.
	center, err := r.subscribe(ctx, "/api/events", pat, "3")
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, center, "message", "ended"); ev.ID != "4" {
		t.Fatalf("center resumed at %+v", ev)
	}

	// Kept with their hospital (the rows replicate to it).
	var n int
	r.app.Node.DB.QueryRow(`SELECT COUNT(*) FROM visit_messages WHERE visit_id = ? AND hospital_id = ?`, v.ID, testHosp).Scan(&n)
	if n != 6 {
		t.Errorf("%d messages of %s", n, testHosp)
	}
}

// A visit and its messages reach the hospital's appliance (the console's
// visit records); on a cloud accepting hospital links the notices travel in
// the hub's service account, and streams still see messages at once.
func TestVisitReachesAppliance(t *testing.T) {
	pr := newPayRigLeaf(t, "", "127.0.0.1:0", nil)
	r := &visitRig{parts: pr.parts}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := enrollAppliance(t, pr.url, pr.code)
	v := r.open("P1", "D1", time.Now())
	events, err := r.subscribe(ctx, "/api/visits/"+v.ID+"/events", "doctor:D1", "")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := r.call("POST", "/api/visits/"+v.ID+"/messages", "patient:P1", visits.MessageInput{Kind: "text", Body: "您好"}, nil); code != 200 {
		t.Fatal(code)
	}
	if ev := nextEvent(t, events, "message"); !strings.Contains(ev.Data, "您好") {
		t.Fatalf("stream: %+v", ev)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status string
		var msgs int
		a.Node.DB.QueryRow(`SELECT status FROM visits WHERE id = ?`, v.ID).Scan(&status)
		a.Node.DB.QueryRow(`SELECT COUNT(*) FROM visit_messages WHERE visit_id = ?`, v.ID).Scan(&msgs)
		if status == "waiting" && msgs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance has status %q, %d messages", status, msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
