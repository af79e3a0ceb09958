package emr

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/clinical"
	"ihos/his"
	"ihos/internal/sqldb"
)

// Exam and lab orders (检查检验申请) of a visit: written by its attending
// doctor from the hospital's current catalogue (his_catalog, replicated from
// the appliance), signed with the doctor's e-signature, then placed with the
// HIS (HIS.PlaceOrder, keyed by the order's id so a repeat places nothing
// twice). The HIS then bills the patient, who pays the fee with the bills
// (诊间支付). draft → signed (待发送) → sent.

// Order kinds.
const (
	KindExam = "exam"
	KindLab  = "lab"
)

// KindLabels are the kinds as people see them.
var KindLabels = map[string]string{KindExam: "检查", KindLab: "检验"}

var catalogKinds = map[string]string{KindExam: ihos.CatalogExam, KindLab: ihos.CatalogLab}

// Order statuses.
const (
	OrderDraft  = clinical.StatusDraft
	OrderSigned = clinical.StatusSigned // signed, not yet accepted by the HIS
	OrderSent   = "sent"
)

// OrderStatusLabels are the order statuses as people see them.
var OrderStatusLabels = map[string]string{OrderDraft: clinical.LabelDraft, OrderSigned: "待发送", OrderSent: clinical.LabelSentToHIS}

// MaxOrderItems is the most items one order holds.
const MaxOrderItems = 20

// OrderItem is one line of an order, priced from the catalogue.
type OrderItem struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	Unit      string `json:"unit,omitempty"`
	Specimen  string `json:"specimen,omitempty"` // labs
	PriceFen  int64  `json:"price_fen"`
	Price     int64  `json:"price"` // = PriceFen (the contract's name; money is integer fen)
	Quantity  int64  `json:"quantity"`
	AmountFen int64  `json:"amount_fen"`
}

// OrderLine is a line as the doctor writes it: the price is always the
// catalogue's.
type OrderLine struct {
	Code     string `json:"code"`
	Quantity int64  `json:"quantity"`
}

// OrderInput is an order as the doctor writes it.
type OrderInput struct {
	Kind  string      `json:"kind"` // exam, lab
	Items []OrderLine `json:"items"`
	Note  string      `json:"note"`
}

// Order is an exam or lab order.
type Order struct {
	ID           string      `json:"id"`
	HospitalID   string      `json:"hospital_id"`
	VisitID      string      `json:"visit_id"`
	PatientID    string      `json:"patient_id"`
	DoctorID     string      `json:"doctor_id"`
	DepartmentID string      `json:"department_id"`
	Kind         string      `json:"kind"`
	KindLabel    string      `json:"kind_label"`
	Status       string      `json:"status"`
	StatusLabel  string      `json:"status_label"`
	Items        []OrderItem `json:"items"`
	TotalFen     int64       `json:"total_fen"`
	Total        int64       `json:"total"` // = TotalFen (the contract's name; money is integer fen)
	Note         string      `json:"note"`
	DocSM3       string      `json:"doc_sm3,omitempty"`
	SignedAt     time.Time   `json:"signed_at,omitzero"`
	HISOrders    []string    `json:"his_orders,omitempty"`
	SentAt       time.Time   `json:"sent_at,omitzero"`
	SendError    string      `json:"send_error,omitempty"` // why the last attempt to place it failed
	RowVersion   int64       `json:"row_version"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`

	signedDoc string
	signature []byte
}

var errNoOrder = ihos.Errorf(ihos.ENotFound, "检查检验申请单不存在")

