package cloud

import (
	"net/http"
	"slices"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/web"
)

// signup is the minimal open sign-up the sync tests use: a patients row
// created on the cloud replicates to its hospital. Patients themselves sign
// up through /api/patient/* (package accounts: SMS code, real-name check,
// family members); once the tests move to that journey this endpoint goes.
type signup struct {
	store     *admin.Store
	hospitals *Hospitals
}

func (s signup) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/public/patients", web.HandlerFunc(s.create))
}

// signupActor is who a self sign-up is recorded as in the audit log.
var signupActor = ihos.Actor{UserID: "patient-signup", Username: "patient-signup", Name: "患者自助注册", Role: auth.RoleSysAdmin}

func (s signup) create(w http.ResponseWriter, r *http.Request) error {
	var in map[string]any
	if err := web.DecodeJSON(r, &in); err != nil {
		return err
	}
	if in == nil {
		return ihos.Errorf(ihos.EInvalid, "请求内容必须是 JSON 对象")
	}
	for k := range in {
		if !slices.Contains([]string{"hospital_id", "name", "gender", "birth_year", "phone", "id_number"}, k) {
			return ihos.Invalid(map[string]string{k: "未知字段"})
		}
	}
	hosp, _ := in["hospital_id"].(string)
	if !s.hospitals.Known(hosp) {
		return ihos.Invalid(map[string]string{"hospital_id": "该医院尚未开通互联网医院"})
	}
	a := signupActor
	a.IP, a.RequestID = web.ClientIP(r), web.RequestID(r.Context())
	ctx := ihos.WithActor(r.Context(), a)
	res, _ := s.store.Resource("patients")
	if phone, _ := in["phone"].(string); phone != "" {
		page, err := s.store.List(ctx, res, admin.Query{Filters: map[string]string{"phone": phone, "hospital_id": hosp}, PageSize: 1})
		if err == nil && page.Total > 0 {
			return &ihos.Error{Code: ihos.EConflict, Message: "该手机号已注册", Fields: map[string]string{"phone": "该手机号已注册"}}
		}
	}
	rec, err := s.store.Create(ctx, res, in)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, rec)
	return nil
}
