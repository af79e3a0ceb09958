package billpay

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"ihos"
	"ihos/his"
	"ihos/internal/sqldb"
	"ihos/payments"
	"ihos/sync"
)

// FeeSource reads a patient's unpaid fees from a hospital's HIS.
type FeeSource interface {
	UnpaidFees(ctx context.Context, hospital, hisPatientID string) ([]ihos.HISFee, error)
}

// LinkFees is the FeeSource of the cloud: the hospital's appliance asks its
// HIS (his.unpaid_fees over the sync RPC). With the link down the call fails
// at once with EUnavailable.
type LinkFees struct{ Link *sync.Link }

// UnpaidFees implements FeeSource.
func (l LinkFees) UnpaidFees(ctx context.Context, hospital, hisPatientID string) ([]ihos.HISFee, error) {
	var out struct {
		Fees []ihos.HISFee `json:"fees"`
	}
	if err := l.Link.Call(ctx, hospital, his.RPCUnpaidFees, map[string]string{"his_patient_id": hisPatientID}, &out); err != nil {
		return nil, err
	}
	return out.Fees, nil
}

// MaxFees bounds one selection.
const MaxFees = 50

// Cloud is the cloud half: the fee list and the payments of selections.
type Cloud struct {
	DB       *sqldb.DB
	Payments *payments.Service
	HIS      FeeSource
	// Capture records replicated rows for the appliance inside a transaction
	// (sync.Replica.Capture with hospital ""); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Known reports whether a hospital is enrolled and enabled; nil accepts
	// every hospital.
	Known func(hospital string) bool
}

func (c *Cloud) capture(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
	if c.Capture == nil || len(refs) == 0 {
		return nil
	}
	return c.Capture(ctx, tx, refs...)
}

func (c *Cloud) committed() {
	if c.AfterCommit != nil {
		c.AfterCommit()
	}
}

// Fee is an unpaid HIS fee as the patient sees it: with the payment under
// way for it, if there is one (the patient may finish or cancel that one).
type Fee struct {
	ihos.HISFee
	PaymentID     string `json:"payment_id,omitempty"`
	PaymentStatus string `json:"payment_status,omitempty"`
}

// Bill is what a patient owes the hospital now.
type Bill struct {
	HospitalID   string `json:"hospital_id"`
	HISPatientID string `json:"his_patient_id"`
	Fees         []Fee  `json:"fees"`
	Total        int64  `json:"total"` // fen, of the fees listed
	TotalYuan    string `json:"total_yuan"`
}

// Fees lists the patient's unpaid fees, read from the HIS now. Fees paid
// here whose posting the HIS has not processed yet are left out: they are
// paid, whatever the HIS still says.
func (c *Cloud) Fees(ctx context.Context, hospital, hisPatientID string) (*Bill, error) {
	hospital, hisPatientID = strings.TrimSpace(hospital), strings.TrimSpace(hisPatientID)
	if err := c.checkParty(hospital, hisPatientID); err != nil {
		return nil, err
	}
	fees, err := c.HIS.UnpaidFees(ctx, hospital, hisPatientID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(fees))
	for _, f := range fees {
		ids = append(ids, f.FeeID)
	}
	holds, err := c.holders(ctx, hospital, ids)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	held := map[string]holder{}
	for _, h := range holds {
		held[h.feeID] = h
	}
	b := &Bill{HospitalID: hospital, HISPatientID: hisPatientID, Fees: []Fee{}}
	for _, f := range fees {
		fee := Fee{HISFee: f}
		if h, ok := held[f.FeeID]; ok {
			switch {
			case holdsMoney(h.status):
				continue
			case ihos.PaymentActive(h.status):
				fee.PaymentID, fee.PaymentStatus = h.paymentID, h.status
			}
		}
		b.Fees = append(b.Fees, fee)
		b.Total += f.AmountFen
	}
	b.TotalYuan = ihos.FormatYuan(b.Total)
	return b, nil
}

