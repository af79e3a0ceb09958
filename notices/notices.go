// Package notices is the message center (消息中心, issue 8): notices to
// patient accounts — booking confirmed, visit accepted and ended, the
// doctor's new messages, prescription reviewed, payment made or refunded,
// e-invoice issued, EMR signed, HIS report out — and to doctors — a new
// patient waiting, the patient's new messages, a prescription the pharmacist
// rejected — each kept with its read state and pushed live on the user's
// stream (GET /api/events, event "notice").
//
// No other package calls it. Notices follow from the changes the cloud
// already records for replication: Follow sees every change as it enters the
// cloud's ordered change feed (sync.Replica.Follow: a local change when the
// relay promotes it into the outbox, a hospital's change — an e-invoice, a
// report — when it is applied) and queues the rows that may make a notice in
// notice_feed, in that same transaction. The worker (Run) turns queued rows
// into notices and deletes them in one transaction, so each change makes its
// notices exactly once whatever crashes or restarts in between; each notice
// also has a unique key per recipient (the thing it is about), a second guard.
// Then it wakes the recipients' open streams through the visits Bus.
//
// A doctor's messages in one visit make one unread "新消息" notice at a time:
// while it is unread, later messages update it (the newest text, the count)
// instead of adding notices.
package notices

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
	"ihos/internal/sqldb"
	"ihos/sync"
	"ihos/visits"
)

// Recipient kinds.
const (
	ToPatient = "patient" // a patient account (accounts): the whole family's notices
	ToStaff   = "staff"   // a doctor (staff id)
)

// Recipient is who a notice is for.
type Recipient struct {
	Kind string
	ID   string
}

// Notice kinds.
const (
	KindBooking        = "booking"          // 预约成功 (paid)
	KindAccepted       = "visit_accepted"   // 医生已接诊
	KindEnded          = "visit_ended"      // 问诊已结束
	KindMessage        = "message"          // 新消息 (coalesced per visit while unread)
	KindRxApproved     = "rx_approved"      // 处方审核通过
	KindRxRejected     = "rx_rejected"      // 处方未通过审核 (patient and doctor)
	KindPaid           = "payment_paid"     // 支付成功
	KindRefunded       = "payment_refunded" // 退款成功
	KindInvoice        = "invoice_issued"   // 电子票据已开具
	KindEMR            = "emr_signed"       // 电子病历已签署
	KindReport         = "report"           // 检查检验报告
	KindPatientWaiting = "patient_waiting"  // (doctor) 新的候诊患者
)

