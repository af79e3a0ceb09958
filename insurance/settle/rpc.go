package settle

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/payments"
	"ihos/sync"
)

// RPC methods the appliance serves to the cloud (ServeRPC), and the one the
// cloud serves to the appliance (RPCResolve).
const (
	RPCQuote     = "insurance.quote"     // QuoteRequest → Quote
	RPCQuoteGet  = "insurance.quote.get" // {"quote_id"} → Quote
	RPCSettle    = "insurance.settle"    // payments.InsuranceOrder → payments.InsuranceResult
	RPCQuery     = "insurance.query"     // {"key"} → payments.InsuranceResult
	RPCRefund    = "insurance.refund"    // payments.InsuranceRefund → payments.InsuranceResult
	RPCReverse   = "insurance.reverse"   // {"key"} → {}
	RPCStatement = "insurance.statement" // {"day"} → Statement
	// RPCResolve asks the cloud to move a payment on now ({"payment_id"}):
	// sent after a 6302 notify completed its insurance leg.
	RPCResolve = "payments.resolve"
)

// KeyRequest names a leg by its key.
type KeyRequest struct {
	Key string `json:"key"`
}

// ResolveRequest is the body of RPCResolve.
type ResolveRequest struct {
	PaymentID string `json:"payment_id"`
}

func decodeReq(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return ihos.Errorf(ihos.EInvalid, "请求格式错误")
	}
	return nil
}

// ServeRPC answers the cloud's calls for insurance legs on l.
func (s *Service) ServeRPC(l *sync.Link) error {
	serve := func(method string, h func(ctx context.Context, raw json.RawMessage) (any, error)) error {
		return l.Serve(method, func(ctx context.Context, _ string, raw json.RawMessage) (any, error) { return h(ctx, raw) })
	}
	for method, h := range map[string]func(ctx context.Context, raw json.RawMessage) (any, error){
		RPCQuote: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req QuoteRequest
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.Quote(ctx, req)
		},
		RPCQuoteGet: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req struct {
				QuoteID string `json:"quote_id"`
			}
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.GetQuote(ctx, req.QuoteID)
		},
		RPCSettle: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req payments.InsuranceOrder
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.Settle(ctx, req)
		},
		RPCQuery: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req KeyRequest
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.Query(ctx, req.Key)
		},
		RPCRefund: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req payments.InsuranceRefund
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.Refund(ctx, req)
		},
		RPCReverse: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req KeyRequest
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return struct{}{}, s.Reverse(ctx, req.Key)
		},
		RPCStatement: func(ctx context.Context, raw json.RawMessage) (any, error) {
			var req struct {
				Day string `json:"day"`
			}
			if err := decodeReq(raw, &req); err != nil {
				return nil, err
			}
			return s.Statement(ctx, req.Day)
		},
	} {
		if err := serve(method, h); err != nil {
			return err
		}
	}
	return nil
}

// Remote is payments.Insurance in the cloud: every call goes to the
// hospital's appliance over the sync RPC. An error — the link down, no
// answer in time — leaves the outcome unknown, as the payment service
// expects; it asks again by key.
type Remote struct {
	Link *sync.Link
	DB   *sqldb.DB // the cloud's: the hospital of a key is read from payments and refunds
}

var _ payments.Insurance = Remote{}

// hospital finds the hospital of a settlement or refund key.
func (r Remote) hospital(ctx context.Context, key string) (string, error) {
	var h string
	err := r.DB.QueryRowContext(ctx, `SELECT hospital_id FROM payments WHERE insurance_key = ?`, key).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		err = r.DB.QueryRowContext(ctx, `SELECT hospital_id FROM refunds WHERE out_refund_no = ?`, key).Scan(&h)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", ihos.Errorf(ihos.ENotFound, "医保结算编号不存在")
	}
	if err != nil {
		return "", ihos.Internal(err)
	}
	if h == "" {
		return "", ihos.Errorf(ihos.EConflict, "医保结算没有所属医院")
	}
	return h, nil
}

// Settle implements payments.Insurance.
func (r Remote) Settle(ctx context.Context, o payments.InsuranceOrder) (payments.InsuranceResult, error) {
	h := o.HospitalID
	if h == "" {
		var err error
		if h, err = r.hospital(ctx, o.Key); err != nil {
			return payments.InsuranceResult{}, err
		}
	}
	var out payments.InsuranceResult
	err := r.Link.Call(ctx, h, RPCSettle, o, &out)
	return out, err
}

// Query implements payments.Insurance.
func (r Remote) Query(ctx context.Context, key string) (payments.InsuranceResult, error) {
	h, err := r.hospital(ctx, key)
	if err != nil {
		return payments.InsuranceResult{}, err
	}
	var out payments.InsuranceResult
	err = r.Link.Call(ctx, h, RPCQuery, KeyRequest{Key: key}, &out)
	return out, err
}

// Refund implements payments.Insurance.
func (r Remote) Refund(ctx context.Context, rf payments.InsuranceRefund) (payments.InsuranceResult, error) {
	h, err := r.hospital(ctx, rf.PaymentKey)
	if err != nil {
		return payments.InsuranceResult{}, err
	}
	var out payments.InsuranceResult
	err = r.Link.Call(ctx, h, RPCRefund, rf, &out)
	return out, err
}

// Reverse implements payments.Insurance.
func (r Remote) Reverse(ctx context.Context, key string) error {
	h, err := r.hospital(ctx, key)
	if err != nil {
		return err
	}
	return r.Link.Call(ctx, h, RPCReverse, KeyRequest{Key: key}, nil)
}

// Quote asks the hospital's appliance for a pre-settlement.
func (r Remote) Quote(ctx context.Context, hospital string, req QuoteRequest) (Quote, error) {
	var q Quote
	err := r.Link.Call(ctx, hospital, RPCQuote, req, &q)
	return q, err
}

// GetQuote reads a quote back from the hospital's appliance.
func (r Remote) GetQuote(ctx context.Context, hospital, id string) (Quote, error) {
	var q Quote
	err := r.Link.Call(ctx, hospital, RPCQuoteGet, map[string]string{"quote_id": id}, &q)
	return q, err
}

// Statement asks the hospital's appliance for a day's 3201 check.
func (r Remote) Statement(ctx context.Context, hospital, day string) (Statement, error) {
	var st Statement
	err := r.Link.Call(ctx, hospital, RPCStatement, map[string]string{"day": day}, &st)
	return st, err
}
