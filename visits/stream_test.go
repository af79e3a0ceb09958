package visits_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"ihos/internal/broker"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/visits"
)

// streamServer serves a service's two streams over a real socket; the
// acting party is ?role=&id= (the cloud's HTTP layer decides it from the
// session).
func streamServer(t testing.TB, s *visits.Service) string {
	t.Helper()
	mux := http.NewServeMux()
	by := func(r *http.Request) visits.Party {
		return visits.Party{Role: r.URL.Query().Get("role"), ID: r.URL.Query().Get("id")}
	}
	mux.Handle("GET /visits/{id}/events", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return s.ServeVisitEvents(w, r, by(r), r.PathValue("id"))
	}))
	mux.Handle("GET /events", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return s.ServeEvents(w, r, by(r))
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// event is one server-sent event.
type event struct {
	ID, Name, Data string
}

// stream is an open SSE connection.
type stream struct {
	resp   *http.Response
	events chan event
	cancel context.CancelFunc
}

// openStream connects to url as p, resuming after lastID ("" = from the
// start).
func openStream(t testing.TB, url string, p visits.Party, lastID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", url+sep+"role="+p.Role+"&id="+p.ID, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("stream: HTTP %d", resp.StatusCode)
	}
	st := &stream{resp: resp, events: make(chan event, 1024), cancel: cancel}
	go func() {
		defer close(st.events)
		sc := bufio.NewScanner(resp.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					st.events <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

func (st *stream) close() { st.cancel(); st.resp.Body.Close() }

// next returns the next event named one of names, skipping others.
func (st *stream) next(t testing.TB, names ...string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatal("stream closed")
			}
			for _, n := range names {
				if ev.Name == n {
					return ev
				}
			}
		case <-timeout:
			t.Fatalf("no %v event in 10 s", names)
		}
	}
}

var messageEvents = []string{"message", "opened", "accepted", "ended", "cancelled"}

func decode(t testing.TB, ev event) visits.Message {
	t.Helper()
	var m visits.Message
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("event %+v: %v", ev, err)
	}
	return m
}

