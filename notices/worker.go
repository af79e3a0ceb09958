package notices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/visits"
)

// Run turns queued changes into notices until ctx ends: at once when Follow
// kicks it, else every Poll.
func (s *Service) Run(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	backoff := poll
	for ctx.Err() == nil {
		n, err := s.Process(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			slog.ErrorContext(ctx, "notices: worker", "err", err)
			backoff = min(backoff*2, 5*time.Second)
		case err == nil:
			backoff = poll
		}
		if err == nil && n > 0 {
			continue // more may be queued
		}
		select {
		case <-ctx.Done():
		case <-s.Kick:
			// Follow kicks from inside the transaction that queues: give it
			// a moment to commit.
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		case <-time.After(backoff):
		}
	}
}

// batchSize is how many queued changes one transaction handles.
const batchSize = 200

// queued is a row of notice_feed.
type queued struct {
	id, change, hospital, entity, rowID string
	vals                                map[string]string
}

func (q queued) v(col string) string { return q.vals[col] }

// draft is a notice to make.
type draft struct {
	to        Recipient
	hospital  string
	kind      string
	title     string
	body      string
	link      string
	subject   string
	key       string // unique per recipient: the thing it is about
	coalesce  bool   // a "新消息" notice: update the unread one of subject instead
	coalTitle string // the title once it stands for more than one message ("%d" = count)
}