func (c *Cloud) checkParty(hospital, hisPatientID string) error {
	f := map[string]string{}
	if hospital == "" || (c.Known != nil && !c.Known(hospital)) {
		f["hospital_id"] = "医院不存在或未启用"
	}
	if hisPatientID == "" || len(hisPatientID) > 64 {
		f["his_patient_id"] = "缺少 HIS 患者编号"
	}
	if len(f) > 0 {
		return ihos.Invalid(f)
	}
	return nil
}

// CreateRequest is a patient's selection of fees to pay.
type CreateRequest struct {
	HospitalID   string   `json:"hospital_id"`
	HISPatientID string   `json:"his_patient_id"`
	PatientID    string   `json:"patient_id"` // the platform patient, when known (the phone)
	FeeIDs       []string `json:"fee_ids"`
	Channel      string   `json:"channel"` // ihos.ChannelSelfPay (default), …
	// OpenID is the payer's id at the channel (the phone's JSAPI order).
	OpenID string `json:"openid"`
	// Auth is the insurance authorisation (payAuthNo, ecToken…), passed to
	// the insurance leg unchanged.
	Auth map[string]string `json:"auth,omitempty"`
	// PreSettlement is the split the patient was shown for an insurance
	// payment; nil means all cash.
	PreSettlement *ihos.Split `json:"pre_settlement,omitempty"`
	Source        string      `json:"source"` // SourcePhone (default) or SourceKiosk
}

// BusinessID is the payment business id of a selection: the same fees of the
// same patient always give the same id, so the payment service lets the
// selection have one active or paid payment only.
func BusinessID(hospital, hisPatientID string, feeIDs []string) string {
	ids := slices.Clone(feeIDs)
	slices.Sort(ids)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", hospital, hisPatientID)
	for _, id := range ids {
		fmt.Fprintf(h, "%s\n", id)
	}
	return hex.EncodeToString(h.Sum(nil)) // 64 characters: business_id's width
}

