package hissim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"ihos/his/hl7"
	"ihos/his/mllp"
)

// startSim starts a simulator on a fresh (or the given) data directory; it
// closes with the test.
func startSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client returns an MLLP client of the simulator, closed with the test.
func client(t *testing.T, s *Sim) *mllp.Client {
	t.Helper()
	c := &mllp.Client{Addr: s.MLLPAddr(), ReplyTimeout: 10 * time.Second}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *mllp.Client, m *hl7.Message) *hl7.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	reply, err := c.Send(ctx, m)
	if err != nil {
		t.Fatalf("send %s: %v", m.ControlID(), err)
	}
	return reply
}

func wantAck(t *testing.T, reply *hl7.Message, code string) {
	t.Helper()
	if got := reply.Get("MSA-1"); got != code {
		t.Fatalf("MSA-1 = %q (%s %s), want %s", got, reply.Get("MSA-3"), reply.Get("ERR-3-1"), code)
	}
}

var idSeq struct {
	sync.Mutex
	n int
}

// newID returns a fresh control or placer id.
func newID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(idSeq.n)
}

type testPatient struct{ hisID, idNumber, card, name string }

var zhangSan = testPatient{"P000001", "110101199003078515", "1101A0000001", "张三"}

// message starts a message as the appliance writes one: MSH, EVN (for ADT,
// MDM, DFT), PID, PV1.
func message(typ, trigger, structure, controlID string, p testPatient, visitNo string) *hl7.Message {
	m := hl7.New(typ, trigger, structure, controlID)
	m.Set("MSH-5", "HIS")
	m.Set("MSH-6", "HIS")
	if typ == "ADT" || typ == "MDM" || typ == "DFT" {
		evn := m.Add("EVN")
		evn.Set("1", trigger)
		evn.Set("2", hl7.Timestamp(time.Now()))
	}
	pid := m.Add("PID")
	pid.Set("1", "1")
	rep := 1
	for _, id := range [][3]string{{p.hisID, "HIS", "PI"}, {p.idNumber, "CHN", "NNCHN"}, {p.card, "YB", "HC"}} {
		if id[0] == "" {
			continue
		}
		r := "3(" + strconv.Itoa(rep) + ")"
		pid.Set(r+"-1", id[0])
		pid.Set(r+"-4", id[1])
		pid.Set(r+"-5", id[2])
		rep++
	}
	pid.Set("5-1", p.name)
	pid.Set("8", "M")
	pv1 := m.Add("PV1")
	pv1.Set("1", "1")
	pv1.Set("2", "O")
	pv1.Set("3-1", "0301")
	pv1.Set("3-9", "心血管内科")
	pv1.Set("7-1", "D0301")
	pv1.Set("7-2", "王建国")
	pv1.Set("10", "ONLINE")
	pv1.Set("19", visitNo)
	pv1.Set("44", hl7.Timestamp(time.Now()))
	return m
}

type line struct{ placer, code, name string }

// orderMessage builds OMP^O09 (drugs), OML^O21 (labs) or OMG^O19 (exams).
func orderMessage(typ, controlID string, p testPatient, lines ...line) *hl7.Message {
	trigger := map[string]string{"OMP": "O09", "OML": "O21", "OMG": "O19", "ORM": "O01"}[typ]
	m := message(typ, trigger, typ+"_"+trigger, controlID, p, "V-"+controlID)
	for i, l := range lines {
		orc := m.Add("ORC")
		orc.Set("1", "NW")
		orc.Set("2", l.placer)
		orc.Set("9", hl7.Timestamp(time.Now()))
		orc.Set("12-1", "D0301")
		orc.Set("12-2", "王建国")
		orc.Set("17-1", "0301")
		if typ == "OMP" {
			rxo := m.Add("RXO")
			rxo.Set("1-1", l.code)
			rxo.Set("1-2", l.name)
			rxo.Set("2", "30")
			rxo.Set("4-1", "mg")
			rxo.Set("7-2", "每日一次")
			rxo.Set("9", "N")
			rxo.Set("11", "2")
			rxo.Set("12-1", "盒")
			rxo.Set("13", "0")
			m.Add("RXR").Set("1-2", "口服")
			continue
		}
		obr := m.Add("OBR")
		obr.Set("1", strconv.Itoa(i+1))
		obr.Set("2", l.placer)
		obr.Set("4-1", l.code)
		obr.Set("4-2", l.name)
		obr.Set("13", "高血压复诊")
		obr.Set("16-1", "D0301")
		obr.Set("16-2", "王建国")
	}
	return m
}

// query builds a QBP.
func query(trigger, structure, name string, params ...string) *hl7.Message {
	m := hl7.New("QBP", trigger, structure, newID("Q"))
	qpd := m.Add("QPD")
	qpd.Set("1", name)
	if n, label, ok := cutCaret(name); ok {
		qpd.Set("1-1", n)
		qpd.Set("1-2", label)
	}
	qpd.Set("2", m.ControlID())
	for i, p := range params {
		qpd.Set(strconv.Itoa(3+i), p)
	}
	m.Add("RCP").Set("1", "I")
	return m
}

func cutCaret(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '^' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func pdq(value, typ string) *hl7.Message {
	m := hl7.New("QBP", "Q22", "QBP_Q21", newID("Q"))
	qpd := m.Add("QPD")
	qpd.Set("1", "IHE PDQ Query")
	qpd.Set("2", m.ControlID())
	qpd.Set("3(1)-1", "@PID.3.1")
	qpd.Set("3(1)-2", value)
	qpd.Set("3(2)-1", "@PID.3.5")
	qpd.Set("3(2)-2", typ)
	m.Add("RCP").Set("1", "I")
	return m
}

// HTTP helpers.

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

func postJSON(t *testing.T, url string, v any, into any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("POST %s: %v in %s", url, err, body)
		}
	}
	return resp.StatusCode
}

// resultSink is an MLLP listener standing in for the appliance: it records
// every message and acknowledges it with code (AA unless set).
type resultSink struct {
	mu   sync.Mutex
	msgs []*hl7.Message
	code string
	got  chan struct{}
	srv  *mllp.Server
	addr string
}

func newSink(t *testing.T, addr string) *resultSink {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	k := &resultSink{code: "AA", got: make(chan struct{}, 100), addr: l.Addr().String()}
	k.srv = &mllp.Server{Handler: func(ctx context.Context, m *hl7.Message) *hl7.Message {
		k.mu.Lock()
		k.msgs = append(k.msgs, m)
		code := k.code
		k.mu.Unlock()
		k.got <- struct{}{}
		return hl7.Ack(m, code, "", "")
	}}
	go k.srv.Serve(l)
	t.Cleanup(func() { k.srv.Close() })
	return k
}

func (k *resultSink) messages() []*hl7.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]*hl7.Message(nil), k.msgs...)
}

// wait waits until the sink holds n messages.
func (k *resultSink) wait(t *testing.T, n int, within time.Duration) []*hl7.Message {
	t.Helper()
	deadline := time.After(within)
	for {
		if msgs := k.messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-k.got:
		case <-deadline:
			t.Fatalf("the sink got %d messages, want %d", len(k.messages()), n)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// past drops today's demo registrations (they have a queue number) from a
// visit list, leaving the history the demo data was seeded with.
func past(vs []visitRow, err error) []visitRow {
	if err != nil {
		panic(err)
	}
	var out []visitRow
	for _, v := range vs {
		if v.QueueNo == "" {
			out = append(out, v)
		}
	}
	return out
}
