package cloud

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"ihos"
	"ihos/insurance/settle"
	"ihos/internal/node"
	"ihos/paychannel"
	"ihos/reconcile"
	"ihos/sync"
)

// ReconcileAtEnv sets when the nightly reconciliation runs, as HH:MM in
// Asia/Shanghai (default 02:00); "off" turns it off (runs on request only).
const ReconcileAtEnv = "IHOS_RECONCILE_AT"

// DefaultReconcileAt is when the nightly run reconciles the day before.
const DefaultReconcileAt = "02:00"

// startReconcile wires the daily three-way reconciliation (channel bill,
// insurance settlements with the centre's 3201 check, HIS postings) of every
// hospital: the admin API (read, run on demand, resolve), the RPC the
// appliances' consoles use (reconcile.run, reconcile.resolve), and the
// nightly run of the previous day. It runs until ctx ends. Errors are
// logged: the rest of the cloud works without reconciliation.
func startReconcile(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux) *reconcile.Reconciler {
	rec := newReconciler(n, a, channelBill(a))
	rec.AdminRoutes(mux, n.AuthorizeCLIOr)
	rec.RunRoutes(mux, n.AuthorizeCLIOr)
	if err := rec.ServeRPC(ctx, a.Link); err != nil {
		slog.Error("reconcile: cannot serve the consoles' RPC", "err", err)
	}
	at := strings.TrimSpace(os.Getenv(ReconcileAtEnv))
	if at == "" {
		at = DefaultReconcileAt
	}
	if at == "off" {
		slog.Info("reconcile: nightly run off (" + ReconcileAtEnv + "=off)")
		return rec
	}
	clock, err := time.Parse("15:04", at)
	if err != nil {
		slog.Error("reconcile: "+ReconcileAtEnv+" should be HH:MM (Asia/Shanghai) or off; using "+DefaultReconcileAt, "value", at)
		clock, _ = time.Parse("15:04", DefaultReconcileAt)
	}
	go rec.Nightly(ctx, clock.Hour(), clock.Minute())
	return rec
}

// newReconciler builds the reconciler over the cloud's database and link;
// bill is nil when no channel is configured.
func newReconciler(n *node.Node, a *App, bill func(context.Context, string) ([]paychannel.BillRow, error)) *reconcile.Reconciler {
	return &reconcile.Reconciler{
		DB: n.DB,
		Capture: func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, "", refs...) // "": each hospital's runs go to that hospital
		},
		AfterCommit: a.Link.Kick,
		Hospitals:   a.Hospitals.IDs,
		Bill:        bill,
		Statement: func(ctx context.Context, hospital, day string) (bool, string, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Minute) // 3201 per insurance type, over the insurance line
			defer cancel()
			st, err := settle.Remote{Link: a.Link}.Statement(ctx, hospital, day)
			if err != nil {
				return false, "", err
			}
			return st.Balanced, statementDetail(st), nil
		},
	}
}

// statementDetail says per insurance type what the centre answered.
func statementDetail(st settle.Statement) string {
	var parts []string
	for _, l := range st.Lines {
		s := fmt.Sprintf("险种 %s：%d 笔 ¥%s", l.Insutype, l.Count, ihos.FormatYuan(l.Total))
		if l.Balanced {
			s += " 平"
		} else {
			s += " 不平"
			if l.Description != "" {
				s += "（" + l.Description + "）"
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "；")
}

// channelBill is the bill download of the configured channel client; nil
// when no channel is configured.
func channelBill(a *App) func(context.Context, string) ([]paychannel.BillRow, error) {
	ch, ok := a.Payments.Channel.(*channel)
	if !ok {
		return nil
	}
	return ch.c.Bill
}