// Notice is one notice as its recipient reads it.
type Notice struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"` // the order of creation and update: ?after= takes it
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Link      string    `json:"link"`
	SubjectID string    `json:"subject_id,omitempty"` // the visit, payment, prescription… it is about
	Count     int       `json:"count"`                // messages a "新消息" notice stands for
	Read      bool      `json:"read"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Service keeps the notices.
type Service struct {
	DB *sqldb.DB
	// Visits carries the wake-ups to the open streams (its Bus, else its Hub);
	// nil: notices are kept but not pushed.
	Visits *visits.Service
	// Kick wakes the worker (Feed.Kick); nil: it polls only.
	Kick <-chan struct{}
	// Poll is how often the idle worker looks for queued changes (100 ms).
	Poll time.Duration
	// Now is the clock (tests move it); time.Now when nil.
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Feed is the change feed's side of the message center: Follow is the
// cloud's sync.Replica.Follow (with the other followers).
type Feed struct {
	kick chan struct{}
}

// NewFeed returns a feed whose Kick channel the worker waits on.
func NewFeed() *Feed { return &Feed{kick: make(chan struct{}, 1)} }

// Kick is signalled whenever Follow queued something (before that commits:
// the worker waits a moment).
func (f *Feed) Kick() <-chan struct{} { return f.kick }

// followed says, per entity, which columns the worker reads and which row
// states may make a notice. Only those rows are queued.
var followed = map[string]struct {
	cols []string
	keep func(v func(string) string) bool
}{
	"bookings": {[]string{"patient_id", "staff_id", "start_at", "visit_type", "status"},
		func(v func(string) string) bool { return v("status") == "booked" }},
	"visits": {[]string{"patient_id", "doctor_id", "visit_type", "status", "booking_id"},
		func(v func(string) string) bool {
			st := v("status")
			return st == visits.StatusWaiting || st == visits.StatusInProgress || st == visits.StatusEnded
		}},
	"visit_messages": {[]string{"visit_id", "patient_id", "doctor_id", "sender_role", "kind", "event", "body"},
		func(v func(string) string) bool {
			r := v("sender_role")
			return v("event") == "" && (r == visits.RoleDoctor || r == visits.RolePatient)
		}},
	"prescriptions": {[]string{"visit_id", "patient_id", "doctor_id", "status", "review_reason", "total_fen"},
		func(v func(string) string) bool { return v("status") == "approved" || v("status") == "rejected" }},
	"payments": {[]string{"patient_id", "business_type", "business_id", "subject", "total", "refunded", "status"},
		func(v func(string) string) bool {
			st := v("status")
			return st == ihos.PaymentPaid || ((st == ihos.PaymentPartiallyRefunded || st == ihos.PaymentRefunded) && v("refunded") != "0")
		}},
	"invoices": {[]string{"payment_id", "patient_id", "business_type", "bill_batch_code", "bill_no", "total", "status"},
		func(v func(string) string) bool { return v("status") == "issued" }},
	// EMR records arrive with their own issue: the columns are read if
	// present, and a table that does not exist is never followed.
	"emr_records": {[]string{"visit_id", "patient_id", "doctor_id", "doctor_name", "status", "revision"},
		func(v func(string) string) bool { return v("status") == "signed" }},
	"his_results": {[]string{"patient_his_id", "result_status", "service_name", "reported_at"},
		func(v func(string) string) bool { return v("result_status") == "F" || v("result_status") == "C" }},
}

// maxVal bounds a queued text value (a message's body: the notice shows the
// start).
const maxVal = 120

// Follow queues the rows of envs that may make a notice, inside the
// transaction that puts them in the change feed. Resync snapshots are not
// news and are passed over. It fails only when the database does.
func (f *Feed) Follow(ctx context.Context, tx *sql.Tx, envs []*sync.Envelope) error {
	now := ihos.FormatTime(time.Now())
	var args []any
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", len(args)/7), ", ")
		_, err := tx.ExecContext(ctx, `INSERT INTO notice_feed (id, change_id, hospital_id, entity, row_id, vals, created_at) VALUES `+values, args...)
		args = args[:0]
		return err
	}
	queued := false
	for _, env := range envs {
		if env.Snapshot {
			continue
		}
		for _, row := range env.Rows {
			rule, ok := followed[row.Entity]
			if !ok {
				continue
			}
			v := func(c string) string {
				if p := row.Values[c]; p != nil {
					return *p
				}
				return ""
			}
			if !rule.keep(v) {
				continue
			}
			vals := map[string]string{}
			for _, c := range rule.cols {
				if s := v(c); s != "" {
					vals[c] = truncate(s, maxVal)
				}
			}
			b, _ := json.Marshal(vals)
			args = append(args, ihos.NewID(), env.ChangeID, env.Hospital, row.Entity, row.ID, string(b), now)
			queued = true
			if len(args)/7 >= 100 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if queued && f != nil {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

const noticeCols = `id, seq, kind, title, body, link, subject_id, coalesced, read_at, created_at, updated_at`

func scanNotice(row interface{ Scan(...any) error }) (*Notice, error) {
	var n Notice
	var read sql.NullString
	var created, updated string
	if err := row.Scan(&n.ID, &n.Seq, &n.Kind, &n.Title, &n.Body, &n.Link, &n.SubjectID, &n.Count, &read, &created, &updated); err != nil {
		return nil, err
	}
	n.Read = read.Valid
	n.CreatedAt, _ = ihos.ParseTime(created)
	n.UpdatedAt, _ = ihos.ParseTime(updated)
	return &n, nil
}

// Query selects a page of notices, newest (highest seq) first.
type Query struct {
	After  int64 // only notices created or updated after this seq (catching up)
	Before int64 // only notices before this seq (the next page)
	Limit  int   // default 20, at most 100
	Unread bool  // unread ones only
}

// List returns rc's notices.
func (s *Service) List(ctx context.Context, rc Recipient, q Query) ([]*Notice, error) {
	if q.Limit <= 0 || q.Limit > 100 {
		q.Limit = 20
	}
	where := `recipient_kind = ? AND recipient_id = ?`
	args := []any{rc.Kind, rc.ID}
	if q.After > 0 {
		where += ` AND seq > ?`
		args = append(args, q.After)
	}
	if q.Before > 0 {
		where += ` AND seq < ?`
		args = append(args, q.Before)
	}
	if q.Unread {
		where += ` AND read_at IS NULL`
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+noticeCols+` FROM notices WHERE `+where+` ORDER BY seq DESC LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []*Notice{}
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// Unread returns how many of rc's notices are unread.
func (s *Service) Unread(ctx context.Context, rc Recipient) (int, error) {
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM notices WHERE recipient_kind = ? AND recipient_id = ? AND read_at IS NULL`,
		rc.Kind, rc.ID).Scan(&n); err != nil {
		return 0, ihos.Internal(err)
	}
	return n, nil
}

// MaxRead bounds the ids one MarkRead names.
const MaxRead = 500

// MarkRead marks rc's notices ids read (all of them when all is set);
// others' ids and notices read before are passed over. It returns how many
// changed.
func (s *Service) MarkRead(ctx context.Context, rc Recipient, ids []string, all bool) (int, error) {
	if !all && len(ids) == 0 {
		return 0, ihos.Invalid(map[string]string{"ids": "请指定要标记为已读的消息，或 \"all\""})
	}
	if len(ids) > MaxRead {
		return 0, ihos.Invalid(map[string]string{"ids": fmt.Sprintf("一次最多标记 %d 条", MaxRead)})
	}
	now := ihos.FormatTime(s.now())
	q := `UPDATE notices SET read_at = ?, updated_at = ? WHERE recipient_kind = ? AND recipient_id = ? AND read_at IS NULL`
	args := []any{now, now, rc.Kind, rc.ID}
	if !all {
		q += ` AND id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	var n int64
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, ihos.Internal(err)
	}
	return int(n), nil
}

// lastSeq is the newest notice's seq (committed).
func (s *Service) lastSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := s.DB.QueryRowContext(ctx, `SELECT value FROM notice_state WHERE name = 'seq'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, err
}