// TestStreamResume: the doctor's stream is cut mid-conversation and
// reconnects with the last id it saw; every message arrives exactly once, in
// order, while the patient keeps writing.
func TestStreamResume(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		url := streamServer(t, s)
		v := open(t, s, patient, doctor, time.Now())
		if _, err := s.Accept(ctx, doctor, v.ID); err != nil {
			t.Fatal(err)
		}
		const total = 60
		done := make(chan error, 1)
		go func() {
			for i := range total {
				if _, err := s.Post(ctx, patient, v.ID, visits.MessageInput{Kind: visits.KindText, Body: fmt.Sprint(i)}); err != nil {
					done <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
			done <- nil
		}()
		var got []visits.Message
		lastID := ""
		for cut := 0; len(got) < 2+total; cut++ {
			st := openStream(t, url+"/visits/"+v.ID+"/events", doctor, lastID)
			// Read a few, then drop the connection (more each round, so it
			// ends).
			for n := 0; n < 7+cut*10 && len(got) < 2+total; n++ {
				ev := st.next(t, messageEvents...)
				m := decode(t, ev)
				if ev.ID != strconv.FormatInt(m.Seq, 10) {
					t.Fatalf("event id %s for seq %d", ev.ID, m.Seq)
				}
				got = append(got, m)
				lastID = ev.ID
			}
			st.close()
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for i, m := range got {
			if m.Seq != int64(i+1) {
				t.Fatalf("message %d has seq %d", i, m.Seq)
			}
			if i >= 2 && m.Body != fmt.Sprint(i-2) {
				t.Fatalf("message %d body %q", i, m.Body)
			}
		}
		if got[0].Event != visits.EventOpened || got[1].Event != visits.EventAccepted {
			t.Fatalf("first events %+v %+v", got[0], got[1])
		}
		// A resumed stream after the end has nothing old to send.
		st := openStream(t, url+"/visits/"+v.ID+"/events", doctor, lastID)
		s.Post(ctx, doctor, v.ID, visits.MessageInput{Kind: visits.KindText, Body: "last"})
		if m := decode(t, st.next(t, messageEvents...)); m.Body != "last" || m.Seq != 2+total+1 {
			t.Fatalf("after resume: %+v", m)
		}
	})
}

// TestStreamRefused: a stream is only for the visit's parties.
func TestStreamRefused(t *testing.T) {
	db := sqldbtest.SQLite(t)
	s := newService(t, db)
	url := streamServer(t, s)
	v := open(t, s, patient, doctor, time.Now())
	for _, p := range []visits.Party{patient2, doctor2, {Role: "nurse", ID: "N1"}} {
		resp, err := http.Get(url + "/visits/" + v.ID + "/events?role=" + p.Role + "&id=" + p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var body web.ErrorBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || body.Message != "您不是该问诊的患者或医生，无权查看或操作" {
			t.Errorf("%+v: HTTP %d %+v", p, resp.StatusCode, body)
		}
	}
	resp, _ := http.Get(url + "/events?role=nurse&id=N1")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("nurse's message center: HTTP %d", resp.StatusCode)
	}
}

// TestQueueEvents: a waiting patient's stream tells their place, and it
// moves when the doctor accepts the patient ahead.
func TestQueueEvents(t *testing.T) {
	db := sqldbtest.SQLite(t)
	ctx := context.Background()
	s := newService(t, db)
	url := streamServer(t, s)
	t0 := time.Now()
	a := open(t, s, patient2, doctor, t0)
	b := open(t, s, patient, doctor, t0.Add(time.Second))
	visit := openStream(t, url+"/visits/"+b.ID+"/events", patient, "")
	center := openStream(t, url+"/events", patient, "")
	worklist := openStream(t, url+"/events", doctor, "")
	queue := func(st *stream) visits.QueueEvent {
		var q visits.QueueEvent
		json.Unmarshal([]byte(st.next(t, "queue").Data), &q)
		return q
	}
	waiting := func() int {
		var w visits.WorklistEvent
		json.Unmarshal([]byte(worklist.next(t, "worklist").Data), &w)
		return w.Waiting
	}
	if q := queue(visit); q.Position != 2 {
		t.Fatalf("visit stream: %+v", q)
	}
	if q := queue(center); q.Position != 2 || q.VisitID != b.ID {
		t.Fatalf("message center: %+v", q)
	}
	if n := waiting(); n != 2 {
		t.Fatalf("worklist %d", n)
	}
	s.Accept(ctx, doctor, a.ID)
	if q := queue(visit); q.Position != 1 {
		t.Fatalf("visit stream after accept: %+v", q)
	}
	if q := queue(center); q.Position != 1 {
		t.Fatalf("message center after accept: %+v", q)
	}
	if n := waiting(); n != 1 {
		t.Fatalf("worklist %d", n)
	}
	s.Accept(ctx, doctor, b.ID)
	if q := queue(visit); q.Position != 0 {
		t.Fatalf("visit stream after own accept: %+v", q)
	}
	if m := decode(t, center.next(t, "accepted")); m.VisitID != b.ID {
		t.Fatalf("center: %+v", m)
	}
}

// TestEventsResume: the message center resumes by feed position across
// visits.
func TestEventsResume(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := newService(t, db)
		url := streamServer(t, s)
		v1 := open(t, s, patient, doctor, time.Now())
		v2 := open(t, s, patient, doctor2, time.Now())
		open(t, s, patient2, doctor, time.Now()) // someone else's
		s.Accept(ctx, doctor, v1.ID)
		s.Accept(ctx, doctor2, v2.ID)
		st := openStream(t, url+"/events", patient, "")
		var got []visits.Message
		var lastID string
		for len(got) < 4 {
			ev := st.next(t, messageEvents...)
			got = append(got, decode(t, ev))
			lastID = ev.ID
		}
		st.close()
		for i := range 10 {
			v := v1
			if i%2 == 1 {
				v = v2
			}
			s.Post(ctx, patient, v.ID, visits.MessageInput{Kind: visits.KindText, Body: fmt.Sprint(i)})
		}
		st = openStream(t, url+"/events", patient, lastID)
		for len(got) < 14 {
			got = append(got, decode(t, st.next(t, messageEvents...)))
		}
		for i, m := range got {
			if i > 0 && m.Feed <= got[i-1].Feed {
				t.Fatalf("feed order: %+v after %+v", m, got[i-1])
			}
			if i >= 4 && m.Body != fmt.Sprint(i-4) {
				t.Fatalf("message %d: %+v", i, m)
			}
		}
	})
}

// TestNATSBus: two cloud processes (two services, each with its own hub,
// on one database and one NATS): a message posted through one reaches a
// stream open on the other at once, not at its next heartbeat.
func TestNATSBus(t *testing.T) {
	db := sqldbtest.SQLite(t)
	ctx := context.Background()
	b, err := broker.Start(broker.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	var svcs [2]*visits.Service
	for i := range svcs {
		nc, err := b.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		s := newService(t, db)
		s.Heartbeat = time.Hour
		bus, err := visits.NewNATSBus(nc, s.Hub, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		s.Bus = bus
		svcs[i] = s
	}
	url := streamServer(t, svcs[1])
	v := open(t, svcs[0], patient, doctor, time.Now())
	st := openStream(t, url+"/visits/"+v.ID+"/events", doctor, "")
	st.next(t, "opened")
	if _, err := svcs[0].Post(ctx, patient, v.ID, visits.MessageInput{Kind: visits.KindText, Body: "跨进程"}); err != nil {
		t.Fatal(err)
	}
	if m := decode(t, st.next(t, "message")); m.Body != "跨进程" {
		t.Fatalf("%+v", m)
	}
	st.close()
	deadline := time.Now().Add(5 * time.Second)
	for svcs[1].Hub.Listeners() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners left after the stream closed", svcs[1].Hub.Listeners())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
