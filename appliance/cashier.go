package appliance

import (
	"context"
	"time"

	"ihos"
	"ihos/billpay"
	"ihos/insurance/settle"
	"ihos/invoicing"
	"ihos/kiosk"
	"ihos/payments"
	"ihos/sync"
)

// cashier takes the kiosk's payments (kiosk.Cashier): the insurance
// pre-settlement of the 展码 e-voucher runs here, on the hospital's insurance
// line (package settle); the payment itself is the cloud's (billpay.create,
// payments.get, payments.cancel over the sync link), since the cash leg is an
// internet channel order and every payment has one record (decision 0012).
// With the link down the kiosk says the payment service is unavailable
// rather than taking money it could not record.
type cashier struct {
	hospital string
	link     *sync.Link
	settle   *settle.Service    // nil: insurance not connected, self-pay only
	invoices *invoicing.Service // the e-invoices issued here
}

// callTimeout bounds one call to the cloud: the insurance leg of a payment
// (2207 back on this appliance) may take a few seconds.
const cashierCallTimeout = 20 * time.Second

func (c cashier) Quote(ctx context.Context, q kiosk.QuoteRequest) (kiosk.Quote, error) {
	if q.ECToken == "" {
		return kiosk.Quote{Total: q.Total, Split: ihos.Split{Cash: q.Total}}, nil
	}
	if c.settle == nil {
		return kiosk.Quote{}, ihos.Errorf(ihos.EUnavailable, "本机未接入医保，请选择自费支付")
	}
	quote, err := c.settle.Quote(ctx, settle.QuoteRequest{Channel: ihos.ChannelInsuranceSite, HospitalID: c.hospital,
		ECToken: q.ECToken, HISPatientID: q.HISPatientID, Fees: q.Fees, Total: q.Total})
	if err != nil {
		return kiosk.Quote{}, err
	}
	return kiosk.Quote{ID: quote.ID, Total: quote.Total, Split: quote.Split, ExpiresAt: quote.ExpiresAt}, nil
}

func (c cashier) Pay(ctx context.Context, p kiosk.PayRequest) (kiosk.Started, error) {
	req := billpay.CreateRequest{HospitalID: c.hospital, HISPatientID: p.HISPatientID, FeeIDs: p.FeeIDs,
		Channel: ihos.ChannelSelfPay, Source: billpay.SourceKiosk}
	if p.QuoteID != "" {
		split := p.Split
		req.Channel, req.PreSettlement = ihos.ChannelInsuranceSite, &split
		req.Auth = map[string]string{"quote_id": p.QuoteID}
	}
	ctx, cancel := context.WithTimeout(ctx, cashierCallTimeout)
	defer cancel()
	var res payments.PayResult
	if err := c.link.Call(ctx, c.hospital, billpay.RPCCreate, req, &res); err != nil {
		return kiosk.Started{}, err
	}
	if res.Payment == nil {
		return kiosk.Started{}, ihos.Errorf(ihos.EUnavailable, "支付服务没有返回订单，请稍后再试")
	}
	st := kiosk.Started{PaymentID: res.Payment.ID, Status: res.Payment.Status, Split: res.Payment.Split(),
		Deadline: res.Payment.Deadline}
	if res.Prepay != nil {
		st.CodeURL = res.Prepay.CodeURL
	}
	return st, nil
}

func (c cashier) Status(ctx context.Context, paymentID string) (ihos.Payment, error) {
	var p ihos.Payment
	err := c.link.Call(ctx, c.hospital, billpay.RPCGet, map[string]any{"payment_id": paymentID, "refresh": true}, &p)
	return p, err
}

func (c cashier) Cancel(ctx context.Context, paymentID string) (ihos.Payment, error) {
	ctx, cancel := context.WithTimeout(ctx, cashierCallTimeout)
	defer cancel()
	var p ihos.Payment
	err := c.link.Call(ctx, c.hospital, billpay.RPCCancel, map[string]any{"payment_id": paymentID, "reason": "自助机取消"}, &p)
	return p, err
}

func (c cashier) Invoice(ctx context.Context, paymentID string) (kiosk.Invoice, error) {
	inv, err := c.invoices.ByPayment(ctx, paymentID)
	if err != nil || inv.Status != invoicing.StatusIssued {
		// The patient is waiting at the kiosk for this bill: the worker
		// looks now rather than at its next round (the paid payment's
		// replica may have just arrived).
		c.invoices.Kick()
	}
	if err != nil {
		return kiosk.Invoice{}, err
	}
	return kiosk.Invoice{Status: inv.Status, BillCode: inv.BillBatchCode, BillNo: inv.BillNo, CheckCode: inv.Random,
		QRCode: inv.QRCode, IssuedAt: inv.IssuedAt, Payee: c.invoices.Payee}, nil
}

var _ kiosk.Cashier = cashier{}
