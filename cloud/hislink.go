package cloud

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"ihos"
	"ihos/his"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/sync"
)

// hisLink reaches a hospital's HIS through its appliance over the sync RPC:
// linking a patient account to the HIS record (the master patient index lives
// on the appliance and replicates back) and the follow-up check.
type hisLink struct {
	node *node.Node
	link *sync.Link
}

func (h hisLink) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/admin/patients/{id}/his-link", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := h.node.AuthorizeCLIOr(r, "patients.write")
		if err != nil {
			return err
		}
		l, err := h.linkPatient(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, l)
		return nil
	}))
	mux.Handle("GET /api/admin/patients/{id}/follow-up", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := h.node.AuthorizeCLIOr(r, "patients.read")
		if err != nil {
			return err
		}
		days, _ := strconv.Atoi(r.URL.Query().Get("days"))
		var codes []string
		for _, c := range strings.Split(r.URL.Query().Get("codes"), ",") {
			if c = strings.TrimSpace(c); c != "" {
				codes = append(codes, c)
			}
		}
		e, err := h.followUp(ctx, r.PathValue("id"), codes, days)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, e)
		return nil
	}))
}

// linkPatient asks the patient's hospital to find them in its HIS. The ID
// number is opened here, sent in the request only, and not kept by the
// hospital (docs/decisions/0009).
func (h hisLink) linkPatient(ctx context.Context, patientID string) (his.PatientLink, error) {
	var hospital, name, idSealed string
	err := h.node.DB.QueryRowContext(ctx, `SELECT hospital_id, name, id_number FROM patients WHERE id = ? AND deleted_at IS NULL`, patientID).Scan(&hospital, &name, &idSealed)
	if errors.Is(err, sql.ErrNoRows) {
		return his.PatientLink{}, ihos.Errorf(ihos.ENotFound, "患者不存在")
	}
	if err != nil {
		return his.PatientLink{}, ihos.Internal(err)
	}
	req := his.LinkRequest{PatientID: patientID, Name: name}
	if idSealed != "" {
		if req.IDNumber, err = h.node.Sealer.Open(idSealed); err != nil {
			return his.PatientLink{}, ihos.Internal(err)
		}
	}
	if req.IDNumber == "" {
		return his.PatientLink{}, ihos.Errorf(ihos.EInvalid, "请先完成实名认证（身份证号），才能关联医院就诊档案")
	}
	var out his.PatientLink
	err = h.link.Call(ctx, hospital, his.RPCLinkPatient, req, &out)
	return out, err
}

// followUp checks with the hospital's HIS whether the patient may have an
// online follow-up visit; the patient must be linked to their HIS record.
func (h hisLink) followUp(ctx context.Context, patientID string, codes []string, days int) (his.Eligibility, error) {
	var hospital, hisID string
	err := h.node.DB.QueryRowContext(ctx, `SELECT hospital_id, his_patient_id FROM patient_links WHERE patient_id = ? AND status = 'linked' AND deleted_at IS NULL`, patientID).Scan(&hospital, &hisID)
	if errors.Is(err, sql.ErrNoRows) {
		return his.Eligibility{}, ihos.Errorf(ihos.EConflict, "尚未关联医院就诊档案，无法确认复诊资格")
	}
	if err != nil {
		return his.Eligibility{}, ihos.Internal(err)
	}
	var out his.Eligibility
	err = h.link.Call(ctx, hospital, his.RPCFollowUp, his.FollowUpRequest{HISPatientID: hisID, Codes: codes, Days: days}, &out)
	return out, err
}
