package appliance

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"

	"ihos/einvoice"
	"ihos/invoicing"
	"ihos/sync"
)

// EInvoiceConfig is the hospital's account at the finance e-invoice platform
// (财政电子票据平台), issued by the finance bureau. Without a URL no invoice
// is issued (the worker does not run); the invoice API still answers.
type EInvoiceConfig struct {
	// URL is the service prefix (einvoice.Client.BaseURL), e.g.
	// http://10.1.2.3:8081/medical-web/api/medical/; the simulator's is its
	// address + /api/medical/.
	URL       string `json:"url" env:"IHOS_EINVOICE_URL"`
	AppID     string `json:"appid" env:"IHOS_EINVOICE_APPID"`
	Key       string `json:"key" env:"IHOS_EINVOICE_KEY"` // signing key: a secret
	PlaceCode string `json:"place_code" env:"IHOS_EINVOICE_PLACE_CODE"`
	// Payee is the 收费员 and 票据编制人 on every bill; default "互联网医院".
	Payee string `json:"payee" env:"IHOS_EINVOICE_PAYEE"`
}

// startInvoicing registers the invoice API and, when the platform is
// configured, starts the worker that issues and writes off invoices.
func (a *App) startInvoicing(ctx context.Context, cfg Config, mux *http.ServeMux) *invoicing.Service {
	ec := cfg.EInvoice
	hospital := cfg.HospitalID
	svc := &invoicing.Service{DB: a.Node.DB, Hospital: hospital, PlaceCode: ec.PlaceCode, Payee: ec.Payee,
		AfterCommit: a.Link.Kick}
	if svc.PlaceCode == "" {
		svc.PlaceCode = "001"
	}
	if svc.Payee == "" {
		svc.Payee = "互联网医院"
	}
	// Invoices replicate to the cloud once the entity is registered on both
	// sides; until then they are kept here only.
	if _, ok := a.Replica.Entities.Entity("invoices"); ok {
		svc.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, hospital, refs...)
		}
	} else {
		slog.Warn("invoices are not a registered sync entity: they stay on the appliance")
	}
	svc.Routes(mux, a.Node.AuthorizeCLIOr)
	if ec.URL == "" {
		slog.Info("finance e-invoice platform not configured (einvoice.url): no e-invoices are issued")
		return svc
	}
	svc.Platform = &einvoice.Client{BaseURL: ec.URL, AppID: ec.AppID, Key: ec.Key, Logger: slog.Default()}
	a.devices.Go(func() { svc.Run(ctx) })
	return svc
}
