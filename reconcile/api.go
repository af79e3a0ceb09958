package reconcile

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/web"
	"ihos/sync"
)

// RunsPage is GET /api/admin/reconcile/runs: the runs of a day.
type RunsPage struct {
	Day  string `json:"day"`
	Runs []Run  `json:"runs"`
}

// AdminRoutes registers the read-only reconciliation API ("payments.read"):
// GET /api/admin/reconcile/runs?day=2006-01-02[&hospital=] (the day's runs;
// default yesterday) and GET /api/admin/reconcile/runs/{id}/items
// [?unresolved=1] (a run's mismatches with their suggested actions). It only
// reads, so it serves an appliance's replica as well as the cloud.
func (r *Reconciler) AdminRoutes(mux *http.ServeMux, authorize web.Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("GET /api/admin/reconcile/runs", "payments.read", func(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
		q := req.URL.Query()
		day := strings.TrimSpace(q.Get("day"))
		if day == "" {
			day = Yesterday(r.now())
		}
		runs, err := r.Runs(ctx, day, strings.TrimSpace(q.Get("hospital")))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, RunsPage{Day: day, Runs: runs})
		return nil
	})
	handle("GET /api/admin/reconcile/runs/{id}/items", "payments.read", func(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
		if _, err := r.Run(ctx, req.PathValue("id")); err != nil {
			return err
		}
		items, err := r.Items(ctx, req.PathValue("id"), req.URL.Query().Get("unresolved") == "1")
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
		return nil
	})
}

// RunRequest asks for a day to be reconciled (again): POST
// /api/admin/reconcile/runs and the RPC RPCRun.
type RunRequest struct {
	Day    string `json:"day"`
	Source string `json:"source,omitempty"` // channel, insurance, his; "" all three
}

// ResolveRequest marks a mismatch handled: POST
// /api/admin/reconcile/items/{id}/resolve ({"note"}) and the RPC RPCResolve.
type ResolveRequest struct {
	ItemID string `json:"item_id,omitempty"`
	Note   string `json:"note"`
	Actor  string `json:"actor,omitempty"` // RPC: the console user on the appliance
}

// RunRoutes registers the reconciliation's writes ("payments.write"), cloud
// only (runs and items are cloud-owned): POST /api/admin/reconcile/runs
// (RunRequest; reconciles now and answers the runs) and POST
// /api/admin/reconcile/items/{id}/resolve ({"note"}; audited).
func (r *Reconciler) RunRoutes(mux *http.ServeMux, authorize web.Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("POST /api/admin/reconcile/runs", "payments.write", func(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
		var in RunRequest
		if err := web.DecodeJSON(req, &in); err != nil {
			return err
		}
		runs, err := r.RunDay(ctx, strings.TrimSpace(in.Day), strings.TrimSpace(in.Source))
		if err != nil && len(runs) == 0 {
			return err
		}
		// A side that failed is in runs with its error; the others ran.
		web.WriteJSON(w, http.StatusOK, RunsPage{Day: in.Day, Runs: runs})
		return nil
	})
	handle("POST /api/admin/reconcile/items/{id}/resolve", "payments.write", func(ctx context.Context, w http.ResponseWriter, req *http.Request) error {
		var in ResolveRequest
		if err := web.DecodeJSON(req, &in); err != nil {
			return err
		}
		if err := r.Resolve(ctx, req.PathValue("id"), "", strings.TrimSpace(in.Note)); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return nil
	})
}

// RPC methods the cloud serves for the appliances' consoles.
const (
	RPCRun     = "reconcile.run"     // RunRequest -> {"started": true}; the runs arrive by replication
	RPCResolve = "reconcile.resolve" // ResolveRequest -> {"ok": true}
)

// ServeRPC answers RPCRun and RPCResolve on the cloud's link. A run takes
// longer than an RPC may, so RPCRun starts it under ctx (the cloud's
// lifetime) and answers at once; the console sees the runs as "running"
// and then done as they replicate. A resolve is limited to the calling
// hospital's items.
func (r *Reconciler) ServeRPC(ctx context.Context, l *sync.Link) error {
	if err := l.Serve(RPCRun, func(_ context.Context, hospital string, raw json.RawMessage) (any, error) {
		var in RunRequest
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "请求格式不正确")
		}
		day, source := strings.TrimSpace(in.Day), strings.TrimSpace(in.Source)
		if _, _, err := dayRange(day); err != nil {
			return nil, err
		}
		if source != "" && sideOf(source).Label == source {
			return nil, ihos.Invalid(map[string]string{"source": "对账方应为 channel、insurance 或 his"})
		}
		// One at a time: a console clicking again does not queue more runs.
		if !r.rpcBusy.CompareAndSwap(false, true) {
			return nil, ihos.Errorf(ihos.EConflict, "云端正在对账，请稍后再试")
		}
		go func() {
			defer r.rpcBusy.Store(false)
			runs, err := r.RunDay(ctx, day, source)
			logRun(ctx, day, source, runs, err)
		}()
		return map[string]bool{"started": true}, nil
	}); err != nil {
		return err
	}
	return l.Serve(RPCResolve, func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
		var in ResolveRequest
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "请求格式不正确")
		}
		actor := strings.TrimSpace(in.Actor)
		if actor == "" {
			actor = "appliance"
		}
		ctx = ihos.WithActor(ctx, ihos.Actor{UserID: hospital + ":" + actor, Username: ihos.Truncate(actor, 40) + "@" + hospital, Name: actor})
		if err := r.Resolve(ctx, in.ItemID, hospital, strings.TrimSpace(in.Note)); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	})
}

// Remote is how a console that only holds the replica asks the cloud to
// re-run a day or resolve a mismatch.
type Remote interface {
	Run(ctx context.Context, day, source string) error
	Resolve(ctx context.Context, itemID, note string) error
}

// LinkRemote is Remote over an appliance's sync link.
type LinkRemote struct {
	Link     *sync.Link
	Hospital string
}

// Run implements Remote.
func (l LinkRemote) Run(ctx context.Context, day, source string) error {
	return l.Link.Call(ctx, l.Hospital, RPCRun, RunRequest{Day: day, Source: source}, nil)
}

// Resolve implements Remote; the console user is sent along for the record.
func (l LinkRemote) Resolve(ctx context.Context, itemID, note string) error {
	a, _ := ihos.ActorFrom(ctx)
	return l.Link.Call(ctx, l.Hospital, RPCResolve, ResolveRequest{ItemID: itemID, Note: note, Actor: a.Username}, nil)
}
