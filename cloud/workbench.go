package cloud

import (
	"context"
	"net/http"

	"ihos"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/staffauth"
	"ihos/workbench"
)

// startWorkbench serves the doctor's workspace (package workbench) to doctors'
// app sessions: start it after startVisits and startPrescriptions.
func startWorkbench(ctx context.Context, n *node.Node, a *App, mux *http.ServeMux) error {
	svc := &workbench.Service{DB: n.DB, Visits: a.Visits}
	if a.Prescriptions != nil {
		svc.Prescriptions = a.Prescriptions
	}
	if err := svc.Init(ctx); err != nil {
		return err
	}
	WorkbenchRoutes(svc, a.Staff, mux)
	return nil
}

// WorkbenchRoutes registers the doctor's workspace API. Every route is a
// doctor's own (a staff app session of kind doctor): what they read and
// change is theirs alone, so there is no console or command-line access to
// it. The daily real-name check is not asked here: it guards seeing
// patients (accepting a visit), and the worklist is where the doctor starts
// the day before taking it.
//
//	GET  /api/doctor/worklist
//	GET  /api/doctor/favourites?kind=drug|exam|lab      POST {kind, code}   DELETE /api/doctor/favourites/{kind}/{code}
//	GET  /api/doctor/plans[?all=1]                      POST, PUT /{id}, POST /{id}/disable
//	GET  /api/doctor/phrases?category=                  POST {category, code, text}, POST /{id}/disable
//	GET  /api/doctor/patients?group=&tag=&key=1&q=      PUT /{patient_id} {groups, tags, key, note}
//	GET  /api/doctor/patients/{patient_id}/record
//	GET, POST /api/doctor/patient-groups {name}
func WorkbenchRoutes(svc *workbench.Service, staff *staffauth.Service, mux *http.ServeMux) {
	doctor := func(pattern string, fn func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error) {
		staff.Handle(mux, pattern, func(ctx context.Context, st staffauth.Staff, w http.ResponseWriter, r *http.Request) error {
			if st.Kind != ihos.StaffDoctor {
				return ihos.Errorf(ihos.EForbidden, "只有医生可以使用医生工作台")
			}
			return fn(ctx, workbench.Doctor{ID: st.ID, HospitalID: st.HospitalID}, w, r)
		})
	}
	reply := func(w http.ResponseWriter, status int, v any, err error) error {
		if err != nil {
			return err
		}
		web.WriteJSON(w, status, v)
		return nil
	}
	doctor("GET /api/doctor/worklist", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Worklist(ctx, d)
		return reply(w, http.StatusOK, list, err)
	})

	doctor("GET /api/doctor/favourites", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Favourites(ctx, d, r.URL.Query().Get("kind"))
		return reply(w, http.StatusOK, list, err)
	})
	doctor("POST /api/doctor/favourites", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Kind string `json:"kind"`
			Code string `json:"code"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		f, err := svc.AddFavourite(ctx, d, in.Kind, in.Code)
		return reply(w, http.StatusCreated, f, err)
	})
	doctor("DELETE /api/doctor/favourites/{kind}/{code}", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		if err := svc.RemoveFavourite(ctx, d, r.PathValue("kind"), r.PathValue("code")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})

	doctor("GET /api/doctor/plans", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Plans(ctx, d, r.URL.Query().Get("all") == "1")
		return reply(w, http.StatusOK, list, err)
	})
	doctor("POST /api/doctor/plans", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in workbench.PlanInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := svc.CreatePlan(ctx, d, in)
		return reply(w, http.StatusCreated, p, err)
	})
	doctor("PUT /api/doctor/plans/{id}", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in workbench.PlanInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := svc.UpdatePlan(ctx, d, r.PathValue("id"), in)
		return reply(w, http.StatusOK, p, err)
	})
	doctor("POST /api/doctor/plans/{id}/disable", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		p, err := svc.DisablePlan(ctx, d, r.PathValue("id"))
		return reply(w, http.StatusOK, p, err)
	})

	doctor("GET /api/doctor/phrases", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Phrases(ctx, d, r.URL.Query().Get("category"))
		return reply(w, http.StatusOK, list, err)
	})
	doctor("POST /api/doctor/phrases", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in workbench.PhraseInput
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := svc.AddPhrase(ctx, d, in)
		return reply(w, http.StatusCreated, p, err)
	})
	doctor("POST /api/doctor/phrases/{id}/disable", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		if err := svc.DisablePhrase(ctx, d, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})

	doctor("GET /api/doctor/patients", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		list, err := svc.Patients(ctx, d, workbench.PatientFilter{Group: q.Get("group"), Tag: q.Get("tag"), Key: q.Get("key") == "1", Q: q.Get("q")})
		return reply(w, http.StatusOK, list, err)
	})
	doctor("PUT /api/doctor/patients/{patient_id}", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in workbench.PatientMarks
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := svc.UpdatePatient(ctx, d, r.PathValue("patient_id"), in)
		return reply(w, http.StatusOK, p, err)
	})
	doctor("GET /api/doctor/patients/{patient_id}/record", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		rec, err := svc.Record(ctx, d, r.PathValue("patient_id"))
		return reply(w, http.StatusOK, rec, err)
	})
	doctor("GET /api/doctor/patient-groups", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		list, err := svc.Groups(ctx, d)
		return reply(w, http.StatusOK, list, err)
	})
	doctor("POST /api/doctor/patient-groups", func(ctx context.Context, d workbench.Doctor, w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		g, err := svc.AddGroup(ctx, d, in.Name)
		return reply(w, http.StatusCreated, g, err)
	})
}
