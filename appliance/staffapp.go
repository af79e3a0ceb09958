package appliance

import (
	"context"
	"database/sql"
	"net/http"

	"ihos/staffauth"
	"ihos/sync"
)

// startStaffApp wires the console's 互联网诊疗账号 page and its API
// (开通互联网诊疗账号):
// the hospital grants a doctor or pharmacist access to the app on the cloud
// with an initial password shown once, or disables it. The grant is
// replicated to the cloud with the password's hash only.
func (a *App) startStaffApp(hospital string, mux *http.ServeMux) {
	s := staffauth.New(a.Node.DB, a.Node.Sealer)
	s.Hospital = hospital
	s.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
		return a.Replica.Capture(ctx, tx, hospital, refs...)
	}
	s.Committed = a.Link.Kick
	s.AdminRoutes(mux, a.Node.AuthorizeCLIOr)
	a.Console.AddPage(s.Page(a.Node.Auth))
}
