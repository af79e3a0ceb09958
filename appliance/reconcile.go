package appliance

import (
	"net/http"

	"ihos/reconcile"
)

// startReconcile adds the console's 对账管理 and the read-only
// reconciliation API over the replica of this hospital's runs (the cloud
// reconciles and owns them); re-running a day and resolving a mismatch go to
// the cloud over the sync link (reconcile.run, reconcile.resolve). Call it
// before the console's routes are registered.
func (a *App) startReconcile(hospital string, mux *http.ServeMux) {
	rec := &reconcile.Reconciler{DB: a.Node.DB}
	rec.AdminRoutes(mux, a.Node.AuthorizeCLIOr)
	a.Console.AddPage(rec.Page(a.Node.Auth, reconcile.LinkRemote{Link: a.Link, Hospital: hospital}))
}