// priceOrder prices the doctor's lines from the hospital's current
// catalogue of the kind.
func (s *Service) priceOrder(ctx context.Context, hospital, kind string, in []OrderLine) ([]OrderItem, int64, error) {
	catKind, ok := catalogKinds[kind]
	if !ok {
		return nil, 0, ihos.Invalid(map[string]string{"kind": "申请类型应为检查（exam）或检验（lab）"})
	}
	if len(in) == 0 {
		return nil, 0, ihos.Invalid(map[string]string{"items": "请至少选择一个" + KindLabels[kind] + "项目"})
	}
	if len(in) > MaxOrderItems {
		return nil, 0, ihos.Invalid(map[string]string{"items": fmt.Sprintf("每张申请单最多 %d 个项目", MaxOrderItems)})
	}
	var out []OrderItem
	var total int64
	seen := map[string]bool{}
	for i, l := range in {
		field := fmt.Sprintf("items.%d", i)
		code := strings.TrimSpace(l.Code)
		if code == "" || len(code) > 64 {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": "请选择" + KindLabels[kind] + "项目"})
		}
		if seen[code] {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": "同一项目不能重复开具"})
		}
		seen[code] = true
		if l.Quantity <= 0 || l.Quantity > 99 {
			return nil, 0, ihos.Invalid(map[string]string{field + ".quantity": "数量应为 1 到 99"})
		}
		var it OrderItem
		var enabled bool
		err := s.DB.QueryRowContext(ctx, `SELECT name, unit, specimen, price_fen, enabled FROM his_catalog
			WHERE hospital_id = ? AND kind = ? AND code = ? AND deleted_at IS NULL`, hospital, catKind, code).
			Scan(&it.Name, &it.Unit, &it.Specimen, &it.PriceFen, &enabled)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": KindLabels[kind] + "目录中没有编码为 " + code + " 的项目"})
		}
		if err != nil {
			return nil, 0, ihos.Internal(err)
		}
		if !enabled {
			return nil, 0, ihos.Invalid(map[string]string{field + ".code": it.Name + " 已停用，不能开具"})
		}
		it.Code, it.Quantity, it.AmountFen, it.Price = code, l.Quantity, it.PriceFen*l.Quantity, it.PriceFen
		total += it.AmountFen
		out = append(out, it)
	}
	return out, total, nil
}

// CreateOrder writes a draft order for a visit, priced from the catalogue.
func (s *Service) CreateOrder(ctx context.Context, by, visitID string, in OrderInput) (*Order, error) {
	in.Note = strings.TrimSpace(in.Note)
	if utf8.RuneCountInString(in.Note) > 200 {
		return nil, ihos.Invalid(map[string]string{"note": "备注不能超过 200 个字"})
	}
	v, err := s.writableVisit(ctx, by, "开具检查检验申请", visitID)
	if err != nil {
		return nil, err
	}
	items, total, err := s.priceOrder(ctx, v.HospitalID, in.Kind, in.Items)
	if err != nil {
		return nil, err
	}
	now := s.now()
	o := &Order{ID: ihos.NewID(), HospitalID: v.HospitalID, VisitID: v.ID, PatientID: v.PatientID, DoctorID: v.DoctorID, DepartmentID: v.DepartmentID,
		Kind: in.Kind, Status: OrderDraft, Items: items, TotalFen: total, Note: in.Note, RowVersion: 1, CreatedAt: now, UpdatedAt: now}
	itemsJSON, err := json.Marshal(items)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO exam_orders (id, hospital_id, visit_id, patient_id, doctor_id, department_id, kind, status, items, total_fen,
			note, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			o.ID, o.HospitalID, o.VisitID, o.PatientID, o.DoctorID, o.DepartmentID, o.Kind, o.Status, string(itemsJSON), o.TotalFen, o.Note,
			ihos.FormatTime(now), ihos.FormatTime(now)); err != nil {
			return err
		}
		return s.recordOrder(ctx, tx, nil, o, by, "", fmt.Sprintf("医生 %s 为问诊 %s 开具%s申请草稿（%d 项，%s 元）", by, v.ID, KindLabels[o.Kind], len(items), ihos.FormatYuan(total)))
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return labelOrder(o), nil
}

// orderDocument is what the doctor signs.
type orderDocument struct {
	Type         string      `json:"type"`
	ID           string      `json:"id"`
	Kind         string      `json:"kind"`
	HospitalID   string      `json:"hospital_id"`
	VisitID      string      `json:"visit_id"`
	PatientID    string      `json:"patient_id"`
	DoctorID     string      `json:"doctor_id"`
	DepartmentID string      `json:"department_id"`
	Items        []OrderItem `json:"items"`
	TotalFen     int64       `json:"total_fen"`
	Note         string      `json:"note"`
	WrittenAt    string      `json:"written_at"`
}

