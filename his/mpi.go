package his

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ihos"
	"ihos/sync"
)

// LinkRequest asks to link a platform patient account to their HIS record.
// The personal data travels only in this call (the cloud asks over the sync
// RPC) and is not stored by the appliance: the link keeps the HIS id.
type LinkRequest struct {
	PatientID     string `json:"patient_id"`
	Name          string `json:"name"`
	IDNumber      string `json:"id_number"`
	InsuranceCard string `json:"insurance_card"`
	HISID         string `json:"his_id"`
}

// PatientLink is a master patient index entry.
type PatientLink struct {
	ID           string `json:"id"`
	PatientID    string `json:"patient_id"`
	HISPatientID string `json:"his_patient_id"`
	Method       string `json:"method"`
	Confidence   int    `json:"confidence"`
	Status       string `json:"status"` // linked, review, rejected
	Note         string `json:"note"`
}

// Link statuses.
const (
	LinkLinked   = "linked"
	LinkReview   = "review"
	LinkRejected = "rejected"
)

// LinkPatient finds the patient in the HIS by the strongest identifier given
// and records the link with its confidence: 100 when the identifier and the
// name agree and the HIS holds one record; less, for a person to confirm in
// the console, when the name differs or the HIS holds several. A link a person
// confirmed is not overwritten.
func (s *Service) LinkPatient(ctx context.Context, req LinkRequest) (PatientLink, error) {
	if req.PatientID == "" {
		return PatientLink{}, ihos.Invalid(map[string]string{"patient_id": "缺少平台患者编号"})
	}
	var id ihos.PatientIdentifier
	var method string
	var base int
	switch {
	case req.HISID != "":
		id, method, base = ihos.PatientIdentifier{Type: ihos.IDHISPatient, Value: req.HISID}, "his_id", 100
	case req.IDNumber != "":
		id, method, base = ihos.PatientIdentifier{Type: ihos.IDResident, Value: strings.ToUpper(strings.TrimSpace(req.IDNumber))}, "id_number", 100
	case req.InsuranceCard != "":
		id, method, base = ihos.PatientIdentifier{Type: ihos.IDInsurance, Value: strings.TrimSpace(req.InsuranceCard)}, "insurance", 90
	default:
		return PatientLink{}, ihos.Invalid(map[string]string{"id_number": "请提供身份证号、医保卡号或 HIS 患者编号"})
	}
	found, err := s.HIS.FindPatients(ctx, id)
	if err != nil {
		return PatientLink{}, err
	}
	if len(found) == 0 {
		return PatientLink{}, ihos.Errorf(ihos.ENotFound, "未在医院 HIS 中找到该患者的档案，请先到院建档")
	}
	link := PatientLink{PatientID: req.PatientID, HISPatientID: found[0].HISID, Method: method, Confidence: base, Status: LinkLinked}
	if req.Name != "" && found[0].Name != req.Name {
		link.Confidence, link.Status = base/2, LinkReview
		link.Note = "姓名与 HIS 档案不一致（HIS：" + ihos.Truncate(found[0].Name, 20) + "）"
	}
	if len(found) > 1 {
		link.Confidence, link.Status = min(link.Confidence, 70), LinkReview
		link.Note = strings.TrimSpace(link.Note + fmt.Sprintf(" HIS 中有 %d 份档案，请人工确认", len(found)))
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		now := ihos.FormatTime(time.Now())
		var old PatientLink
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, his_patient_id, method, status FROM patient_links WHERE patient_id = ?`+s.DB.ForUpdate(), req.PatientID).
			Scan(&old.ID, &old.HISPatientID, &old.Method, &old.Status)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			link.ID = ihos.NewID()
			_, err = s.DB.TxExec(ctx, tx, `INSERT INTO patient_links (id, hospital_id, patient_id, his_patient_id, method, confidence, status, note, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, link.ID, s.Hospital, link.PatientID, link.HISPatientID, link.Method, link.Confidence, link.Status, ihos.Truncate(link.Note, 200), now, now)
		case err != nil:
			return err
		case old.Method == "manual":
			link = old // a person decided; keep it
			link.PatientID = req.PatientID
			return nil
		default:
			link.ID = old.ID
			_, err = s.DB.TxExec(ctx, tx, `UPDATE patient_links SET his_patient_id = ?, method = ?, confidence = ?, status = ?, note = ?, version = version + 1, updated_at = ? WHERE id = ?`,
				link.HISPatientID, link.Method, link.Confidence, link.Status, ihos.Truncate(link.Note, 200), now, link.ID)
		}
		if err != nil {
			return err
		}
		return s.capture(ctx, tx, sync.Ref{Entity: "patient_links", ID: link.ID})
	})
	if err != nil {
		return PatientLink{}, err
	}
	s.committed()
	return link, nil
}

