package settle

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"ihos"
	"ihos/insurance/mobile"
)

// NotifyPath is where the mobile centre posts 6302 notifies on the
// appliance.
const NotifyPath = "/api/insurance/mobile/notify"

// Routes registers the 6302 notify endpoint. It needs no session: the
// centre's SM2 signature is the authentication (mobile.Client verifies it
// and refuses, and logs, forged, stale and replayed notifies).
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("POST "+NotifyPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.mobile()
		if err != nil {
			http.Error(w, ihos.ErrorMessage(err), http.StatusServiceUnavailable)
			return
		}
		c.NotifyHandler(s.applyNotify).ServeHTTP(w, r)
	}))
}

// applyNotify books a verified 6302 notify on its settle row, once: the
// order must be one of ours and the amounts those of the order. Then the
// cloud is told (best effort; its resolver would find out by query anyway).
func (s *Service) applyNotify(ctx context.Context, n mobile.Notify) error {
	var key string
	err := s.DB.QueryRowContext(ctx, `SELECT leg_key FROM insurance_settlements WHERE kind = ? AND channel = ? AND setl_id = ? AND deleted_at IS NULL`,
		KindSettle, ihos.ChannelInsuranceMobile, n.PayOrdID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return ihos.Errorf(ihos.ENotFound, "医保支付订单不存在")
	}
	if err != nil {
		return ihos.Internal(err)
	}
	unlock := s.lock(key)
	r, err := s.byKey(ctx, key)
	if err != nil || r == nil {
		unlock()
		return ihos.Internal(errors.Join(err, errors.New("settle: row vanished")))
	}
	split := ihos.Split{Fund: int64(n.FundPay), Account: int64(n.PsnAcctPay), Cash: int64(n.OwnPayAmt)}
	switch r.Status {
	case StatusSettled, StatusRefunded:
		unlock()
		if r.Split != split || int64(n.FeeSumamt) != r.Total {
			return ihos.Errorf(ihos.EConflict, "医保结算通知金额与已结算金额不符")
		}
		return nil // told before
	case StatusPending:
	default:
		unlock()
		return ihos.Errorf(ihos.EConflict, "医保支付订单状态为%s，不能按通知结算", r.Status)
	}
	if err := s.mobileSettled(r, int64(n.FeeSumamt), split); err != nil {
		unlock()
		return err
	}
	var st mobileState
	if decode(r, &st) == nil {
		st.OrdStas = "6"
		encode(r, st)
	}
	err = s.save(ctx, r)
	unlock()
	if err != nil {
		return err
	}
	s.tellCloud(r.PaymentID)
	return nil
}

// tellCloud asks the cloud to resolve a payment now, in the background.
func (s *Service) tellCloud(paymentID string) {
	if s.Link == nil || paymentID == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Link.Call(ctx, s.Hospital, RPCResolve, ResolveRequest{PaymentID: paymentID}, nil); err != nil {
			s.log().Info("settle: cloud not told of a settled payment (its resolver will find it)", "payment", paymentID, "err", err)
		}
	}()
}