// Create checks the selection against the HIS's unpaid fees read now,
// records the payment (or finds the one already under way for the same
// selection) with its items, and starts paying it: a JSAPI order for the
// phone, a Native order (Prepay.CodeURL, the QR code) for the kiosk.
func (c *Cloud) Create(ctx context.Context, req CreateRequest) (*payments.PayResult, error) {
	req.HospitalID, req.HISPatientID, req.PatientID = strings.TrimSpace(req.HospitalID), strings.TrimSpace(req.HISPatientID), strings.TrimSpace(req.PatientID)
	if req.Channel == "" {
		req.Channel = ihos.ChannelSelfPay
	}
	if req.Source == "" {
		req.Source = SourcePhone
	}
	ids, err := c.validate(req)
	if err != nil {
		return nil, err
	}
	if req.PatientID != "" {
		if err := c.checkLink(ctx, req); err != nil {
			return nil, err
		}
	}
	fees, err := c.HIS.UnpaidFees(ctx, req.HospitalID, req.HISPatientID)
	if err != nil {
		return nil, err
	}
	byID := map[string]ihos.HISFee{}
	for _, f := range fees {
		byID[f.FeeID] = f
	}
	var chosen []ihos.HISFee
	var missing []string
	var total int64
	for _, id := range ids {
		f, ok := byID[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if f.AmountFen <= 0 {
			return nil, ihos.Invalid(map[string]string{"fee_ids": fmt.Sprintf("费用 %s（%s）金额有误，请到收费窗口处理", id, ihos.Truncate(f.ItemName, 40))})
		}
		chosen = append(chosen, f)
		total += f.AmountFen
	}
	if len(missing) > 0 {
		return nil, ihos.Invalid(map[string]string{"fee_ids": "以下费用不存在或已缴清，请刷新后重新选择：" + ihos.Truncate(strings.Join(missing, "、"), 300)})
	}
	bid := BusinessID(req.HospitalID, req.HISPatientID, ids)
	if err := c.checkHolds(ctx, req.HospitalID, bid, ids); err != nil {
		return nil, err
	}
	p, err := c.Payments.Create(ctx, payments.NewPayment{HospitalID: req.HospitalID, BusinessType: ihos.PayOutpatientBill, BusinessID: bid,
		PatientID: req.PatientID, Channel: req.Channel, Subject: subject(chosen), Total: total, PreSettlement: req.PreSettlement})
	if err != nil {
		return nil, err
	}
	if p.Total != total || p.Channel != req.Channel || p.PatientID != req.PatientID {
		// Create handed back the selection's payment already under way,
		// made another way (another channel, or from the kiosk).
		return nil, ihos.Errorf(ihos.EConflict, "这些费用已有一笔待支付订单（%s 元，%s），请先完成或取消该订单", ihos.FormatYuan(p.Total), ihos.ChannelLabels[p.Channel])
	}
	if err := c.storeItems(ctx, p, req.HISPatientID, chosen); err != nil {
		return nil, err
	}
	pr := payments.PayRequest{Auth: req.Auth}
	if req.Source == SourcePhone {
		pr.PayerID = req.OpenID
	}
	return c.Payments.Pay(ctx, p.ID, pr)
}

// validate checks the request's form and returns the fee ids sorted.
func (c *Cloud) validate(req CreateRequest) ([]string, error) {
	f := map[string]string{}
	if err := c.checkParty(req.HospitalID, req.HISPatientID); err != nil {
		var e *ihos.Error
		errors.As(err, &e)
		f = e.Fields
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range req.FeeIDs {
		id = strings.TrimSpace(id)
		switch {
		case id == "" || len(id) > 64:
			f["fee_ids"] = "费用编号无效"
		case seen[id]:
			f["fee_ids"] = "同一项费用选择了两次"
		}
		seen[id] = true
		ids = append(ids, id)
	}
	switch {
	case len(ids) == 0:
		f["fee_ids"] = "请至少选择一项费用"
	case len(ids) > MaxFees:
		f["fee_ids"] = fmt.Sprintf("一次最多支付 %d 项费用", MaxFees)
	}
	if _, ok := ihos.ChannelLabels[req.Channel]; !ok {
		f["channel"] = "支付方式无效"
	}
	switch req.Source {
	case SourcePhone:
		if req.OpenID == "" && (req.PreSettlement == nil || req.PreSettlement.Cash > 0) {
			f["openid"] = "缺少微信用户标识（openid），请在微信中打开后支付"
		}
	case SourceKiosk:
	default:
		f["source"] = "来源应为 phone 或 kiosk"
	}
	if len(req.PatientID) > 36 || len(req.OpenID) > 128 {
		f["patient_id"] = "编号过长"
	}
	if len(f) > 0 {
		return nil, ihos.Invalid(f)
	}
	slices.Sort(ids)
	return ids, nil
}

// checkLink makes sure the platform patient is linked to the HIS record
// whose fees they pay.
func (c *Cloud) checkLink(ctx context.Context, req CreateRequest) error {
	var n int
	err := c.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM patient_links WHERE patient_id = ? AND his_patient_id = ? AND hospital_id = ? AND status = 'linked' AND deleted_at IS NULL`,
		req.PatientID, req.HISPatientID, req.HospitalID).Scan(&n)
	if err != nil {
		return ihos.Internal(err)
	}
	if n == 0 {
		return ihos.Errorf(ihos.EConflict, "该患者尚未关联此医院就诊档案，不能支付其费用")
	}
	return nil
}

// subject is what the patient sees on the payment page.
func subject(fees []ihos.HISFee) string {
	s := "诊间支付：" + ihos.Truncate(fees[0].ItemName, 40)
	if len(fees) > 1 {
		s += fmt.Sprintf(" 等 %d 项", len(fees))
	}
	return s
}

// holder is a payment that holds a fee.
type holder struct {
	feeID, itemName       string
	paymentID, businessID string
	status                string
}

// holdsMoney reports whether a payment in status holds money for its items
// (which are then paid, whatever the HIS says until it hears of it).
func holdsMoney(status string) bool {
	return status == ihos.PaymentPaid || status == ihos.PaymentPartiallyRefunded
}

// holders returns the payments holding any of the hospital's fees ids.
func (c *Cloud) holders(ctx context.Context, hospital string, feeIDs []string) ([]holder, error) {
	if len(feeIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(feeIDs))
	for _, id := range feeIDs {
		args = append(args, holdKey(hospital, id))
	}
	rows, err := c.DB.QueryContext(ctx, `SELECT b.fee_id, b.item_name, p.id, p.business_id, p.status FROM bill_items b JOIN payments p ON p.id = b.payment_id
		WHERE b.hold_key IN (?`+strings.Repeat(", ?", len(args)-1)+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []holder
	for rows.Next() {
		var h holder
		if err := rows.Scan(&h.feeID, &h.itemName, &h.paymentID, &h.businessID, &h.status); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// checkHolds refuses fees paid here already or in another payment under
// way, and releases the holds of payments that ended without money (or gave
// it all back), so their fees can be paid again.
func (c *Cloud) checkHolds(ctx context.Context, hospital, businessID string, feeIDs []string) error {
	hs, err := c.holders(ctx, hospital, feeIDs)
	if err != nil {
		return ihos.Internal(err)
	}
	released := map[string]bool{}
	for _, h := range hs {
		switch {
		case holdsMoney(h.status):
			return ihos.Errorf(ihos.EConflict, "费用 %s（%s）已支付，医院正在入账，请勿重复支付", h.feeID, ihos.Truncate(h.itemName, 40))
		case ihos.PaymentActive(h.status) && h.businessID == businessID:
			// The same selection: the payment service hands its payment back.
		case ihos.PaymentActive(h.status):
			return ihos.Errorf(ihos.EConflict, "费用 %s（%s）正在另一笔订单中支付，请先完成或取消该订单", h.feeID, ihos.Truncate(h.itemName, 40))
		case !released[h.paymentID]:
			released[h.paymentID] = true
			// hold_key is local to the cloud: no version bump, nothing to replicate.
			err := c.DB.Tx(ctx, func(tx *sql.Tx) error {
				_, err := c.DB.TxExec(ctx, tx, `UPDATE bill_items SET hold_key = NULL WHERE payment_id = ?`, h.paymentID)
				return err
			})
			if err != nil {
				return ihos.Internal(err)
			}
		}
	}
	return nil
}

// storeItems records the payment's items, once: a payment handed back for
// the same selection has them already. A fee another payment took in the
// meantime (an overlapping selection) gives this payment up.
func (c *Cloud) storeItems(ctx context.Context, p *ihos.Payment, hisPatientID string, fees []ihos.HISFee) error {
	ids := make([]string, 0, len(fees))
	for _, f := range fees {
		ids = append(ids, f.FeeID)
	}
	for attempt := 0; ; attempt++ {
		err := c.DB.Tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := c.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM bill_items WHERE payment_id = ?`, p.ID).Scan(&n); err != nil || n > 0 {
				return err
			}
			now := ihos.FormatTime(time.Now())
			refs := make([]sync.Ref, 0, len(fees))
			for _, f := range fees {
				id := ihos.NewID()
				if _, err := c.DB.TxExec(ctx, tx, `INSERT INTO bill_items (id, hospital_id, payment_id, his_patient_id, fee_id, visit_no, item_code, item_name, quantity, amount_fen,
					department_code, doctor_code, hold_key, created_at, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
					id, p.HospitalID, p.ID, hisPatientID, f.FeeID, ihos.Truncate(f.VisitNo, 64), ihos.Truncate(f.ItemCode, 64), ihos.Truncate(f.ItemName, 200),
					ihos.Truncate(f.Quantity, 20), f.AmountFen, ihos.Truncate(f.DepartmentCode, 64), ihos.Truncate(f.DoctorCode, 64),
					holdKey(p.HospitalID, f.FeeID), now, now); err != nil {
					return err
				}
				refs = append(refs, sync.Ref{Entity: "bill_items", ID: id})
			}
			return c.capture(ctx, tx, refs...)
		})
		if err == nil {
			c.committed()
			return nil
		}
		if !sqldb.IsUniqueViolation(err) {
			return ihos.Internal(err)
		}
		// A fee is held by another payment: release the holds of ended
		// payments and try once more, unless a live one holds it.
		herr := c.checkHolds(ctx, p.HospitalID, p.BusinessID, ids)
		if herr == nil && attempt == 0 {
			continue
		}
		if herr == nil {
			herr = ihos.Errorf(ihos.EConflict, "所选费用正在另一笔订单中支付，请稍后重试")
		}
		if _, cerr := c.Payments.Cancel(ctx, p.ID, payments.CancelRequest{Reason: "所选费用已在另一笔订单中"}); cerr != nil {
			return errors.Join(herr, cerr)
		}
		return herr
	}
}

// Items returns a payment's items, in fee id order.
func (c *Cloud) Items(ctx context.Context, paymentID string) ([]Item, error) {
	return loadItems(ctx, c.DB, nil, paymentID)
}

// RPC methods the cloud serves for the hospital (the kiosk creates and
// follows its payments through them).
const (
	RPCFees   = "billpay.fees"
	RPCCreate = "billpay.create"
	RPCGet    = "payments.get"
	RPCCancel = "payments.cancel"
)

// rpcActor is who acts for a hospital calling over the link.
func rpcActor(ctx context.Context, hospital string) context.Context {
	return ihos.WithActor(ctx, ihos.Actor{UserID: "hospital:" + hospital, Username: "hospital:" + hospital, Name: "医院自助机"})
}

// paymentOf returns a payment of the calling hospital; another hospital's is
// not found.
func (c *Cloud) paymentOf(ctx context.Context, hospital, id string, refresh bool) (*ihos.Payment, error) {
	p, err := c.Payments.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.HospitalID != hospital {
		return nil, ihos.Errorf(ihos.ENotFound, "支付订单不存在")
	}
	if refresh {
		return c.Payments.Resolve(ctx, id)
	}
	return p, nil
}

// ServeRPC answers the hospitals' calls. The hospital is the caller's
// (taken from the link), never the request's: an appliance pays and reads
// its own hospital's payments only.
func (c *Cloud) ServeRPC(l *sync.Link) error {
	decode := func(raw json.RawMessage, v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return ihos.Errorf(ihos.EInvalid, "请求格式错误")
		}
		return nil
	}
	handlers := map[string]sync.Handler{
		RPCFees: func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
			var req struct {
				HISPatientID string `json:"his_patient_id"`
			}
			if err := decode(raw, &req); err != nil {
				return nil, err
			}
			return c.Fees(ctx, hospital, req.HISPatientID)
		},
		RPCCreate: func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
			var req CreateRequest
			if err := decode(raw, &req); err != nil {
				return nil, err
			}
			req.HospitalID = hospital
			res, err := c.Create(rpcActor(ctx, hospital), req)
			var changed *payments.SplitChanged
			if err != nil && errors.As(err, &changed) && res != nil && res.Payment != nil {
				// The insurance settled another split than the one shown:
				// the caller gets the payment (NeedsConfirm, the new split)
				// to show or cancel, which an error alone would not name.
				return res, nil
			}
			return res, err
		},
		RPCGet: func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
			var req struct {
				PaymentID string `json:"payment_id"`
				Refresh   bool   `json:"refresh"`
			}
			if err := decode(raw, &req); err != nil {
				return nil, err
			}
			return c.paymentOf(ctx, hospital, req.PaymentID, req.Refresh)
		},
		RPCCancel: func(ctx context.Context, hospital string, raw json.RawMessage) (any, error) {
			var req struct {
				PaymentID string `json:"payment_id"`
				Reason    string `json:"reason"`
			}
			if err := decode(raw, &req); err != nil {
				return nil, err
			}
			if _, err := c.paymentOf(ctx, hospital, req.PaymentID, false); err != nil {
				return nil, err
			}
			return c.Payments.Cancel(rpcActor(ctx, hospital), req.PaymentID, payments.CancelRequest{Reason: req.Reason})
		},
	}
	for _, m := range []string{RPCFees, RPCCreate, RPCGet, RPCCancel} {
		if err := l.Serve(m, handlers[m]); err != nil {
			return err
		}
	}
	return nil
}
