// Package his is the appliance's link to the hospital information system:
// the adapters that speak to it (HL7 v2 over MLLP, HTTP/JSON; the profile is
// docs/his-interface.md), the durable outbound queue, the inbound result
// listener, the catalogue refresh, the follow-up eligibility check and the
// master patient index. Orders, results, catalogue items and patient links are
// appliance-owned and replicate to the cloud (Entities).
package his

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	"github.com/google/uuid"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Entities declares the HIS data the cloud receives.
func Entities() []sync.Entity {
	return []sync.Entity{
		{Name: "his_catalog", Table: "his_catalog", Owner: sync.Appliance},
		{Name: "his_orders", Table: "his_orders", Owner: sync.Appliance},
		{Name: "his_results", Table: "his_results", Owner: sync.Appliance},
		{Name: "patient_links", Table: "patient_links", Owner: sync.Appliance},
	}
}

// Service is the HIS link's business side.
type Service struct {
	DB       *sqldb.DB
	HIS      ihos.HIS
	Queue    *Queue
	Hospital string
	// Capture records replicated rows for the cloud inside a transaction
	// (sync.Replica.Capture); nil on a node without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	Logger      *slog.Logger

	refreshing stdsync.Mutex // one catalogue refresh at a time
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
	if s.Capture == nil || len(refs) == 0 {
		return nil
	}
	return s.Capture(ctx, tx, refs...)
}

