package cloudtest

import (
	"context"
	"encoding/hex"
	"fmt"
	stdsync "sync"

	"ihos"
	"ihos/certs"
	"ihos/his"
)

// SignPIN is the PIN Signer accepts.
const SignPIN = "246810"

// Signer is a deterministic stand-in for the doctor's e-signature, which
// lives on the appliance (reached over the sync RPC, not connected in these
// tests; package prescriptions tests the real one with certs/esign): PIN
// SignPIN, "FAKE-SIG:", the staff id and the SM3 of the document.
type Signer struct{}

func (Signer) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	if pin != SignPIN {
		return nil, ihos.Errorf(ihos.EForbidden, "签名密码错误")
	}
	sum := certs.SM3Sum(doc)
	return []byte("FAKE-SIG:" + staffID + ":" + hex.EncodeToString(sum[:])), nil
}

// HIS stands in for the hospital's HIS receiving orders (over the sync RPC):
// it queues every line and records the requests.
type HIS struct {
	mu   stdsync.Mutex
	reqs []his.OrderRequest
}

func (h *HIS) PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, req)
	var out []his.Order
	for i, it := range req.Items {
		out = append(out, his.Order{ID: fmt.Sprintf("%s-%d", req.Key, i), Kind: req.Kind, Code: it.Code, Status: his.OrderQueued})
	}
	return out, nil
}

// Requests are the orders placed so far.
func (h *HIS) Requests() []his.OrderRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]his.OrderRequest(nil), h.reqs...)
}