// OrderDocument returns the canonical JSON of o that its doctor signs.
func OrderDocument(o *Order, at time.Time) ([]byte, error) {
	return clinical.Document(orderDocument{Type: "exam_order", ID: o.ID, Kind: o.Kind, HospitalID: o.HospitalID, VisitID: o.VisitID, PatientID: o.PatientID,
		DoctorID: o.DoctorID, DepartmentID: o.DepartmentID, Items: o.Items, TotalFen: o.TotalFen, Note: o.Note, WrittenAt: ihos.FormatTime(at)})
}

// SignOrder signs a draft order with its doctor's e-signature, priced again
// from the current catalogue first (what is signed is what the HIS will
// bill), and then sends it to the HIS. When the HIS cannot take it now the
// order stays signed (待发送) with the reason in SendError, and is sent by a
// later Send; signing itself succeeded.
func (s *Service) SignOrder(ctx context.Context, by, id, pin string) (*Order, error) {
	if err := clinical.CanSign(s.Signer, pin); err != nil {
		return nil, err
	}
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.writableVisit(ctx, by, "签署检查检验申请", o.VisitID); err != nil {
		return nil, err
	}
	if o.Status != OrderDraft {
		return nil, ihos.Errorf(ihos.EConflict, "申请单%s，不能再签名", OrderStatusLabels[o.Status])
	}
	in := make([]OrderLine, len(o.Items))
	for i, it := range o.Items {
		in[i] = OrderLine{Code: it.Code, Quantity: it.Quantity}
	}
	if o.Items, o.TotalFen, err = s.priceOrder(ctx, o.HospitalID, o.Kind, in); err != nil {
		return nil, err
	}
	sg, err := clinical.Sign(ctx, s.Signer, by, pin, s.now(), func(at time.Time) ([]byte, error) { return OrderDocument(o, at) })
	if err != nil {
		return nil, err
	}
	o, err = s.orderTransition(ctx, by, id, OrderSigned, func(cur *Order) (string, error) {
		if cur.Status != OrderDraft || cur.RowVersion != o.RowVersion {
			return "", ihos.Errorf(ihos.EConflict, "申请单在签名期间已被修改，请重新签名")
		}
		cur.Items, cur.TotalFen = o.Items, o.TotalFen
		cur.Status, cur.signedDoc, cur.DocSM3, cur.signature, cur.SignedAt = OrderSigned, sg.Doc, sg.SM3, sg.Sig, sg.At
		return fmt.Sprintf("医生 %s 电子签名%s申请（%s 元，文档 SM3 %s）", by, KindLabels[cur.Kind], ihos.FormatYuan(cur.TotalFen), cur.DocSM3), nil
	})
	if err != nil {
		return nil, err
	}
	if s.HIS == nil {
		return o, nil
	}
	sent, err := s.Send(ctx, o.ID)
	if err != nil {
		// Signed, not sent: the order says why and waits for a retry.
		if got, gerr := s.GetOrder(ctx, o.ID); gerr == nil {
			return got, nil
		}
		return o, nil
	}
	return sent, nil
}

// Send places a signed order with the HIS. It is safe to repeat: the HIS
// request carries the order's id as its key. A failure is kept on the order
// (SendError) and returned; the order stays signed (待发送). Whoever wires
// the HIS retries the orders Pending lists.
func (s *Service) Send(ctx context.Context, id string) (*Order, error) {
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	switch o.Status {
	case OrderSent:
		return o, nil
	case OrderSigned:
	default:
		return nil, ihos.Errorf(ihos.EConflict, "申请单须先由医生电子签名才能发送至医院")
	}
	if s.HIS == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "医院 HIS 连接暂不可用，申请单已签名，待发送")
	}
	req, err := s.orderRequest(ctx, o)
	var placed []his.Order
	if err == nil {
		placed, err = s.HIS.PlaceOrder(ctx, o.HospitalID, req)
	}
	if err != nil {
		msg := ihos.ErrorMessage(err)
		if _, serr := s.orderTransition(ctx, "system", id, "", func(cur *Order) (string, error) {
			if cur.Status != OrderSigned {
				return "", ihos.Errorf(ihos.EConflict, "申请单%s", OrderStatusLabels[cur.Status])
			}
			if cur.SendError == ihos.Truncate(msg, 500) {
				return "", nil // the same failure again: nothing new to record
			}
			cur.SendError = ihos.Truncate(msg, 500)
			return "发送检查检验申请至医院失败：" + msg, nil
		}); serr != nil && ihos.ErrorCode(serr) != ihos.EConflict {
			return nil, serr
		}
		return nil, err
	}
	ids := make([]string, len(placed))
	for i, p := range placed {
		ids[i] = p.ID
	}
	return s.orderTransition(ctx, "system", id, OrderSent, func(cur *Order) (string, error) {
		if cur.Status == OrderSent {
			return "", nil // a concurrent Send stored it: same orders (same key)
		}
		if cur.Status != OrderSigned {
			return "", ihos.Errorf(ihos.EConflict, "申请单%s，不能发送至医院", OrderStatusLabels[cur.Status])
		}
		cur.Status, cur.HISOrders, cur.SentAt, cur.SendError = OrderSent, ids, s.now(), ""
		return fmt.Sprintf("%s申请已发送至医院 HIS（医嘱 %s）", KindLabels[cur.Kind], strings.Join(ids, ",")), nil
	})
}

