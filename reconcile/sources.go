package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// query is one part of a side's records read from the database: the records
// of one kind, in key order (the key is the first column the query selects).
type query struct {
	kind string
	sql  string
	args []any
	scan func(row scanner, rec *Record) error
}

// dbSource yields the records of its queries one after the other; the
// queries come in kind order ("payment" < "refund"), each in key order.
type dbSource struct {
	ctx  context.Context
	db   *sqldb.DB
	qs   []query
	i    int
	rows *sql.Rows
}

func newDBSource(ctx context.Context, db *sqldb.DB, qs ...query) *dbSource {
	return &dbSource{ctx: ctx, db: db, qs: qs, i: -1}
}

// Next implements Source.
func (s *dbSource) Next() (Record, bool, error) {
	for {
		if s.rows != nil && s.rows.Next() {
			rec := Record{Kind: s.qs[s.i].kind}
			if err := s.qs[s.i].scan(s.rows, &rec); err != nil {
				return Record{}, false, err
			}
			return rec, true, nil
		}
		if s.rows != nil {
			err := s.rows.Err()
			s.rows.Close()
			s.rows = nil
			if err != nil {
				return Record{}, false, err
			}
		}
		s.i++
		if s.i >= len(s.qs) {
			return Record{}, false, nil
		}
		q := s.qs[s.i].sql
		if s.db.Engine == sqldb.MySQL {
			q += " COLLATE utf8mb4_bin" // byte order, as the matcher compares
		}
		rows, err := s.db.QueryContext(s.ctx, q, s.qs[s.i].args...)
		if err != nil {
			return Record{}, false, err
		}
		s.rows = rows
	}
}

func (s *dbSource) close() {
	if s.rows != nil {
		s.rows.Close()
	}
}

// timeOf is a record's time: when the money moved when it did, else when the
// record was made.
func timeOf(done bool, doneAt, created sql.NullString) (t time.Time) {
	v := created.String
	if done && doneAt.Valid {
		v = doneAt.String
	}
	t, _ = ihos.ParseTime(v)
	return t
}

// spec is how a side's run reads both sides from the database and looks up a
// record the other side named that the day's records lack.
type spec struct {
	side   Side
	ours   func(ctx context.Context, start, end string) Source
	theirs func(ctx context.Context, day string) (Source, error)
	// oursByKey and theirsByKey find one record on any day (sql.ErrNoRows
	// when there is none); nil when the side cannot look up.
	oursByKey   func(ctx context.Context, kind, key string) (Record, error)
	theirsByKey func(ctx context.Context, kind, key string) (Record, error)
}

// Channel: the cash legs. The money moved that day (refunds: the cash leg is
// done but the whole refund may not be, leaving done_at empty, so those are
// taken by their creation day), or it was created that day and has not moved
// yet.
const (
	channelPayments = `SELECT out_trade_no, cash_pay, cash_status, status, paid_at, created_at, id, hospital_id FROM payments
		WHERE cash_pay > 0 AND deleted_at IS NULL AND (
			(cash_status = 'done' AND paid_at >= ? AND paid_at < ?) OR
			(cash_status <> 'done' AND created_at >= ? AND created_at < ?))
		ORDER BY out_trade_no`
	channelRefunds = `SELECT out_refund_no, cash_part, cash_status, status, done_at, created_at, id, hospital_id FROM refunds
		WHERE cash_part > 0 AND deleted_at IS NULL AND (
			(cash_status = 'done' AND done_at >= ? AND done_at < ?) OR
			((cash_status <> 'done' OR done_at IS NULL) AND created_at >= ? AND created_at < ?))
		ORDER BY out_refund_no`
)

// scanCash reads key, amount, leg status, status, done time, created_at, id,
// hospital.
func scanCash(rows scanner, rec *Record) error {
	var leg string
	var doneAt, created sql.NullString
	if err := rows.Scan(&rec.Key, &rec.Amount, &leg, &rec.Status, &doneAt, &created, &rec.Ref, &rec.Hospital); err != nil {
		return err
	}
	rec.Done = leg == ihos.LegDone
	rec.Time = timeOf(rec.Done, doneAt, created)
	return nil
}