// Process handles one batch of queued changes: it makes their notices and
// removes them from the queue in one transaction, then wakes the recipients'
// streams. It returns how many queued changes it handled.
func (s *Service) Process(ctx context.Context) (int, error) {
	// The common case is an empty queue: find that out without a write
	// transaction.
	var probe string
	switch err := s.DB.QueryRowContext(ctx, `SELECT id FROM notice_feed ORDER BY id LIMIT 1`).Scan(&probe); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, err
	}
	var handled int
	var woken []Recipient
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		handled, woken = 0, nil
		// The seq row's lock serialises workers of several cloud processes
		// sharing one MariaDB: the second waits, then sees the queue the
		// first left.
		var seq int64
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT value FROM notice_state WHERE name = 'seq'`+s.DB.ForUpdate()).Scan(&seq); err != nil {
			return fmt.Errorf("notices: seq: %w", err)
		}
		start := seq
		rows, err := s.DB.TxQuery(ctx, tx, `SELECT id, change_id, hospital_id, entity, row_id, vals FROM notice_feed ORDER BY id LIMIT ?`, batchSize)
		if err != nil {
			return err
		}
		var batch []queued
		for rows.Next() {
			var q queued
			var vals string
			if err := rows.Scan(&q.id, &q.change, &q.hospital, &q.entity, &q.rowID, &vals); err != nil {
				rows.Close()
				return err
			}
			if json.Unmarshal([]byte(vals), &q.vals) != nil {
				q.vals = map[string]string{}
			}
			batch = append(batch, q)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		seen := map[Recipient]bool{}
		for _, q := range batch {
			drafts, err := s.derive(ctx, tx, q)
			if err != nil {
				return fmt.Errorf("notices: %s %s: %w", q.entity, q.rowID, err)
			}
			for _, d := range drafts {
				changed, err := s.put(ctx, tx, &seq, d)
				if err != nil {
					return err
				}
				if changed && !seen[d.to] {
					seen[d.to] = true
					woken = append(woken, d.to)
				}
			}
		}
		for i := 0; i < len(batch); i += 100 {
			part := batch[i:min(i+100, len(batch))]
			ids := make([]any, len(part))
			for j, q := range part {
				ids[j] = q.id
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM notice_feed WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+`)`, ids...); err != nil {
				return err
			}
		}
		if seq != start {
			if _, err := s.DB.TxExec(ctx, tx, `UPDATE notice_state SET value = ? WHERE name = 'seq'`, seq); err != nil {
				return err
			}
		}
		handled = len(batch)
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.wake(ctx, woken)
	return handled, nil
}

// put writes d: a new notice, or for a coalescing one the update of the
// recipient's unread notice about the same subject. It reports whether
// anything changed (a notice already made for d.key is not made again).
func (s *Service) put(ctx context.Context, tx *sql.Tx, seq *int64, d draft) (bool, error) {
	now := ihos.FormatTime(s.now())
	if d.coalesce {
		var id string
		var count int
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id, coalesced FROM notices WHERE recipient_kind = ? AND recipient_id = ? AND read_at IS NULL
			AND kind = ? AND subject_id = ? ORDER BY seq DESC LIMIT 1`, d.to.Kind, d.to.ID, d.kind, d.subject).Scan(&id, &count)
		switch {
		case err == nil:
			*seq++
			count++
			title := d.title
			if d.coalTitle != "" {
				title = fmt.Sprintf(d.coalTitle, count)
			}
			_, err := s.DB.TxExec(ctx, tx, `UPDATE notices SET seq = ?, title = ?, body = ?, coalesced = ?, updated_at = ? WHERE id = ?`,
				*seq, truncate(title, 100), truncate(d.body, 500), count, now, id)
			return err == nil, err
		case !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
	}
	var n int
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM notices WHERE recipient_kind = ? AND recipient_id = ? AND dedupe_key = ?`,
		d.to.Kind, d.to.ID, d.key).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	*seq++
	_, err := s.DB.TxExec(ctx, tx, `INSERT INTO notices (id, seq, hospital_id, recipient_kind, recipient_id, kind, title, body, link, subject_id,
		dedupe_key, coalesced, read_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, NULL, ?, ?)`,
		ihos.NewID(), *seq, d.hospital, d.to.Kind, d.to.ID, d.kind, truncate(d.title, 100), truncate(d.body, 500), truncate(d.link, 300),
		d.subject, truncate(d.key, 120), now, now)
	return err == nil, err
}

// wake tells the recipients' open streams to look again: a doctor's stream
// listens to the doctor, a patient's to one member of the account, so every
// member's is woken.
func (s *Service) wake(ctx context.Context, to []Recipient) {
	if s.Visits == nil || len(to) == 0 {
		return
	}
	publish := func(n visits.Notice) {
		switch {
		case s.Visits.Bus != nil:
			s.Visits.Bus.Publish(n)
		case s.Visits.Hub != nil:
			s.Visits.Hub.Deliver(n)
		}
	}
	for _, rc := range to {
		if rc.Kind == ToStaff {
			publish(visits.Notice{Doctor: rc.ID})
			continue
		}
		members, err := s.strings(ctx, nil, `SELECT patient_id FROM patient_members WHERE account_id = ? AND deleted_at IS NULL`, rc.ID)
		if err != nil {
			slog.WarnContext(ctx, "notices: wake", "err", err)
			continue
		}
		for _, p := range members {
			publish(visits.Notice{Patient: p})
		}
	}
}

// strings reads one text column (in tx when it is set).
func (s *Service) strings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	var rows *sql.Rows
	var err error
	if tx != nil {
		rows, err = s.DB.TxQuery(ctx, tx, q, args...)
	} else {
		rows, err = s.DB.QueryContext(ctx, q, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// one reads one text value; "" when there is no row.
func (s *Service) one(ctx context.Context, tx *sql.Tx, q string, args ...any) (string, error) {
	var v sql.NullString
	err := s.DB.TxQueryRow(ctx, tx, q, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v.String, err
}

// accounts returns the patient accounts patient is a member of: every
// family that booked for them hears about them.
func (s *Service) accounts(ctx context.Context, tx *sql.Tx, patient string) ([]Recipient, error) {
	if patient == "" {
		return nil, nil
	}
	ids, err := s.strings(ctx, tx, `SELECT DISTINCT account_id FROM patient_members WHERE patient_id = ? AND deleted_at IS NULL ORDER BY account_id`, patient)
	if err != nil {
		return nil, err
	}
	out := make([]Recipient, len(ids))
	for i, id := range ids {
		out[i] = Recipient{Kind: ToPatient, ID: id}
	}
	return out, nil
}

func (s *Service) staffName(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	return s.one(ctx, tx, `SELECT name FROM staff WHERE id = ?`, id)
}

func (s *Service) patientName(ctx context.Context, tx *sql.Tx, id string) (string, error) {
	return s.one(ctx, tx, `SELECT name FROM patients WHERE id = ?`, id)
}

// Links the pages open (the H5 pages and the doctor app route on the
// fragment).
func patientVisitLink(visit string) string { return "/h5/#/visit/" + visit }
func doctorVisitLink(visit string) string  { return "/doctor/#/visit/" + visit }

const (
	patientVisitsLink  = "/h5/#/visits"
	patientOrdersLink  = "/h5/#/orders"
	patientReportsLink = "/h5/#/reports" // the H5 检查检验报告 screen
)

// toAll makes one draft per recipient.
func toAll(rcs []Recipient, d draft) []draft {
	out := make([]draft, 0, len(rcs))
	for _, rc := range rcs {
		d.to = rc
		out = append(out, d)
	}
	return out
}

// doctorTitle is how a notice names a doctor: 张三医生, or 医生.
func doctorTitle(name string) string {
	if name == "" {
		return "医生"
	}
	return name + "医生"
}

// derive returns the notices one queued change makes. A change whose rows
// do not say enough (a malformed value) makes none rather than stopping the
// queue; only database errors fail.
func (s *Service) derive(ctx context.Context, tx *sql.Tx, q queued) ([]draft, error) {
	base := draft{hospital: q.hospital}
	switch q.entity {
	case "bookings":
		rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
		if err != nil || len(rcs) == 0 {
			return nil, err
		}
		doctor, err := s.staffName(ctx, tx, q.v("staff_id"))
		if err != nil {
			return nil, err
		}
		when := ""
		if t, err := ihos.ParseTime(q.v("start_at")); err == nil {
			when = t.In(ihos.Shanghai).Format("1月2日 15:04") + " "
		}
		d := base
		d.kind, d.title, d.subject, d.key, d.link = KindBooking, "预约成功", q.rowID, "booking:"+q.rowID, patientVisitsLink
		d.body = fmt.Sprintf("您已成功预约%s %s的%s，请按时进入问诊。", doctorTitle(doctor), when, typeLabel(q.v("visit_type")))
		return toAll(rcs, d), nil

	case "visits":
		switch q.v("status") {
		case visits.StatusWaiting:
			doctor := q.v("doctor_id")
			if doctor == "" {
				return nil, nil
			}
			name, err := s.patientName(ctx, tx, q.v("patient_id"))
			if err != nil {
				return nil, err
			}
			if name == "" {
				name = "患者"
			}
			d := base
			d.to = Recipient{Kind: ToStaff, ID: doctor}
			d.kind, d.title, d.subject, d.key, d.link = KindPatientWaiting, "新的候诊患者", q.rowID, "waiting:"+q.rowID, doctorVisitLink(q.rowID)
			d.body = fmt.Sprintf("%s的%s已进入候诊队列。", name, typeLabel(q.v("visit_type")))
			return []draft{d}, nil
		case visits.StatusInProgress, visits.StatusEnded:
			rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
			if err != nil || len(rcs) == 0 {
				return nil, err
			}
			doctor, err := s.staffName(ctx, tx, q.v("doctor_id"))
			if err != nil {
				return nil, err
			}
			d := base
			d.subject, d.link = q.rowID, patientVisitLink(q.rowID)
			if q.v("status") == visits.StatusInProgress {
				d.kind, d.title, d.key = KindAccepted, "医生已接诊", "accepted:"+q.rowID
				d.body = fmt.Sprintf("%s已接诊，请进入问诊与医生交流。", doctorTitle(doctor))
			} else {
				d.kind, d.title, d.key = KindEnded, "问诊已结束", "ended:"+q.rowID
				d.body = fmt.Sprintf("本次问诊已结束，欢迎对%s的服务进行评价。", doctorTitle(doctor))
			}
			return toAll(rcs, d), nil
		}
		return nil, nil

	case "visit_messages":
		visit := q.v("visit_id")
		excerpt := q.v("body")
		switch q.v("kind") {
		case visits.KindImage:
			excerpt = "[图片]"
		case visits.KindVoice:
			excerpt = "[语音]"
		}
		d := base
		d.kind, d.subject, d.key, d.coalesce = KindMessage, visit, "message:"+q.rowID, true
		if q.v("sender_role") == visits.RoleDoctor {
			rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
			if err != nil || len(rcs) == 0 {
				return nil, err
			}
			doctor, err := s.staffName(ctx, tx, q.v("doctor_id"))
			if err != nil {
				return nil, err
			}
			d.title = doctorTitle(doctor) + "发来新消息"
			d.coalTitle = doctorTitle(doctor) + "发来 %d 条新消息"
			d.body, d.link = excerpt, patientVisitLink(visit)
			return toAll(rcs, d), nil
		}
		doctor := q.v("doctor_id")
		if doctor == "" {
			return nil, nil
		}
		name, err := s.patientName(ctx, tx, q.v("patient_id"))
		if err != nil {
			return nil, err
		}
		if name == "" {
			name = "患者"
		}
		d.to = Recipient{Kind: ToStaff, ID: doctor}
		d.title, d.coalTitle = name+"发来新消息", name+"发来 %d 条新消息"
		d.body, d.link = excerpt, doctorVisitLink(visit)
		return []draft{d}, nil

	case "prescriptions":
		visit := q.v("visit_id")
		rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
		if err != nil {
			return nil, err
		}
		d := base
		d.subject, d.link = q.rowID, patientVisitLink(visit)
		if q.v("status") == "approved" {
			total, _ := strconv.ParseInt(q.v("total_fen"), 10, 64)
			d.kind, d.title, d.key = KindRxApproved, "处方审核通过", "rx_approved:"+q.rowID
			d.body = fmt.Sprintf("您的处方已由药师审核通过，金额 %s 元，请及时支付。", ihos.FormatYuan(total))
			out := toAll(rcs, d)
			if doctor := q.v("doctor_id"); doctor != "" {
				// The prescribing doctor learns the review's outcome either way.
				dd := base
				dd.to = Recipient{Kind: ToStaff, ID: doctor}
				dd.kind, dd.title, dd.subject, dd.key, dd.link = KindRxApproved, "处方审核通过", q.rowID, "rx_approved:"+q.rowID, doctorVisitLink(visit)
				dd.body = "药师已审核通过您开具的处方，等待患者支付。"
				out = append(out, dd)
			}
			return out, nil
		}
		d.kind, d.title, d.key = KindRxRejected, "处方未通过审核", "rx_rejected:"+q.rowID
		d.body = "药师审核未通过，医生将修改后重新开具处方。"
		out := toAll(rcs, d)
		if doctor := q.v("doctor_id"); doctor != "" {
			dd := base
			dd.to = Recipient{Kind: ToStaff, ID: doctor}
			dd.kind, dd.title, dd.subject, dd.key, dd.link = KindRxRejected, "处方被药师驳回", q.rowID, "rx_rejected:"+q.rowID, doctorVisitLink(visit)
			dd.body = "请修改后重新提交。"
			if reason := q.v("review_reason"); reason != "" {
				dd.body = "驳回原因：" + reason + "。请修改后重新提交。"
			}
			out = append(out, dd)
		}
		return out, nil

	case "payments":
		rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
		if err != nil || len(rcs) == 0 {
			return nil, err
		}
		what := businessLabel(q.v("business_type"), q.v("subject"))
		d := base
		d.subject, d.link = q.rowID, patientOrdersLink
		if q.v("status") == ihos.PaymentPaid {
			total, _ := strconv.ParseInt(q.v("total"), 10, 64)
			d.kind, d.title, d.key = KindPaid, "支付成功", "paid:"+q.rowID
			d.body = fmt.Sprintf("%s已支付 %s 元。", what, ihos.FormatYuan(total))
			return toAll(rcs, d), nil
		}
		refunded, _ := strconv.ParseInt(q.v("refunded"), 10, 64)
		if refunded <= 0 {
			return nil, nil
		}
		d.kind, d.title, d.key = KindRefunded, "退款成功", "refunded:"+q.rowID+":"+q.v("refunded")
		d.body = fmt.Sprintf("%s已退款 %s 元，款项将原路退回。", what, ihos.FormatYuan(refunded))
		return toAll(rcs, d), nil

	case "invoices":
		rcs, err := s.accounts(ctx, tx, q.v("patient_id"))
		if err != nil || len(rcs) == 0 {
			return nil, err
		}
		total, _ := strconv.ParseInt(q.v("total"), 10, 64)
		d := base
		d.kind, d.title, d.subject, d.key, d.link = KindInvoice, "电子票据已开具", q.v("payment_id"), "invoice:"+q.rowID, patientOrdersLink
		d.body = fmt.Sprintf("%s %s 元的电子票据已开具", businessLabel(q.v("business_type"), ""), ihos.FormatYuan(total))
		if no := q.v("bill_no"); no != "" {
			d.body += "（票据号码 " + no + "）"
		}
		d.body += "，可在“我的订单”中查看。"
		return toAll(rcs, d), nil

	case "emr_records":
		visit, patient, doctor := q.v("visit_id"), q.v("patient_id"), q.v("doctor_id")
		if visit != "" && (patient == "" || doctor == "") {
			var p, dr sql.NullString
			err := s.DB.TxQueryRow(ctx, tx, `SELECT patient_id, doctor_id FROM visits WHERE id = ?`, visit).Scan(&p, &dr)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return nil, err
			}
			patient, doctor = cmp(patient, p.String), cmp(doctor, dr.String)
		}
		rcs, err := s.accounts(ctx, tx, patient)
		if err != nil || len(rcs) == 0 {
			return nil, err
		}
		name := q.v("doctor_name")
		if name == "" {
			if name, err = s.staffName(ctx, tx, doctor); err != nil {
				return nil, err
			}
		}
		// Each signed version is its own record (a correction is a new
		// version): one notice per record.
		d := base
		d.kind, d.title, d.subject, d.link, d.key = KindEMR, "电子病历已签署", visit, patientVisitLink(visit), "emr:"+q.rowID
		d.body = fmt.Sprintf("%s已签署本次问诊的电子病历，可在问诊详情中查看。", doctorTitle(name))
		if rev, _ := strconv.Atoi(q.v("revision")); rev > 1 {
			d.title = "电子病历已更新"
			d.body = fmt.Sprintf("%s已修订并重新签署本次问诊的电子病历，可在问诊详情中查看。", doctorTitle(name))
		}
		return toAll(rcs, d), nil

	case "his_results":
		rcs, err := s.hisAccounts(ctx, tx, q.hospital, q.v("patient_his_id"))
		if err != nil || len(rcs) == 0 {
			return nil, err
		}
		what := q.v("service_name")
		if what == "" {
			what = "检查检验"
		}
		d := base
		d.subject, d.link = q.rowID, patientReportsLink
		d.key = "report:" + q.rowID + ":" + q.v("result_status")
		d.kind, d.title = KindReport, "检查检验报告已出"
		d.body = what + "报告已出，请及时查看。"
		if q.v("result_status") == "C" {
			d.title, d.body = "检查检验报告已更正", what+"报告已更正，请查看最新结果。"
		}
		return toAll(rcs, d), nil
	}
	return nil, nil
}

// hisAccounts returns the accounts of the hospital's HIS patient: members
// linked to that record, through the master patient index (patient_links,
// replicated from the hospital) or the member's own link.
func (s *Service) hisAccounts(ctx context.Context, tx *sql.Tx, hospital, hisPatient string) ([]Recipient, error) {
	if hisPatient == "" {
		return nil, nil
	}
	a, err := s.strings(ctx, tx, `SELECT DISTINCT m.account_id FROM patient_links l JOIN patient_members m ON m.patient_id = l.patient_id AND m.deleted_at IS NULL
		WHERE l.his_patient_id = ? AND l.hospital_id = ? AND l.status = 'linked' AND l.deleted_at IS NULL`, hisPatient, hospital)
	if err != nil {
		return nil, err
	}
	b, err := s.strings(ctx, tx, `SELECT DISTINCT account_id FROM patient_members WHERE his_patient_id = ? AND hospital_id = ? AND link_status = 'linked'
		AND deleted_at IS NULL`, hisPatient, hospital)
	if err != nil {
		return nil, err
	}
	var out []Recipient
	seen := map[string]bool{}
	for _, id := range append(a, b...) {
		if !seen[id] {
			seen[id] = true
			out = append(out, Recipient{Kind: ToPatient, ID: id})
		}
	}
	return out, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func typeLabel(t string) string {
	if l, ok := visits.TypeLabels[t]; ok {
		return l
	}
	return "问诊"
}

// businessLabel names what was paid: 问诊费（…）.
func businessLabel(kind, subject string) string {
	l, ok := ihos.BusinessTypeLabels[kind]
	if !ok {
		l = "订单"
	}
	if subject != "" && subject != l {
		return l + "（" + truncate(subject, 30) + "）"
	}
	return l
}