// Pending lists signed orders not yet accepted by the HIS, oldest first:
// what a retry loop sends.
func (s *Service) Pending(ctx context.Context, limit int) ([]*Order, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return s.listOrders(ctx, `WHERE status = ? AND deleted_at IS NULL ORDER BY signed_at, id LIMIT `+itoa(limit), OrderSigned)
}

// orderRequest is the HIS order of o, with the patient's HIS record, the
// doctor's job number, the department's code and the visit's diagnoses.
func (s *Service) orderRequest(ctx context.Context, o *Order) (his.OrderRequest, error) {
	req, err := clinical.OrderRequest(ctx, s.DB, clinical.Parties{PatientID: o.PatientID, DoctorID: o.DoctorID, DepartmentID: o.DepartmentID,
		What: "申请单"})
	if err != nil {
		return req, err
	}
	req.Kind, req.Key = catalogKinds[o.Kind], o.ID
	var info []string
	if r, err := s.Current(ctx, o.VisitID, false); err == nil && len(r.Diagnoses) > 0 {
		var names []string
		for _, d := range r.Diagnoses {
			names = append(names, d.Name+"（"+d.Code+"）")
		}
		info = append(info, "诊断："+strings.Join(names, "、"))
	}
	if o.Note != "" {
		info = append(info, o.Note)
	}
	req.ClinicalInfo = ihos.Truncate(strings.Join(info, "；"), 500)
	for _, it := range o.Items {
		req.Items = append(req.Items, ihos.HISOrderLine{Code: it.Code, Name: it.Name, Quantity: itoa(int(it.Quantity)), Unit: it.Unit, Specimen: it.Specimen})
	}
	return req, nil
}