func (s *Service) committed() {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// OrderRequest is an order to send to the HIS: lab items, exam items or drugs
// (a prescription) for one patient's visit.
type OrderRequest struct {
	Kind           string              `json:"kind"` // ihos.CatalogDrug, CatalogLab, CatalogExam
	Patient        ihos.HISPatient     `json:"patient"`
	VisitNo        string              `json:"visit_no"`
	DepartmentCode string              `json:"department_code"`
	DepartmentName string              `json:"department_name"`
	DoctorCode     string              `json:"doctor_code"`
	DoctorName     string              `json:"doctor_name"`
	ClinicalInfo   string              `json:"clinical_info"`
	Items          []ihos.HISOrderLine `json:"items"`
	// Key makes placing idempotent (a prescription's id, say): the order
	// lines' placer numbers follow from it (KeyedOrderNo), so a call
	// repeated after a lost answer returns the orders the first one placed
	// instead of placing them twice. Empty: every call places new orders.
	Key string `json:"key,omitempty"`
	// Fees, if any, are the order's charges already paid online (a paid
	// prescription): posted to the HIS (DFT^P03) right after the order, in
	// the same transaction, so they are posted exactly when it is placed.
	Fees []ihos.HISFeeLine `json:"fees,omitempty"`
}

// KeyedOrderNo is the placer order number of line i of the order with key
// key: a name-based UUID (SHA-1, RFC 9562 v5), the same on every call.
func KeyedOrderNo(key string, i int) string {
	return uuid.NewSHA1(orderKeySpace, fmt.Appendf(nil, "%s/%d", key, i)).String()
}

// orderKeySpace is the UUID namespace of keyed order numbers.
var orderKeySpace = uuid.MustParse("6f1d2c4e-7b0a-5e39-9c61-2a8f5b3d0e47")

// placed returns the orders an earlier call with req.Key placed (nil when
// none did).
func (s *Service) placed(ctx context.Context, key string) ([]Order, error) {
	var msgID string
	err := s.DB.QueryRowContext(ctx, `SELECT message_id FROM his_orders WHERE id = ?`, KeyedOrderNo(key, 0)).Scan(&msgID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, ihos.Internal(err)
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, kind, patient_his_id, code, name, status, filler_order_no, message_id FROM his_orders WHERE message_id = ?`, msgID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	byID := map[string]Order{}
	for rows.Next() {
		var o Order
		if err := rows.Scan(&o.ID, &o.Kind, &o.PatientHISID, &o.Code, &o.Name, &o.Status, &o.FillerOrderNo, &o.MessageID); err != nil {
			return nil, ihos.Internal(err)
		}
		byID[o.ID] = o
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	out := make([]Order, 0, len(byID))
	for i := 0; ; i++ { // in line order
		o, ok := byID[KeyedOrderNo(key, i)]
		if !ok {
			break
		}
		out = append(out, o)
	}
	return out, nil
}

// Order is an order line as the platform tracks it.
type Order struct {
	ID            string `json:"id"` // the placer order number
	Kind          string `json:"kind"`
	PatientHISID  string `json:"patient_his_id"`
	Code          string `json:"code"`
	Name          string `json:"name"`
	Status        string `json:"status"`
	FillerOrderNo string `json:"filler_order_no"`
	MessageID     string `json:"message_id"`
}

// Order states.
const (
	OrderQueued     = "queued"
	OrderAccepted   = "accepted"
	OrderRefused    = "refused"
	OrderInProgress = "in_progress"
	OrderCompleted  = "completed"
	OrderCancelled  = "cancelled"
)

var orderEvents = map[string]string{ihos.CatalogDrug: ihos.HISPharmacyOrder, ihos.CatalogLab: ihos.HISLabOrder, ihos.CatalogExam: ihos.HISExamOrder}

// forbiddenOnline are the drug flags the regulations keep out of online
// prescriptions (DESIGN.md §7).
var forbiddenOnline = map[string]string{
	ihos.FlagNarcotic: "麻醉药品", ihos.FlagPsychotropic1: "第一类精神药品", ihos.FlagPsychotropic2: "第二类精神药品",
}

// PlaceOrder validates an order against the current catalogue, records its
// lines and queues the message for the HIS, in one transaction.
func (s *Service) PlaceOrder(ctx context.Context, req OrderRequest) ([]Order, error) {
	fields := map[string]string{}
	event, ok := orderEvents[req.Kind]
	if !ok {
		fields["kind"] = "医嘱类型应为 DRUG、LAB 或 EXAM"
	}
	if strings.TrimSpace(req.Patient.HISID) == "" {
		fields["patient.his_id"] = "请先关联患者的 HIS 档案"
	}
	if len(req.Items) == 0 {
		fields["items"] = "请至少选择一个项目"
	}
	if len(req.Items) > 50 {
		fields["items"] = "一次最多 50 个项目"
	}
	if len(req.Key) > 100 {
		fields["key"] = "幂等键不能超过 100 个字符"
	}
	if len(fields) > 0 {
		return nil, ihos.Invalid(fields)
	}
	if req.Key != "" {
		if done, err := s.placed(ctx, req.Key); err != nil || len(done) > 0 {
			return done, err
		}
	}
	base := ihos.HISMessageData{Patient: req.Patient, VisitNo: req.VisitNo,
		DepartmentCode: req.DepartmentCode, DepartmentName: req.DepartmentName, DoctorCode: req.DoctorCode,
		DoctorName: req.DoctorName, ClinicalInfo: req.ClinicalInfo}
	var msg ihos.HISMessage
	var orders []Order
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error { // may run again on a retry: start from the request each time
		orders = orders[:0]
		msg = ihos.HISMessage{Event: event, Data: base}
		now := ihos.FormatTime(time.Now())
		msg.ID = ihos.NewID()
		var refs []sync.Ref
		for i, it := range req.Items {
			var name, flags, unit, specimen string
			var enabled bool
			err := s.DB.TxQueryRow(ctx, tx, `SELECT name, flags, unit, specimen, enabled FROM his_catalog WHERE kind = ? AND code = ? AND deleted_at IS NULL`,
				req.Kind, it.Code).Scan(&name, &flags, &unit, &specimen, &enabled)
			if errors.Is(err, sql.ErrNoRows) {
				return ihos.Invalid(map[string]string{fmt.Sprintf("items.%d.code", i): "目录中没有编码为 " + ihos.Truncate(it.Code, 32) + " 的项目，请刷新目录"})
			}
			if err != nil {
				return err
			}
			if !enabled {
				return ihos.Invalid(map[string]string{fmt.Sprintf("items.%d.code", i): name + " 已停用"})
			}
			for _, f := range strings.Split(flags, ",") {
				if label, bad := forbiddenOnline[f]; bad && req.Kind == ihos.CatalogDrug {
					return ihos.Invalid(map[string]string{fmt.Sprintf("items.%d.code", i): name + " 属于" + label + "，不能在互联网医院开具"})
				}
			}
			it.Name = name
			if it.Unit == "" {
				it.Unit = unit
			}
			if it.Specimen == "" {
				it.Specimen = specimen
			}
			it.PlacerOrderNo = ihos.NewID()
			if req.Key != "" {
				it.PlacerOrderNo = KeyedOrderNo(req.Key, i)
			}
			o := Order{ID: it.PlacerOrderNo, Kind: req.Kind, PatientHISID: req.Patient.HISID, Code: it.Code, Name: name, Status: OrderQueued, MessageID: msg.ID}
			if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO his_orders (id, hospital_id, kind, patient_his_id, visit_no, code, name, quantity, department_code, doctor_code, message_id, status, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, o.ID, s.Hospital, o.Kind, o.PatientHISID, ihos.Truncate(req.VisitNo, 64), o.Code, o.Name,
				ihos.Truncate(it.Quantity, 20), ihos.Truncate(req.DepartmentCode, 64), ihos.Truncate(req.DoctorCode, 64), msg.ID, o.Status, now, now); err != nil {
				return err
			}
			msg.Data.Orders = append(msg.Data.Orders, it)
			orders = append(orders, o)
			refs = append(refs, sync.Ref{Entity: "his_orders", ID: o.ID})
		}
		if err := s.mapCodes(ctx, tx, &msg.Data, req.Kind == ihos.CatalogDrug); err != nil {
			return err
		}
		if err := s.Queue.Enqueue(ctx, tx, req.Patient.HISID, &msg); err != nil {
			return err
		}
		if len(req.Fees) > 0 {
			fees := base
			fees.Fees = req.Fees
			if _, err := s.Send(ctx, tx, ihos.HISFees, fees); err != nil {
				return err
			}
		}
		return s.capture(ctx, tx, refs...)
	})
	if req.Key != "" && sqldb.IsUniqueViolation(err) {
		return s.placed(ctx, req.Key) // a concurrent call with the same key placed it
	}
	if err != nil {
		return nil, err
	}
	s.Queue.Kick()
	s.committed()
	return orders, nil
}

// OnAnswer is the queue's hook: an order's lines become accepted (with the
// HIS's filler numbers) or refused with the HIS's reason.
func (s *Service) OnAnswer(ctx context.Context, tx *sql.Tx, m ihos.HISMessage, ack ihos.HISAck) error {
	if _, isOrder := map[string]bool{ihos.HISPharmacyOrder: true, ihos.HISLabOrder: true, ihos.HISExamOrder: true}[m.Event]; !isOrder {
		return nil
	}
	status, text := OrderAccepted, ""
	if ack.Code != ihos.AckAccepted {
		status, text = OrderRefused, ack.Text
	}
	now := ihos.FormatTime(time.Now())
	var refs []sync.Ref
	for _, line := range m.Data.Orders {
		res, err := s.DB.TxExec(ctx, tx, `UPDATE his_orders SET status = ?, filler_order_no = CASE WHEN ? = '' THEN filler_order_no ELSE ? END, status_text = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND status IN ('queued', 'refused')`, status, ack.Filler[line.PlacerOrderNo], ack.Filler[line.PlacerOrderNo], ihos.Truncate(text, 500), now, line.PlacerOrderNo)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			refs = append(refs, sync.Ref{Entity: "his_orders", ID: line.PlacerOrderNo})
		}
	}
	return s.capture(ctx, tx, refs...)
}

// StoreResult stores a result the HIS sent, once: a resend of the same
// message (same control id) is acknowledged and ignored. An unknown order is
// an error the listener answers with AE.
func (s *Service) StoreResult(ctx context.Context, r ihos.HISResult) error {
	if r.PlacerOrderNo == "" {
		return ihos.Errorf(ihos.EInvalid, "结果缺少申请单号（ORC-2/OBR-2）")
	}
	obs, err := json.Marshal(r.Observations)
	if err != nil {
		return err
	}
	stored := false
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		stored = false
		now := ihos.FormatTime(time.Now())
		if r.ControlID != "" {
			res, err := s.DB.TxExec(ctx, tx, `INSERT INTO his_inbox (control_id, received_at) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM his_inbox WHERE control_id = ?)`,
				r.ControlID, now, r.ControlID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // seen before
			}
		}
		var patient, filler string
		err := s.DB.TxQueryRow(ctx, tx, `SELECT patient_his_id, filler_order_no FROM his_orders WHERE id = ?`+s.DB.ForUpdate(), r.PlacerOrderNo).Scan(&patient, &filler)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "未找到申请单 %s", ihos.Truncate(r.PlacerOrderNo, 40))
		}
		if err != nil {
			return err
		}
		status := map[string]string{"CM": OrderCompleted, "IP": OrderInProgress, "CA": OrderCancelled, "": OrderCompleted}[r.OrderStatus]
		if status == "" {
			status = OrderInProgress
		}
		if r.FillerOrderNo == "" {
			r.FillerOrderNo = filler
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE his_orders SET status = ?, filler_order_no = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			status, ihos.Truncate(r.FillerOrderNo, 64), now, r.PlacerOrderNo); err != nil {
			return err
		}
		reported := r.ReportedAt
		if reported.IsZero() {
			reported = time.Now()
		}
		var id string
		err = s.DB.TxQueryRow(ctx, tx, `SELECT id FROM his_results WHERE order_id = ?`, r.PlacerOrderNo).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = ihos.NewID()
			_, err = s.DB.TxExec(ctx, tx, `INSERT INTO his_results (id, hospital_id, order_id, patient_his_id, filler_order_no, result_status, service_code, service_name, reported_at, observations, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, s.Hospital, r.PlacerOrderNo, patient, ihos.Truncate(r.FillerOrderNo, 64), ihos.Truncate(or(r.ResultStatus, "F"), 2),
				ihos.Truncate(r.ServiceCode, 64), ihos.Truncate(r.ServiceName, 200), ihos.FormatTime(reported), string(obs), now, now)
		case err == nil:
			_, err = s.DB.TxExec(ctx, tx, `UPDATE his_results SET filler_order_no = ?, result_status = ?, service_code = ?, service_name = ?, reported_at = ?, observations = ?, version = version + 1, updated_at = ? WHERE id = ?`,
				ihos.Truncate(r.FillerOrderNo, 64), ihos.Truncate(or(r.ResultStatus, "F"), 2), ihos.Truncate(r.ServiceCode, 64), ihos.Truncate(r.ServiceName, 200),
				ihos.FormatTime(reported), string(obs), now, id)
		}
		if err != nil {
			return err
		}
		stored = true
		return s.capture(ctx, tx, sync.Ref{Entity: "his_orders", ID: r.PlacerOrderNo}, sync.Ref{Entity: "his_results", ID: id})
	})
	if err == nil && stored {
		s.committed()
	}
	return err
}

