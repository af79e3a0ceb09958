package cloud

import (
	"context"
	"database/sql"
	"errors"

	"ihos"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/prescriptions"
	"ihos/sync"
)

// remoteSigner signs clinical documents with a staff member's e-signature on
// their hospital's appliance, over the sync RPC (prescriptions.RPCSign,
// answered by appliance/clinical.go): the private key and the PIN check stay
// in the hospital; the cloud sends the document and the PIN the doctor typed,
// and keeps the detached PKCS#7 it gets back. With the link down signing
// fails at once with "医院系统暂时无法连接". Prescriptions and EMRs use it.
type remoteSigner struct {
	db   *sqldb.DB
	link *sync.Link
}

var _ prescriptions.Signer = remoteSigner{}

// Sign implements prescriptions.Signer: the detached PKCS#7 over
// esign.Canonical(doc).
func (s remoteSigner) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	r, err := s.SignDetail(ctx, staffID, pin, doc)
	if err != nil {
		return nil, err
	}
	return r.P7, nil
}

// SignDetail signs like Sign and also returns the signer's certificate and
// its serial number.
func (s remoteSigner) SignDetail(ctx context.Context, staffID, pin string, doc []byte) (prescriptions.SignReply, error) {
	var out prescriptions.SignReply
	if pin == "" {
		return out, ihos.Invalid(map[string]string{"pin": "请输入签名密码"})
	}
	hospital, err := staffHospital(ctx, s.db, staffID)
	if err != nil {
		return out, err
	}
	if err := s.link.Call(ctx, hospital, prescriptions.RPCSign, prescriptions.SignRequest{StaffID: staffID, PIN: pin, Document: doc}, &out); err != nil {
		return out, err
	}
	if len(out.P7) == 0 {
		return out, ihos.Internal(errors.New("cloud: empty signature from the appliance"))
	}
	return out, nil
}

// staffHospital is the hospital of a staff member (the replicated staff
// table).
func staffHospital(ctx context.Context, db *sqldb.DB, staffID string) (string, error) {
	var hospital string
	err := db.QueryRowContext(ctx, `SELECT hospital_id FROM staff WHERE id = ? AND deleted_at IS NULL`, staffID).Scan(&hospital)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && hospital == "") {
		return "", ihos.Errorf(ihos.EForbidden, "医务人员不存在，不能签名")
	}
	if err != nil {
		return "", ihos.Internal(err)
	}
	return hospital, nil
}

// remoteHIS places orders with a hospital's HIS through its appliance
// (his.RPCPlaceOrder, answered by his.Service.PlaceOrder, which queues the
// order durably for the HIS). Orders with a Key are placed once however
// often the call is repeated, so a call whose answer was lost is simply
// repeated.
type remoteHIS struct{ link *sync.Link }

var _ prescriptions.HIS = remoteHIS{}

// PlaceOrder implements prescriptions.HIS.
func (h remoteHIS) PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error) {
	var out his.PlacedOrders
	if err := h.link.Call(ctx, hospital, his.RPCPlaceOrder, req, &out); err != nil {
		return nil, err
	}
	return out.Orders, nil
}