// orderTransition changes order id after change allows and applies it, in
// one transaction with its event row (when to is a status) and its audit
// record. A change that returns "" as its summary changes nothing.
func (s *Service) orderTransition(ctx context.Context, by, id, to string, change func(*Order) (string, error)) (*Order, error) {
	lock := func(tx *sql.Tx) (*Order, error) {
		return clinical.Lock(ctx, s.DB, tx, "exam_orders", orderCols, id, scanOrder, errNoOrder)
	}
	out, err := clinical.Transition(ctx, s.DB, lock, change, func(tx *sql.Tx, before, after *Order, summary string) error {
		after.RowVersion++
		after.UpdatedAt = s.now()
		items, err := json.Marshal(after.Items)
		if err != nil {
			return err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE exam_orders SET status = ?, items = ?, total_fen = ?, signed_doc = ?, doc_sm3 = ?, signature = ?, signed_at = ?,
			his_orders = ?, sent_at = ?, send_error = ?, version = ?, updated_at = ? WHERE id = ?`,
			after.Status, string(items), after.TotalFen, sqldb.NullString(after.signedDoc), after.DocSM3, clinical.SignatureColumn(after.signature),
			sqldb.NullTime(after.SignedAt), strings.Join(after.HISOrders, ","), sqldb.NullTime(after.SentAt), after.SendError, after.RowVersion,
			ihos.FormatTime(after.UpdatedAt), id); err != nil {
			return err
		}
		return s.recordOrder(ctx, tx, before, after, by, to, summary) // to "": no status change, audit only
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	return labelOrder(out), nil
}

// recordOrder appends the event row (a creation, or a status change to
// to) and the audit record, and captures the rows for the appliance.
func (s *Service) recordOrder(ctx context.Context, tx *sql.Tx, before, after *Order, by, to, summary string) error {
	c := clinical.Change{HospitalID: after.HospitalID, ID: after.ID, Action: "update", To: to, Actor: by, At: after.UpdatedAt, Summary: summary,
		Before: clinical.View(before, orderView), After: orderView(after)}
	if before == nil {
		c.To, c.Action = after.Status, "create"
	} else {
		c.From = before.Status
		if to != "" {
			c.Action = to
		}
	}
	c.Event = c.To != ""
	return s.orders().Record(ctx, tx, c)
}

func orderView(o *Order) any { return labelOrder(o) }

// GetOrder returns one order.
func (s *Service) GetOrder(ctx context.Context, id string) (*Order, error) {
	o, err := clinical.Get(ctx, s.DB, "exam_orders", orderCols, id, scanOrder, errNoOrder)
	if err != nil {
		return nil, err
	}
	return labelOrder(o), nil
}

// OrdersByVisit lists a visit's orders, oldest first.
func (s *Service) OrdersByVisit(ctx context.Context, visitID string) ([]*Order, error) {
	return s.listOrders(ctx, `WHERE visit_id = ? AND deleted_at IS NULL ORDER BY created_at, id`, visitID)
}

// OrderEvents lists an order's status changes, oldest first.
func (s *Service) OrderEvents(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT order_id, from_status, to_status, actor_id, at FROM exam_order_events WHERE order_id = ? ORDER BY at, id`, id)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (Event, error) {
		var e Event
		var at string
		err := row.Scan(&e.RecordID, &e.From, &e.To, &e.ActorID, &at)
		e.Action, e.At = e.To, sqldb.ParseTime(at)
		return e, err
	})
}

func (s *Service) listOrders(ctx context.Context, where string, args ...any) ([]*Order, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+orderCols+` FROM exam_orders `+where, args...)
	return sqldb.Collect(rows, err, func(row sqldb.Scanner) (*Order, error) {
		o, err := scanOrder(row)
		if err != nil {
			return nil, err
		}
		return labelOrder(o), nil
	})
}

// SignedDocument returns a signed order's document and signature.
func (o *Order) SignedDocument() (doc, sig []byte) { return []byte(o.signedDoc), o.signature }

const orderCols = `id, hospital_id, visit_id, patient_id, doctor_id, department_id, kind, status, items, total_fen, note, signed_doc, doc_sm3, signature,
	signed_at, his_orders, sent_at, send_error, version, created_at, updated_at`

func scanOrder(row sqldb.Scanner) (*Order, error) {
	var o Order
	var doc, sig, signed, sent sql.NullString
	var items, orders, created, updated string
	if err := row.Scan(&o.ID, &o.HospitalID, &o.VisitID, &o.PatientID, &o.DoctorID, &o.DepartmentID, &o.Kind, &o.Status, &items, &o.TotalFen, &o.Note,
		&doc, &o.DocSM3, &sig, &signed, &orders, &sent, &o.SendError, &o.RowVersion, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return nil, err
	}
	var err error
	if o.signature, err = clinical.ScanSignature(sig); err != nil {
		return nil, err
	}
	if orders != "" {
		o.HISOrders = strings.Split(orders, ",")
	}
	o.signedDoc = doc.String
	o.SignedAt, o.SentAt, o.CreatedAt, o.UpdatedAt = sqldb.ParseTime(signed.String), sqldb.ParseTime(sent.String), sqldb.ParseTime(created), sqldb.ParseTime(updated)
	return &o, nil
}

func labelOrder(o *Order) *Order {
	o.KindLabel, o.StatusLabel, o.Total = KindLabels[o.Kind], OrderStatusLabels[o.Status], o.TotalFen
	if o.Items == nil {
		o.Items = []OrderItem{}
	}
	return o
}