// CatalogReport says what a refresh changed.
type CatalogReport struct {
	Kind    string `json:"kind"`
	Total   int    `json:"total"`
	Added   int    `json:"added"`
	Changed int    `json:"changed"`
	Removed int    `json:"removed"` // no longer served by the HIS: disabled, kept for old orders
}

// catalogChunk bounds the rows of one transaction (and so of one sync
// message) during a refresh.
const catalogChunk = 200

// RefreshCatalog fetches every catalogue from the HIS and stores what changed;
// the cloud receives the changes through sync, so doctors order from current
// items and prices.
func (s *Service) RefreshCatalog(ctx context.Context) ([]CatalogReport, error) {
	s.refreshing.Lock()
	defer s.refreshing.Unlock()
	var reports []CatalogReport
	for _, kind := range ihos.CatalogKinds {
		items, err := s.HIS.Catalog(ctx, kind)
		if err != nil {
			return reports, err
		}
		rep, err := s.storeCatalog(ctx, kind, items)
		if err != nil {
			return reports, err
		}
		reports = append(reports, rep)
	}
	s.committed()
	return reports, nil
}

type catalogRow struct {
	id                                          string
	name, spec, unit, flags, category, specimen string
	price                                       int64
	stock                                       sql.NullInt64
	enabled                                     bool
}

