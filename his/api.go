package his

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/web"
)

// Authorizer checks that the request may use perm and returns the context to
// continue with (the appliance passes node.AuthorizeCLIOr: a console session
// or the local CLI token).
type Authorizer = web.Authorizer

// Routes registers the HIS link's JSON API under /api/his: "his.read" to look,
// "his.write" to act.
func (s *Service) Routes(mux *http.ServeMux, authorize Authorizer) {
	handle := web.Guard(mux, authorize)
	handle("GET /api/his/status", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		st, err := s.Queue.Status(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, st)
		return nil
	})
	handle("POST /api/his/orders", "his.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req OrderRequest
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		orders, err := s.PlaceOrder(ctx, req)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, map[string]any{"orders": orders})
		return nil
	})
	handle("GET /api/his/orders/{id}", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		o, err := s.OrderByID(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, o)
		return nil
	})
	handle("GET /api/his/patients", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		id := ihos.PatientIdentifier{Type: q.Get("type"), Value: strings.TrimSpace(q.Get("value"))}
		if id.Type == "" {
			id.Type = ihos.IDResident
		}
		if id.Value == "" || (id.Type != ihos.IDResident && id.Type != ihos.IDInsurance && id.Type != ihos.IDHISPatient && id.Type != ihos.IDVisitNo) {
			return ihos.Invalid(map[string]string{"value": "请输入身份证号、医保卡号、就诊号或 HIS 患者编号"})
		}
		ps, err := s.HIS.FindPatients(ctx, id)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"patients": ps})
		return nil
	})
	handle("GET /api/his/patients/{id}/visits", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		vs, err := s.HIS.VisitHistory(ctx, r.PathValue("id"), time.Time{})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"visits": vs})
		return nil
	})
	handle("GET /api/his/patients/{id}/fees", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		fs, err := s.HIS.UnpaidFees(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"fees": fs})
		return nil
	})
	handle("GET /api/his/patients/{id}/reports", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var since time.Time
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.ParseInLocation("2006-01-02", v, ihos.Shanghai)
			if err != nil {
				return ihos.Invalid(map[string]string{"since": "日期格式应为 YYYY-MM-DD"})
			}
			since = t
		}
		rs, err := s.Reports(ctx, r.PathValue("id"), since)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"reports": rs})
		return nil
	})
	handle("GET /api/his/patients/{id}/follow-up", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		days := 180
		if d := q.Get("days"); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil || n <= 0 || n > 3650 {
				return ihos.Invalid(map[string]string{"days": "天数应在 1 到 3650 之间"})
			}
			days = n
		}
		var codes []string
		for _, c := range strings.Split(q.Get("codes"), ",") {
			if c = strings.TrimSpace(c); c != "" {
				codes = append(codes, c)
			}
		}
		e, err := s.CheckFollowUp(ctx, r.PathValue("id"), codes, time.Duration(days)*24*time.Hour)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, e)
		return nil
	})
	handle("POST /api/his/catalog/refresh", "his.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		reps, err := s.RefreshCatalog(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"catalogs": reps})
		return nil
	})
	handle("GET /api/his/outbox", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		items, err := s.Queue.List(ctx, r.URL.Query().Get("status"), 200)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"messages": items})
		return nil
	})
	handle("POST /api/his/outbox/{id}/resend", "his.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Queue.Resend(ctx, r.PathValue("id")); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": StatusPending})
		return nil
	})
	handle("POST /api/his/outbox/{id}/cancel", "his.write", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Queue.Cancel(ctx, r.PathValue("id")); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": StatusCancelled})
		return nil
	})
	handle("GET /api/his/messages", "his.read", func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		items, err := SearchLog(ctx, s.DB, LogQuery{Text: q.Get("q"), Type: q.Get("type"), Lane: q.Get("patient"), Limit: 100})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"messages": items})
		return nil
	})
}
