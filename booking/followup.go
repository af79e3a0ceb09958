package booking

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"ihos"
	"ihos/his"
)

// FollowUp asks a hospital's HIS whether a patient had an offline diagnosis
// (his.RPCFollowUp over the sync link, answered by the appliance).
type FollowUp interface {
	FollowUp(ctx context.Context, hospital string, req his.FollowUpRequest) (his.Eligibility, error)
}

// FollowUpDays is how far back an offline diagnosis counts.
const FollowUpDays = 180

// msgFollowUpOnly starts every refusal of the follow-up-only rule.
const msgFollowUpOnly = "互联网医院仅提供复诊服务："

// checkFollowUp enforces the follow-up-only rule (DESIGN.md §7): in a
// department that requires it (departments.online_follow_up_only, on by
// default; a hospital turns it off for a pilot department), the patient
// must have been diagnosed offline in that department at this hospital
// within FollowUpDays, as the HIS says now. A patient not linked to their
// HIS record cannot be checked and is refused; an HIS that cannot be asked
// (the link or the HIS down) refuses with 503 rather than assume.
func (s *Service) checkFollowUp(ctx context.Context, hospital, departmentID, patientID string) error {
	if s.FollowUp == nil {
		return nil
	}
	var code, name string
	only := 1
	err := s.row(ctx, `SELECT code, name, online_follow_up_only FROM departments WHERE id = ? AND deleted_at IS NULL`, departmentID).Scan(&code, &name, &only)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if only == 0 {
		return nil
	}
	dept := "本院"
	if name != "" {
		dept = "本院" + name
	}
	hisID, err := s.hisPatient(ctx, patientID)
	if err != nil {
		return err
	}
	if hisID == "" {
		return ihos.Errorf(ihos.EConflict, "%s请先关联医院就诊档案，以便核实您在%s的线下就诊记录", msgFollowUpOnly, dept)
	}
	e, err := s.FollowUp.FollowUp(ctx, hospital, his.FollowUpRequest{HISPatientID: hisID, Days: FollowUpDays, DepartmentCode: code, DepartmentName: name})
	if err != nil {
		if ihos.ErrorCode(err) == ihos.EUnavailable {
			return &ihos.Error{Code: ihos.EUnavailable, Err: err,
				Message: "医院系统暂时无法连接，无法核实您的线下就诊记录（互联网医院仅提供复诊服务），请稍后再预约"}
		}
		return err
	}
	if !e.Eligible {
		return ihos.Errorf(ihos.EForbidden, "%s%s", msgFollowUpOnly, strings.TrimSpace(e.Reason))
	}
	return nil
}

// hisPatient is the patient's HIS record id ("" when not linked): the
// master patient index's link, else a patient account's linked member.
func (s *Service) hisPatient(ctx context.Context, patientID string) (string, error) {
	var id string
	err := s.row(ctx, `SELECT his_patient_id FROM patient_links WHERE patient_id = ? AND status = 'linked' AND deleted_at IS NULL`, patientID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.row(ctx, `SELECT his_patient_id FROM patient_members WHERE patient_id = ? AND his_patient_id <> '' AND link_status = 'linked' AND deleted_at IS NULL ORDER BY created_at LIMIT 1`,
			patientID).Scan(&id)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// FirstMessage is the visit's first message from the patient: the
// condition and past history given at booking ("" when neither was).
func FirstMessage(b *Booking) string {
	var parts []string
	if b.Condition != "" {
		parts = append(parts, "病情描述："+b.Condition)
	}
	if b.PastHistory != "" {
		parts = append(parts, "既往史："+b.PastHistory)
	}
	return strings.Join(parts, "\n")
}