func (s *Service) storeCatalog(ctx context.Context, kind string, items []ihos.CatalogItem) (CatalogReport, error) {
	rep := CatalogReport{Kind: kind, Total: len(items)}
	have := map[string]catalogRow{}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, code, name, spec, unit, flags, category, specimen, price_fen, stock, enabled FROM his_catalog WHERE kind = ? AND deleted_at IS NULL`, kind)
	if err != nil {
		return rep, err
	}
	for rows.Next() {
		var r catalogRow
		var code string
		if err := rows.Scan(&r.id, &code, &r.name, &r.spec, &r.unit, &r.flags, &r.category, &r.specimen, &r.price, &r.stock, &r.enabled); err != nil {
			rows.Close()
			return rep, err
		}
		have[code] = r
	}
	rows.Close()

	type write struct {
		insert bool
		id     string
		it     ihos.CatalogItem
	}
	var writes []write
	seen := map[string]bool{}
	for _, it := range items {
		if it.Code == "" || seen[it.Code] {
			continue
		}
		seen[it.Code] = true
		it.Kind = kind
		old, ok := have[it.Code]
		flags := strings.Join(it.Flags, ",")
		var stock sql.NullInt64
		if it.Stock != nil {
			stock = sql.NullInt64{Int64: *it.Stock, Valid: true}
		}
		switch {
		case !ok:
			writes = append(writes, write{insert: true, id: ihos.NewID(), it: it})
			rep.Added++
		case old.name != it.Name || old.spec != it.Spec || old.unit != it.Unit || old.flags != flags || old.category != it.Category ||
			old.specimen != it.Specimen || old.price != it.PriceFen || old.stock != stock || old.enabled != it.Active:
			writes = append(writes, write{id: old.id, it: it})
			rep.Changed++
		}
	}
	var gone []string
	for code, r := range have {
		if !seen[code] && r.enabled {
			gone = append(gone, r.id)
		}
	}
	slices.Sort(gone)
	rep.Removed = len(gone)

	for start := 0; start < len(writes) || (start == 0 && len(gone) > 0); start += catalogChunk {
		chunk := writes[min(start, len(writes)):min(start+catalogChunk, len(writes))]
		last := start+catalogChunk >= len(writes)
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			now := ihos.FormatTime(time.Now())
			var refs []sync.Ref
			for _, w := range chunk {
				it := w.it
				var stock any
				if it.Stock != nil {
					stock = *it.Stock
				}
				var err error
				if w.insert {
					_, err = s.DB.TxExec(ctx, tx, `INSERT INTO his_catalog (id, hospital_id, kind, code, name, spec, unit, price_fen, stock, flags, category, specimen, enabled, created_at, updated_at)
						VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, w.id, s.Hospital, kind, ihos.Truncate(it.Code, 64), ihos.Truncate(it.Name, 200),
						ihos.Truncate(it.Spec, 200), ihos.Truncate(it.Unit, 20), it.PriceFen, stock, ihos.Truncate(strings.Join(it.Flags, ","), 100),
						ihos.Truncate(it.Category, 50), ihos.Truncate(it.Specimen, 50), it.Active, now, now)
				} else {
					_, err = s.DB.TxExec(ctx, tx, `UPDATE his_catalog SET name = ?, spec = ?, unit = ?, price_fen = ?, stock = ?, flags = ?, category = ?, specimen = ?, enabled = ?, version = version + 1, updated_at = ? WHERE id = ?`,
						ihos.Truncate(it.Name, 200), ihos.Truncate(it.Spec, 200), ihos.Truncate(it.Unit, 20), it.PriceFen, stock,
						ihos.Truncate(strings.Join(it.Flags, ","), 100), ihos.Truncate(it.Category, 50), ihos.Truncate(it.Specimen, 50), it.Active, now, w.id)
				}
				if err != nil {
					return err
				}
				refs = append(refs, sync.Ref{Entity: "his_catalog", ID: w.id})
			}
			if last {
				for _, id := range gone {
					if _, err := s.DB.TxExec(ctx, tx, `UPDATE his_catalog SET enabled = 0, version = version + 1, updated_at = ? WHERE id = ?`, now, id); err != nil {
						return err
					}
					refs = append(refs, sync.Ref{Entity: "his_catalog", ID: id})
				}
			}
			return s.capture(ctx, tx, refs...)
		})
		if err != nil {
			return rep, err
		}
		if last {
			break
		}
	}
	return rep, nil
}

