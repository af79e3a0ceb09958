package cloud

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"ihos"
	"ihos/accounts"
	"ihos/his"
	"ihos/insurance/settle"
	"ihos/internal/web"
	"ihos/payments"
)

// The insurance legs of payments run on each hospital's appliance (it holds
// the insurance line, docs/decisions/0012); the cloud reaches them through
// settle.Remote over the sync RPC. This file adds the phone's quote (the
// pre-settlement shown before paying), the day's 3201 check for the
// reconciliation console, and the appliance's call back after a 6302 notify.

// insuranceAPI serves the insurance routes of the cloud.
type insuranceAPI struct {
	remote    settle.Remote
	svc       *payments.Service
	hospitals *Hospitals
}

// QuoteRequest is the body of POST /api/pay/insurance/quote: the phone
// asks what the insurance pays before the patient decides. Channel defaults
// to insurance_mobile (the phone's); Fees are optional (one line of Amount).
type QuoteRequest struct {
	HospitalID   string        `json:"hospital_id"`
	PatientID    string        `json:"patient_id"`
	Channel      string        `json:"channel"`
	PayAuthNo    string        `json:"pay_auth_no"`
	UldLatlnt    string        `json:"uld_latlnt"`
	ECToken      string        `json:"ec_token"`
	HISPatientID string        `json:"his_patient_id"`
	Amount       int64         `json:"amount"` // fen
	Fees         []ihos.HISFee `json:"fees"`
	NoAccount    bool          `json:"no_account"`
}

// routes registers the phone's quote (a patient session for the account's
// members, or staff) and the console's statement (staff only).
func (a insuranceAPI) routes(mux *http.ServeMux, pa patientAuth) {
	authorize := pa.staff
	mux.Handle("POST /api/pay/insurance/quote", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, pt, err := pa.authorize(r, "payments.write")
		if err != nil {
			return err
		}
		var req QuoteRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if pt != nil {
			if req, err = a.patientQuote(ctx, pa, pt, req); err != nil {
				return err
			}
		}
		q, err := a.quote(ctx, req)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, q)
		return nil
	}))
	mux.Handle("GET /api/admin/insurance/statement", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := authorize(r, "payments.read")
		if err != nil {
			return err
		}
		hospital := r.URL.Query().Get("hospital_id")
		if !a.hospitals.Known(hospital) {
			return ihos.Invalid(map[string]string{"hospital_id": "医院不存在或未启用"})
		}
		st, err := a.remote.Statement(ctx, hospital, r.URL.Query().Get("day"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, st)
		return nil
	}))
}

// patientQuote fills and checks a patient's quote request: their hospital,
// one of their members (the holder by default) and, if a HIS record is
// named, that member's linked one (by default the member's link, if any).
func (a insuranceAPI) patientQuote(ctx context.Context, pa patientAuth, pt *accounts.Patient, req QuoteRequest) (QuoteRequest, error) {
	var err error
	if req.HospitalID, err = hospital(pt, req.HospitalID); err != nil {
		return req, err
	}
	m, err := pa.member(ctx, pt, req.PatientID)
	if err != nil {
		return req, err
	}
	req.PatientID = m.PatientID
	linked := m.LinkStatus == his.LinkLinked
	switch h := strings.TrimSpace(req.HISPatientID); {
	case h == "" && linked:
		req.HISPatientID = m.HISPatientID
	case h != "" && (!linked || h != m.HISPatientID):
		return req, errHISNotLinked
	}
	return req, nil
}

// quote asks the hospital's appliance for a pre-settlement.
func (a insuranceAPI) quote(ctx context.Context, req QuoteRequest) (settle.Quote, error) {
	req.HospitalID = strings.TrimSpace(req.HospitalID)
	if req.HospitalID == "" || !a.hospitals.Known(req.HospitalID) {
		return settle.Quote{}, ihos.Invalid(map[string]string{"hospital_id": "医院不存在或未启用"})
	}
	if req.Channel == "" {
		req.Channel = ihos.ChannelInsuranceMobile
	}
	if req.Channel != ihos.ChannelInsuranceMobile && req.Channel != ihos.ChannelInsuranceSite {
		return settle.Quote{}, ihos.Invalid(map[string]string{"channel": "医保支付方式无效"})
	}
	return a.remote.Quote(ctx, req.HospitalID, settle.QuoteRequest{Channel: req.Channel, HospitalID: req.HospitalID, PatientID: req.PatientID,
		ECToken: req.ECToken, PayAuthNo: req.PayAuthNo, UldLatlnt: req.UldLatlnt, HISPatientID: req.HISPatientID,
		Fees: req.Fees, Total: req.Amount, NoAccount: req.NoAccount})
}

// serveResolve answers the appliance's settle.RPCResolve: a 6302 notify
// completed a payment's insurance leg, so the payment moves on now instead
// of at the resolver's next query. Only the hospital's own payments.
func (a insuranceAPI) serveResolve() error {
	return a.remote.Link.Serve(settle.RPCResolve, func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
		var req settle.ResolveRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.PaymentID == "" {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少支付订单号")
		}
		p, err := a.svc.Get(ctx, req.PaymentID)
		if err != nil {
			return nil, err
		}
		if p.HospitalID != hospital {
			return nil, ihos.Errorf(ihos.ENotFound, "支付订单不存在")
		}
		if p, err = a.svc.Resolve(ctx, p.ID); err != nil {
			return nil, err
		}
		return map[string]string{"status": p.Status}, nil
	})
}

// insuranceQuote is the quote an insurance order pays: read back from the
// appliance, never taken from the client, and checked against the order.
func (a payAPI) insuranceQuote(ctx context.Context, req OrderRequest) (settle.Quote, error) {
	if a.insurance == nil {
		return settle.Quote{}, ihos.Errorf(ihos.EUnavailable, "医保支付暂不可用")
	}
	if strings.TrimSpace(req.QuoteID) == "" {
		return settle.Quote{}, ihos.Invalid(map[string]string{"quote_id": "请先获取医保预结算"})
	}
	q, err := a.insurance.GetQuote(ctx, req.HospitalID, req.QuoteID)
	if err != nil {
		return settle.Quote{}, err
	}
	switch {
	case q.Channel != req.Channel:
		return settle.Quote{}, ihos.Invalid(map[string]string{"quote_id": "医保预结算与支付方式不符"})
	case q.PatientID != "" && q.PatientID != req.PatientID:
		return settle.Quote{}, ihos.Invalid(map[string]string{"quote_id": "医保预结算不属于该患者"})
	case req.Amount != 0 && req.Amount != q.Total:
		return settle.Quote{}, ihos.Invalid(map[string]string{"amount": "金额与医保预结算不一致"})
	}
	return q, nil
}
