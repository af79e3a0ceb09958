package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"ihos"
)

// RPC: calls that need the other side now (a HIS price lookup, an insurance
// pre-settlement, a slot confirmation, a sync digest) travel as NATS
// request/reply over the same link, on subjects
//
//	ihos.rpc.<hospital>.<side>.<method>
//
// where <side> is the side that answers. A call fails fast with an
// "unavailable" error when the link is down, never hangs.

// DefaultCallTimeout bounds a call when the context has no deadline.
const DefaultCallTimeout = 5 * time.Second

func rpcSubject(hospital string, side Side, method string) string {
	return "ihos.rpc." + hospital + "." + string(side) + "." + method
}

// Handler answers one RPC method. hospital is the caller's hospital (on the
// cloud, taken from the subject the request arrived on).
type Handler func(ctx context.Context, hospital string, req json.RawMessage) (any, error)

type rpcReply struct {
	Data    json.RawMessage   `json:"data,omitempty"`
	Code    string            `json:"code,omitempty"`
	Message string            `json:"message,omitempty"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// Serve answers method on this side: an appliance for its own hospital, the
// cloud for every hospital it links (on each hospital's own connection, so the
// caller's hospital is the account the request came from).
func (l *Link) Serve(method string, h Handler) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[method] = h
	for hospital, p := range l.peers {
		if err := l.subscribe(p, hospital, method, h); err != nil {
			return err
		}
	}
	return nil
}

func (l *Link) subscribe(p *peer, hospital, method string, h Handler) error {
	subject := rpcSubject(hospital, l.Replica.Side, method)
	// NATS runs a subscription's callbacks one at a time: one slow call (an
	// insurance centre taking seconds) would hold up every other call of the
	// method. Each request runs on its own goroutine, at most
	// MaxConcurrentCalls at once per method; beyond that the callback waits,
	// and NATS buffers (and, past its pending limits, drops: the caller then
	// sees a timeout, an unknown outcome it already handles).
	sem := make(chan struct{}, MaxConcurrentCalls)
	_, err := p.nc.QueueSubscribe(subject, "rpc", func(m *nats.Msg) {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			l.answer(m, hospital, method, h)
		}()
	})
	if err != nil {
		return fmt.Errorf("sync: serve %s: %w", method, err)
	}
	return p.nc.Flush()
}

// MaxConcurrentCalls bounds the requests of one RPC method answered at once.
const MaxConcurrentCalls = 64

// answer runs h for one request and sends its reply.
func (l *Link) answer(m *nats.Msg, hospital, method string, h Handler) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCallTimeout)
	defer cancel()
	out, err := h(ctx, hospital, json.RawMessage(m.Data))
	var reply rpcReply
	if err != nil {
		var e *ihos.Error
		if !errors.As(err, &e) {
			slog.ErrorContext(ctx, "rpc handler failed", "method", method, "hospital", hospital, "err", err)
			e = ihos.Internal(err)
		}
		reply = rpcReply{Code: e.Code, Message: e.Message, Fields: e.Fields}
	} else if reply.Data, err = json.Marshal(out); err != nil {
		reply = rpcReply{Code: ihos.EInternal, Message: ihos.Internal(err).Message}
	}
	b, _ := json.Marshal(reply)
	m.Respond(b)
}

// Call invokes method on the other side for hospital and decodes the answer
// into out. When nobody answers (the link is down, or the other side is not
// running) it returns an ihos.EUnavailable error with a message fit for staff.
func (l *Link) Call(ctx context.Context, hospital, method string, in, out any) error {
	other := Cloud
	if l.Replica.Side == Cloud {
		other = Appliance
	}
	req, err := json.Marshal(in)
	if err != nil {
		return ihos.Internal(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	p, err := l.peer(hospital)
	var m *nats.Msg
	if err == nil {
		m, err = p.nc.RequestWithContext(ctx, rpcSubject(hospital, other, method), req)
	}
	if err != nil {
		msg := "云端服务暂时无法连接，请稍后再试"
		if other == Appliance {
			msg = "医院系统暂时无法连接，请稍后再试"
		}
		return &ihos.Error{Code: ihos.EUnavailable, Message: msg, Err: err}
	}
	var reply rpcReply
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		return ihos.Internal(fmt.Errorf("rpc %s: bad reply: %w", method, err))
	}
	if reply.Code != "" {
		return &ihos.Error{Code: reply.Code, Message: reply.Message, Fields: reply.Fields}
	}
	if out != nil {
		if err := json.Unmarshal(reply.Data, out); err != nil {
			return ihos.Internal(fmt.Errorf("rpc %s: decode reply: %w", method, err))
		}
	}
	return nil
}