// RunCatalogRefresh refreshes the catalogues now and then every interval
// until ctx ends; a failed refresh is logged and retried at the next tick.
func (s *Service) RunCatalogRefresh(ctx context.Context, every time.Duration) {
	for {
		if _, err := s.RefreshCatalog(ctx); err != nil && ctx.Err() == nil {
			s.logger().Warn("his: catalogue refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Eligibility is the answer of the follow-up check (DESIGN.md §7): online
// visits are follow-up visits of a condition diagnosed offline at this
// hospital within the period.
type Eligibility struct {
	Eligible  bool             `json:"eligible"`
	Reason    string           `json:"reason"`
	Diagnoses []ihos.Diagnosis `json:"diagnoses"` // the offline diagnoses that qualify
}

// CheckFollowUp asks the HIS whether the patient had an offline diagnosis
// whose ICD-10 code starts with one of codes (all diagnoses when codes is
// empty) within the period before now.
func (s *Service) CheckFollowUp(ctx context.Context, hisPatientID string, codes []string, within time.Duration) (Eligibility, error) {
	return s.checkFollowUp(ctx, hisPatientID, codes, within, nil, "")
}

// CheckFollowUpIn is CheckFollowUp limited to the visits of one department
// (the platform's code and name): the code mapped to the HIS's
// (his_code_maps), else the same department name.
func (s *Service) CheckFollowUpIn(ctx context.Context, hisPatientID, deptCode, deptName string, codes []string, within time.Duration) (Eligibility, error) {
	hisCode := deptCode
	if deptCode != "" {
		err := s.DB.QueryRowContext(ctx, `SELECT his_code FROM his_code_maps WHERE kind = ? AND platform_code = ? AND enabled = 1 AND deleted_at IS NULL`,
			MapDepartment, deptCode).Scan(&hisCode)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Eligibility{}, ihos.Internal(err)
		}
	}
	in := func(v ihos.HISVisit) bool {
		return (hisCode != "" && v.DepartmentCode == hisCode) || (deptName != "" && strings.TrimSpace(v.DepartmentName) == strings.TrimSpace(deptName))
	}
	label := deptName
	if label == "" {
		label = deptCode
	}
	return s.checkFollowUp(ctx, hisPatientID, codes, within, in, label)
}

func (s *Service) checkFollowUp(ctx context.Context, hisPatientID string, codes []string, within time.Duration, in func(ihos.HISVisit) bool, dept string) (Eligibility, error) {
	if hisPatientID == "" {
		return Eligibility{}, ihos.Invalid(map[string]string{"patient": "缺少 HIS 患者编号"})
	}
	since := time.Now().Add(-within)
	visits, err := s.HIS.VisitHistory(ctx, hisPatientID, since)
	if err != nil {
		return Eligibility{}, err
	}
	var e Eligibility
	for _, v := range visits {
		if in != nil && !in(v) {
			continue
		}
		for _, d := range v.Diagnoses {
			at := d.DiagnosedAt
			if at.IsZero() {
				at = v.VisitedAt
			}
			if at.Before(since) {
				continue
			}
			if len(codes) == 0 || slices.ContainsFunc(codes, func(c string) bool { return c != "" && strings.HasPrefix(strings.ToUpper(d.Code), strings.ToUpper(c)) }) {
				e.Diagnoses = append(e.Diagnoses, d)
			}
		}
	}
	days := int(within.Hours() / 24)
	if len(e.Diagnoses) > 0 {
		e.Eligible = true
		e.Reason = fmt.Sprintf("近 %d 天内在本院线下确诊：%s（%s）", days, e.Diagnoses[0].Name, e.Diagnoses[0].Code)
	} else {
		e.Reason = fmt.Sprintf("近 %d 天内没有在本院线下就诊并确诊该疾病的记录，互联网医院仅提供复诊服务，请先到院就诊", days)
		if dept != "" {
			e.Reason = fmt.Sprintf("近 %d 天内没有在本院%s线下就诊并确诊的记录，互联网医院仅提供复诊服务，请先到院就诊", days, dept)
		}
	}
	return e, nil
}
