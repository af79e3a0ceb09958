package his

import (
	"context"
	"database/sql"
	"errors"

	"ihos"
)

// Code-mapping kinds (his_code_maps.kind).
const (
	MapDepartment = "department"
	MapStaff      = "staff"
	MapDrug       = "drug"
)

// hisCode translates a platform code to the HIS's through the console's code
// mapping; a code without a mapping is the same on both sides.
func (s *Service) hisCode(ctx context.Context, tx *sql.Tx, kind, code string) (string, error) {
	if code == "" {
		return "", nil
	}
	var his string
	err := s.DB.TxQueryRow(ctx, tx, `SELECT his_code FROM his_code_maps WHERE kind = ? AND platform_code = ? AND enabled = 1 AND deleted_at IS NULL`, kind, code).Scan(&his)
	if errors.Is(err, sql.ErrNoRows) {
		return code, nil
	}
	return his, err
}

// mapCodes rewrites the department, doctor and drug codes of d to the HIS's.
func (s *Service) mapCodes(ctx context.Context, tx *sql.Tx, d *ihos.HISMessageData, drugs bool) error {
	var err error
	if d.DepartmentCode, err = s.hisCode(ctx, tx, MapDepartment, d.DepartmentCode); err != nil {
		return err
	}
	if d.DoctorCode, err = s.hisCode(ctx, tx, MapStaff, d.DoctorCode); err != nil {
		return err
	}
	if drugs {
		for i := range d.Orders {
			if d.Orders[i].Code, err = s.hisCode(ctx, tx, MapDrug, d.Orders[i].Code); err != nil {
				return err
			}
		}
	}
	return nil
}

// Send queues an outbound message (a visit registration, a signed EMR, fees)
// inside the caller's transaction, with codes mapped to the HIS's, so the
// message exists exactly when the change that causes it commits. Orders go
// through PlaceOrder, which also tracks their lines. Call Queue.Kick after the
// commit.
func (s *Service) Send(ctx context.Context, tx *sql.Tx, event string, d ihos.HISMessageData) (string, error) {
	switch event {
	case ihos.HISRegisterVisit, ihos.HISEMR, ihos.HISFees:
	default:
		return "", ihos.Errorf(ihos.EInvalid, "不支持的 HIS 消息类型：%s", event)
	}
	if d.Patient.HISID == "" && d.Patient.IDNumber == "" {
		return "", ihos.Invalid(map[string]string{"patient": "缺少患者的 HIS 编号或身份证号"})
	}
	if event == ihos.HISFees && len(d.Fees) == 0 {
		return "", ihos.Invalid(map[string]string{"fees": "没有费用明细"})
	}
	if err := s.mapCodes(ctx, tx, &d, false); err != nil {
		return "", err
	}
	m := ihos.HISMessage{Event: event, Data: d}
	lane := d.Patient.HISID
	if lane == "" {
		lane = "id:" + ihos.Truncate(d.Patient.IDNumber, 40)
	}
	if err := s.Queue.Enqueue(ctx, tx, lane, &m); err != nil {
		return "", err
	}
	return m.ID, nil
}
