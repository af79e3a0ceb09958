package cloud

import (
	"context"
	"database/sql"
	"net/http"

	"ihos/billpay"
	"ihos/sync"
)

// startBillpay wires 诊间支付 (package billpay) on the payment service:
// the payer's API GET/POST /api/pay/bills, with the same access as
// /api/pay/orders, and the RPC the hospitals' kiosks create and follow their
// payments through. The fees are read from the hospital's HIS through its
// appliance; the items of each payment replicate to it, and its poster tells
// the HIS once the payment is paid.
func startBillpay(a *App, mux *http.ServeMux) error {
	bp := &billpay.Cloud{DB: a.Node.DB, Payments: a.Payments, HIS: billpay.LinkFees{Link: a.Link},
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each row goes to its own hospital
		},
		AfterCommit: a.Link.Kick, Known: a.Hospitals.Known}
	bp.Routes(mux, a.Node.AuthorizeCLIOr)
	return bp.ServeRPC(a.Link)
}