// scanIns reads key, fund, account, leg status, status, done time,
// created_at, id, hospital.
func scanIns(rows scanner, rec *Record) error {
	var leg string
	var doneAt, created sql.NullString
	if err := rows.Scan(&rec.Key, &rec.Parts[0], &rec.Parts[1], &leg, &rec.Status, &doneAt, &created, &rec.Ref, &rec.Hospital); err != nil {
		return err
	}
	rec.Amount = rec.Parts[0] + rec.Parts[1]
	rec.Done = leg == ihos.LegDone
	rec.Time = timeOf(rec.Done, doneAt, created)
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func (r *Reconciler) channelSpec(bill func(ctx context.Context, day string) (Source, error)) spec {
	return spec{
		side: Channel,
		ours: func(ctx context.Context, start, end string) Source {
			args := []any{start, end, start, end}
			return newDBSource(ctx, r.DB,
				query{KindPayment, channelPayments, args, scanCash},
				query{KindRefund, channelRefunds, args, scanCash})
		},
		theirs: bill,
		oursByKey: func(ctx context.Context, kind, key string) (Record, error) {
			q := `SELECT out_trade_no, cash_pay, cash_status, status, paid_at, created_at, id, hospital_id FROM payments WHERE out_trade_no = ? AND deleted_at IS NULL`
			if kind == KindRefund {
				q = `SELECT out_refund_no, cash_part, cash_status, status, done_at, created_at, id, hospital_id FROM refunds WHERE out_refund_no = ? AND deleted_at IS NULL`
			}
			rec := Record{Kind: kind}
			err := scanCash(r.DB.QueryRowContext(ctx, q, key), &rec)
			return rec, err
		},
	}
}

// Insurance: the insurance legs (fund + account) of payments and refunds,
// by the same day rule as the cash legs, keyed by the leg's key
// (payments.insurance_key, refunds.out_refund_no) = insurance_settlements.leg_key.
const (
	insPayments = `SELECT insurance_key, fund_pay, account_pay, ins_status, status, paid_at, created_at, id, hospital_id FROM payments
		WHERE insurance_key <> '' AND deleted_at IS NULL AND (
			(ins_status = 'done' AND paid_at >= ? AND paid_at < ?) OR
			((ins_status <> 'done' OR paid_at IS NULL) AND created_at >= ? AND created_at < ?))
		ORDER BY insurance_key`
	insRefunds = `SELECT out_refund_no, fund_part, account_part, ins_status, status, done_at, created_at, id, hospital_id FROM refunds
		WHERE fund_part + account_part > 0 AND deleted_at IS NULL AND (
			(ins_status = 'done' AND done_at >= ? AND done_at < ?) OR
			((ins_status <> 'done' OR done_at IS NULL) AND created_at >= ? AND created_at < ?))
		ORDER BY out_refund_no`
	// The centre's side: what the appliance recorded of its answers, on the
	// day the money moved at the centre.
	insSettlements = `SELECT leg_key, fund_pay, account_pay, status, settled_at, setl_id, hospital_id, day FROM insurance_settlements
		WHERE kind = ? AND day = ? AND deleted_at IS NULL ORDER BY leg_key`
)

// settlementKinds maps record kinds to insurance_settlements.kind.
var settlementKinds = map[string]string{KindPayment: "settle", KindRefund: "refund"}

// scanSettlement reads a row of insSettlements. A settlement is done when
// settled (or settled and since refunded: the money moved that day); an
// insurance refund when refunded.
func scanSettlement(kind string) func(rows scanner, rec *Record) error {
	return func(rows scanner, rec *Record) error {
		var settledAt sql.NullString
		var day string
		if err := rows.Scan(&rec.Key, &rec.Parts[0], &rec.Parts[1], &rec.Status, &settledAt, &rec.Ref, &rec.Hospital, &day); err != nil {
			return err
		}
		rec.Kind = kind
		rec.Parts[0], rec.Parts[1] = abs(rec.Parts[0]), abs(rec.Parts[1])
		rec.Amount = rec.Parts[0] + rec.Parts[1]
		rec.Done = rec.Status == "settled" || rec.Status == "refunded"
		rec.Time, _ = ihos.ParseTime(settledAt.String)
		return nil
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func (r *Reconciler) insuranceSpec() spec {
	return spec{
		side: Insurance,
		ours: func(ctx context.Context, start, end string) Source {
			args := []any{start, end, start, end}
			return newDBSource(ctx, r.DB,
				query{KindPayment, insPayments, args, scanIns},
				query{KindRefund, insRefunds, args, scanIns})
		},
		theirs: func(ctx context.Context, day string) (Source, error) {
			var qs []query
			for _, kind := range []string{KindPayment, KindRefund} {
				scan := scanSettlement(kind)
				qs = append(qs, query{kind, insSettlements, []any{settlementKinds[kind], day},
					scan})
			}
			return newDBSource(ctx, r.DB, qs...), nil
		},
		oursByKey: func(ctx context.Context, kind, key string) (Record, error) {
			q := `SELECT insurance_key, fund_pay, account_pay, ins_status, status, paid_at, created_at, id, hospital_id FROM payments WHERE insurance_key = ? AND deleted_at IS NULL`
			if kind == KindRefund {
				q = `SELECT out_refund_no, fund_part, account_part, ins_status, status, done_at, created_at, id, hospital_id FROM refunds WHERE out_refund_no = ? AND deleted_at IS NULL`
			}
			var rec Record
			err := scanIns(r.DB.QueryRowContext(ctx, q, key), &rec)
			rec.Kind = kind
			return rec, err
		},
		theirsByKey: func(ctx context.Context, kind, key string) (Record, error) {
			var rec Record
			err := scanSettlement(kind)(r.DB.QueryRowContext(ctx, `SELECT leg_key, fund_pay, account_pay, status, settled_at, setl_id, hospital_id, day
				FROM insurance_settlements WHERE kind = ? AND leg_key = ? AND deleted_at IS NULL`, settlementKinds[kind], key), &rec)
			return rec, err
		},
	}
}

// HIS: paid outpatient bills (诊间支付), keyed by the payment id, and their
// succeeded refunds, keyed by the refund id, on the day the money moved;
// against the postings the HIS accepted (a charge per payment, a credit per
// refund).
const (
	hisPayments = `SELECT id, total, status, paid_at, created_at, id, hospital_id FROM payments
		WHERE business_type = '` + ihos.PayOutpatientBill + `' AND deleted_at IS NULL AND paid_at >= ? AND paid_at < ?
		AND status IN ('` + ihos.PaymentPaid + `', '` + ihos.PaymentPartiallyRefunded + `', '` + ihos.PaymentRefunded + `')
		ORDER BY id`
	hisRefunds = `SELECT r.id, r.amount, r.status, r.done_at, r.created_at, r.id, r.hospital_id FROM refunds r
		JOIN payments p ON p.id = r.payment_id
		WHERE p.business_type = '` + ihos.PayOutpatientBill + `' AND r.deleted_at IS NULL AND r.status = '` + ihos.RefundSucceeded + `'
		AND r.done_at >= ? AND r.done_at < ?
		ORDER BY r.id`
	hisPostings = `SELECT %s, amount_fen, status, updated_at, his_message_id, hospital_id FROM bill_postings
		WHERE kind = ? AND day = ? AND deleted_at IS NULL ORDER BY %s`
)

// scanBill reads a payment or refund of hisPayments / hisRefunds: every one
// moved money.
func scanBill(rows scanner, rec *Record) error {
	var doneAt, created sql.NullString
	if err := rows.Scan(&rec.Key, &rec.Amount, &rec.Status, &doneAt, &created, &rec.Ref, &rec.Hospital); err != nil {
		return err
	}
	rec.Done = rec.Status == ihos.PaymentPaid || rec.Status == ihos.PaymentPartiallyRefunded || rec.Status == ihos.PaymentRefunded ||
		rec.Status == ihos.RefundSucceeded
	rec.Time = timeOf(rec.Done, doneAt, created)
	return nil
}

// postingKinds maps record kinds to bill_postings.kind and the key column.
var postingKinds = map[string][2]string{KindPayment: {"charge", "payment_id"}, KindRefund: {"credit", "refund_id"}}

// scanPosting reads a bill_postings row: done when the HIS accepted it; a
// credit's amount is stored negative.
func scanPosting(kind string) func(rows scanner, rec *Record) error {
	return func(rows scanner, rec *Record) error {
		var at sql.NullString
		if err := rows.Scan(&rec.Key, &rec.Amount, &rec.Status, &at, &rec.Ref, &rec.Hospital); err != nil {
			return err
		}
		rec.Kind = kind
		rec.Amount = abs(rec.Amount)
		rec.Done = rec.Status == "accepted"
		rec.Time, _ = ihos.ParseTime(at.String)
		return nil
	}
}

func (r *Reconciler) hisSpec() spec {
	return spec{
		side: HIS,
		ours: func(ctx context.Context, start, end string) Source {
			args := []any{start, end}
			return newDBSource(ctx, r.DB,
				query{KindPayment, hisPayments, args, scanBill},
				query{KindRefund, hisRefunds, args, scanBill})
		},
		theirs: func(ctx context.Context, day string) (Source, error) {
			var qs []query
			for _, kind := range []string{KindPayment, KindRefund} {
				pk := postingKinds[kind]
				scan := scanPosting(kind)
				qs = append(qs, query{kind, fmt.Sprintf(hisPostings, pk[1], pk[1]), []any{pk[0], day},
					scan})
			}
			return newDBSource(ctx, r.DB, qs...), nil
		},
		oursByKey: func(ctx context.Context, kind, key string) (Record, error) {
			q := `SELECT id, total, status, paid_at, created_at, id, hospital_id FROM payments WHERE id = ? AND deleted_at IS NULL`
			if kind == KindRefund {
				q = `SELECT id, amount, status, done_at, created_at, id, hospital_id FROM refunds WHERE id = ? AND deleted_at IS NULL`
			}
			var rec Record
			err := scanBill(r.DB.QueryRowContext(ctx, q, key), &rec)
			rec.Kind = kind
			return rec, err
		},
		theirsByKey: func(ctx context.Context, kind, key string) (Record, error) {
			pk := postingKinds[kind]
			var rec Record
			err := scanPosting(kind)(r.DB.QueryRowContext(ctx, fmt.Sprintf(`SELECT %s, amount_fen, status, updated_at, his_message_id, hospital_id
				FROM bill_postings WHERE kind = ? AND %s = ? AND deleted_at IS NULL`, pk[1], pk[1]), pk[0], key), &rec)
			return rec, err
		},
	}
}
