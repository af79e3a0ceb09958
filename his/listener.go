package his

import (
	"context"
	"net"
	"sync"
	"time"

	"ihos"
	"ihos/his/hl7"
	"ihos/his/mllp"
)

// Listener receives what the HIS sends on its own initiative (results and
// order status, ORU^R01) over MLLP and answers each message on the same
// connection once it is stored.
type Listener struct {
	Service *Service
	Observe func(context.Context, Exchange)

	mu     sync.Mutex // guards server and closed: Serve runs in its own goroutine
	server *mllp.Server
	closed bool
}

// Serve accepts HIS connections on l until Close. After Close it closes l
// and returns at once.
func (li *Listener) Serve(l net.Listener) error {
	li.mu.Lock()
	if li.closed {
		li.mu.Unlock()
		l.Close()
		return nil
	}
	srv := &mllp.Server{Handler: li.handle}
	li.server = srv
	li.mu.Unlock()
	return srv.Serve(l)
}

// Close stops the listener.
func (li *Listener) Close() error {
	li.mu.Lock()
	defer li.mu.Unlock()
	li.closed = true
	if li.server == nil {
		return nil
	}
	return li.server.Close()
}

func (li *Listener) handle(ctx context.Context, m *hl7.Message) *hl7.Message {
	start := time.Now()
	typ, trigger, _ := m.Type()
	var reply *hl7.Message
	switch typ + "^" + trigger {
	case "ORU^R01":
		err := li.Service.StoreResult(ctx, ParseResult(m))
		switch {
		case err == nil:
			reply = hl7.Ack(m, ihos.AckAccepted, "", "")
		case ihos.ErrorCode(err) == ihos.EInternal:
			li.Service.logger().Error("his: store result", "err", err, "control_id", m.ControlID())
			reply = hl7.Ack(m, ihos.AckError, "应用内部错误，请稍后重发", "207")
		default:
			reply = hl7.Ack(m, ihos.AckError, ihos.ErrorMessage(err), "204")
		}
	default:
		reply = hl7.Ack(m, ihos.AckRejected, "不支持的消息类型 "+typ+"^"+trigger, "200")
	}
	if li.Observe != nil {
		ex := Exchange{At: start, Direction: "in", Type: typ + "^" + trigger, ControlID: m.ControlID(), Elapsed: time.Since(start)}
		if raw, err := m.Encode(); err == nil {
			ex.Request = string(raw)
		}
		if raw, err := reply.Encode(); err == nil {
			ex.Response = string(raw)
		}
		ex.AckCode, ex.AckText = ackOf(reply)
		li.Observe(ctx, ex)
	}
	return reply
}

// ParseResult reads an ORU^R01 as the profile describes it.
func ParseResult(m *hl7.Message) ihos.HISResult {
	r := ihos.HISResult{
		ControlID:     m.ControlID(),
		PlacerOrderNo: or(m.Get("ORC-2"), m.Get("OBR-2")),
		FillerOrderNo: or(m.Get("ORC-3"), m.Get("OBR-3")),
		OrderStatus:   m.Get("ORC-5"),
		ResultStatus:  m.Get("OBR-25"),
		ServiceCode:   m.Get("OBR-4-1"),
		ServiceName:   m.Get("OBR-4-2"),
		ReportedAt:    hl7.ParseTimestamp(m.Get("OBR-22")),
	}
	if pid := m.Segment("PID"); pid != nil {
		r.PatientHISID = readPatient(pid).HISID
	}
	for _, obx := range m.All("OBX") {
		r.Observations = append(r.Observations, ihos.HISObservation{Type: obx.Get("2"), Code: obx.Get("3-1"), Name: obx.Get("3-2"),
			Value: obx.Get("5"), Units: obx.Get("6-1"), Range: obx.Get("7"), Flag: obx.Get("8")})
	}
	return r
}