// RPC methods the appliance serves for the cloud over the sync link.
const (
	RPCLinkPatient = "his.link_patient"
	RPCFollowUp    = "his.follow_up"
	RPCUnpaidFees  = "his.unpaid_fees"
	// RPCPlaceOrder places an order (OrderRequest → PlacedOrders); with a
	// Key, a repeated call places nothing new.
	RPCPlaceOrder = "his.place_order"
)

// PlacedOrders is the answer of RPCPlaceOrder.
type PlacedOrders struct {
	Orders []Order `json:"orders"`
}

// FollowUpRequest is the cloud's follow-up check.
type FollowUpRequest struct {
	HISPatientID string   `json:"his_patient_id"`
	Codes        []string `json:"codes"`
	Days         int      `json:"days"`
	// DepartmentCode and DepartmentName (the platform's) limit the check to
	// diagnoses made in that department (the booking's follow-up-only rule):
	// a visit counts when its department is the code's HIS mapping, or has
	// the same name.
	DepartmentCode string `json:"department_code,omitempty"`
	DepartmentName string `json:"department_name,omitempty"`
}

// ServeRPC answers the cloud's calls that need the HIS now.
func (s *Service) ServeRPC(l *sync.Link) error {
	if err := l.Serve(RPCLinkPatient, func(ctx context.Context, _ string, raw json.RawMessage) (any, error) {
		var req LinkRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "请求格式错误")
		}
		return s.LinkPatient(ctx, req)
	}); err != nil {
		return err
	}
	if err := l.Serve(RPCFollowUp, func(ctx context.Context, _ string, raw json.RawMessage) (any, error) {
		var req FollowUpRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "请求格式错误")
		}
		if req.Days <= 0 {
			req.Days = 180
		}
		if req.DepartmentCode != "" || req.DepartmentName != "" {
			return s.CheckFollowUpIn(ctx, req.HISPatientID, req.DepartmentCode, req.DepartmentName, req.Codes, time.Duration(req.Days)*24*time.Hour)
		}
		return s.CheckFollowUp(ctx, req.HISPatientID, req.Codes, time.Duration(req.Days)*24*time.Hour)
	}); err != nil {
		return err
	}
	if err := l.Serve(RPCPlaceOrder, func(ctx context.Context, _ string, raw json.RawMessage) (any, error) {
		var req OrderRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, ihos.Errorf(ihos.EInvalid, "请求格式错误")
		}
		orders, err := s.PlaceOrder(ctx, req)
		return PlacedOrders{Orders: orders}, err
	}); err != nil {
		return err
	}
	return l.Serve(RPCUnpaidFees, func(ctx context.Context, _ string, raw json.RawMessage) (any, error) {
		var req struct {
			HISPatientID string `json:"his_patient_id"`
		}
		if err := json.Unmarshal(raw, &req); err != nil || req.HISPatientID == "" {
			return nil, ihos.Errorf(ihos.EInvalid, "缺少 HIS 患者编号")
		}
		fees, err := s.HIS.UnpaidFees(ctx, req.HISPatientID)
		return map[string]any{"fees": fees}, err
	})
}
