package invoicing

import (
	"context"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/web"
)

// Authorizer checks that the request may use perm and returns the context to
// continue with (the appliance passes node.AuthorizeCLIOr).
type Authorizer = web.Authorizer

// Routes registers the read-only invoice API ("payments.read"):
//
//	GET /api/admin/invoices?payment={payment id}  the payment's invoice, with
//	    the QR text (qr_code) the patient pages and the kiosk show and print
//	GET /api/admin/invoices/stats                 the alarm counts (Stats)
func (s *Service) Routes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("GET /api/admin/invoices", "payments.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		id := strings.TrimSpace(r.URL.Query().Get("payment"))
		if id == "" {
			return ihos.Invalid(map[string]string{"payment": "请指定支付订单"})
		}
		v, err := s.ByPayment(ctx, id)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, v)
		return nil
	})
	handle("GET /api/admin/invoices/stats", "payments.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		st, err := s.Stats(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, st)
		return nil
	})
}
