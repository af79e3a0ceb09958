package appliance

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"ihos"
	"ihos/prescriptions"
	"ihos/sync"
)

// serveClinical answers the cloud's signing calls (prescriptions.RPCSign):
// doctors and pharmacists write in the app on the cloud, but their signing
// keys never leave the hospital; the cloud sends the document and the PIN
// the staff member typed, and the appliance signs with their key (certs/esign,
// which unlocks it with the PIN and counts wrong ones). Only an enabled
// doctor or pharmacist of this hospital can sign. The HIS order of a paid
// prescription is his.RPCPlaceOrder, served by the HIS link (his.ServeRPC).
func (a *App) serveClinical(l *sync.Link, hospital string) error {
	return l.Serve(prescriptions.RPCSign, func(ctx context.Context, from string, raw json.RawMessage) (any, error) {
		var req prescriptions.SignRequest
		if err := json.Unmarshal(raw, &req); err != nil || req.StaffID == "" || len(req.StaffID) > 36 {
			return nil, ihos.Errorf(ihos.EInvalid, "签名请求格式错误")
		}
		if len(req.Document) == 0 {
			return nil, ihos.Invalid(map[string]string{"document": "缺少要签名的文档"})
		}
		var name, kind string
		err := a.Node.DB.QueryRowContext(ctx, `SELECT name, kind FROM staff WHERE id = ? AND enabled = 1 AND deleted_at IS NULL AND (hospital_id = ? OR hospital_id = '')`,
			req.StaffID, hospital).Scan(&name, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ihos.Errorf(ihos.EForbidden, "该医务人员不在本院在岗人员名单中，不能签名")
		}
		if err != nil {
			return nil, ihos.Internal(err)
		}
		if kind != ihos.StaffDoctor && kind != ihos.StaffPharmacist {
			return nil, ihos.Errorf(ihos.EForbidden, "只有医师和药师可以使用电子签名签署诊疗文书")
		}
		// The signature is audited (esign) as the staff member's own act.
		ctx = ihos.WithActor(ctx, ihos.Actor{UserID: req.StaffID, Username: req.StaffID, Name: name, Role: kind})
		sig, err := a.ESign.Sign(ctx, req.StaffID, req.PIN, req.Document)
		if err != nil {
			return nil, err
		}
		var certPEM string
		if err := a.Node.DB.QueryRowContext(ctx, `SELECT cert_pem FROM staff_keys WHERE staff_id = ?`, req.StaffID).Scan(&certPEM); err != nil {
			return nil, ihos.Internal(err)
		}
		return prescriptions.SignReply{P7: sig.P7, Serial: sig.Serial, CertPEM: certPEM, SignedAt: sig.SignedAt}, nil
	})
}
