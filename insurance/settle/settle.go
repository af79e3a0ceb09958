// Package settle runs the insurance legs of payments on the appliance, which
// holds the hospital's insurance line (docs/decisions/0012): the
// pre-settlement the patient is shown (a quote: 1101 → 2201 → 2203 → 2204 →
// 2206 on the national platform for the 展码 e-voucher at the kiosk, 6201 for
// 医保移动支付 from the phone), the settlement (2207 / 6202), refunds (2208 /
// 6203) and reversals (2208, 2601, 6203, 6401). *Service implements
// payments.Insurance in process; the cloud's payment service reaches it over
// the sync RPC through Remote.
//
// Every leg is a row of insurance_settlements, written before the centre is
// called, with the id the centre knows the call by (msgid, orgBizSer,
// appRefdSn) and the flow's state, so a call whose answer was lost is asked
// again under the same id — by a repeated Settle, by Query, or after a
// restart — and never assumed. The rows replicate to the cloud for
// reconciliation; the state column (with the patient's e-voucher token) stays
// here.
package settle

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/insurance"
	"ihos/insurance/mobile"
	"ihos/internal/sqldb"
	"ihos/sync"
)

// Entity is the replicated table's name.
const Entity = "insurance_settlements"

// Entities declares the insurance legs the cloud receives (appliance-owned).
// The flow's state holds the patient's e-voucher token and person number and
// never leaves the appliance.
func Entities() []sync.Entity {
	return []sync.Entity{{Name: Entity, Table: "insurance_settlements", Owner: sync.Appliance, Local: []string{"state"}}}
}

// Kinds of rows.
const (
	KindPresettle = "presettle"
	KindSettle    = "settle"
	KindRefund    = "refund"
)

// Row statuses.
const (
	StatusQuoted   = "quoted"
	StatusPending  = "pending" // sent (or about to be) without a final answer
	StatusSettled  = "settled"
	StatusFailed   = "failed"
	StatusRefunded = "refunded" // a refund made; a settlement whose insurance parts are all refunded
	StatusReversed = "reversed"
)

// DefaultQuoteTTL is how long a quote may be settled: the mobile centre's
// payAuthNo lasts about that long, and a patient at the kiosk decides in
// minutes.
const DefaultQuoteTTL = 30 * time.Minute

// Service runs the insurance legs. National and Mobile are the two centres'
// clients; either may be nil, and a leg of a channel without its client is
// refused with EUnavailable before anything is recorded.
type Service struct {
	DB       *sqldb.DB
	National *insurance.Client
	Mobile   *mobile.Client
	// Hospital is this appliance's hospital id, written on every row.
	Hospital string
	// Capture records replicated rows for the cloud inside a transaction
	// (sync.Replica.Capture); nil on a node without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// AfterCommit runs after a commit that captured something (the link's Kick).
	AfterCommit func()
	// Link, when set, is told about a settlement a 6302 notify completed
	// (RPC payments.resolve to the cloud, best effort).
	Link *sync.Link
	// Visit is what 2201 and 2203 send besides the patient for a kiosk
	// settlement without its own department, doctor or diagnosis; zero
	// fields take DefaultVisit's.
	Visit    Visit
	QuoteTTL time.Duration // 0: DefaultQuoteTTL
	Logger   *slog.Logger
	Now      func() time.Time

	locks [64]stdsync.Mutex
}

// Visit names the department, doctor and diagnosis of an outpatient
// settlement at the national platform (2201, 2203).
type Visit struct {
	DeptCode, DeptName, Caty string
	DoctorCode, DoctorName   string
	DiagCode, DiagName       string
}

// DefaultVisit is the general outpatient visit the kiosk settles bills under
// when the caller names none (ICD-10 Z00.0 general medical examination).
var DefaultVisit = Visit{DeptCode: "MZ", DeptName: "门诊部", Caty: "A03", DoctorCode: "D0000", DoctorName: "门诊医师",
	DiagCode: "Z00.0", DiagName: "一般医学检查"}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// lock serialises the work on one key in this process: a Settle and the
// resolver's Query for the same leg must not call the centre at once.
func (s *Service) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func (s *Service) national() (*insurance.Client, error) {
	if s.National == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "医保电子凭证结算暂不可用（未配置医保信息平台）")
	}
	return s.National, nil
}

func (s *Service) mobile() (*mobile.Client, error) {
	if s.Mobile == nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "医保移动支付暂不可用（未配置医保移动支付中心）")
	}
	return s.Mobile, nil
}

// row is one line of insurance_settlements.
type row struct {
	ID, HospitalID, Kind, Key, QuoteID, SettleKey, PaymentID, PatientID, Channel, Status string
	Total                                                                                int64
	Split                                                                                ihos.Split
	SetlID, MsgID, Insutype, Day                                                         string
	Attempts                                                                             int
	LastError                                                                            string
	State                                                                                string
	ExpiresAt, SettledAt                                                                 time.Time
	Version                                                                              int64
	CreatedAt, UpdatedAt                                                                 time.Time
}

const rowCols = `id, hospital_id, kind, leg_key, quote_id, settle_key, payment_id, patient_id, channel, status, total, fund_pay, account_pay, cash_pay,
	setl_id, msgid, insutype, day, attempts, last_error, state, expires_at, settled_at, version, created_at, updated_at`

func scanRow(sc interface{ Scan(...any) error }) (*row, error) {
	var r row
	var expires, settled, state sql.NullString
	var created, updated string
	err := sc.Scan(&r.ID, &r.HospitalID, &r.Kind, &r.Key, &r.QuoteID, &r.SettleKey, &r.PaymentID, &r.PatientID, &r.Channel, &r.Status,
		&r.Total, &r.Split.Fund, &r.Split.Account, &r.Split.Cash, &r.SetlID, &r.MsgID, &r.Insutype, &r.Day, &r.Attempts, &r.LastError,
		&state, &expires, &settled, &r.Version, &created, &updated)
	if err != nil {
		return nil, err
	}
	r.State = state.String
	r.ExpiresAt, _ = ihos.ParseTime(expires.String)
	r.SettledAt, _ = ihos.ParseTime(settled.String)
	r.CreatedAt, _ = ihos.ParseTime(created)
	r.UpdatedAt, _ = ihos.ParseTime(updated)
	return &r, nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ihos.FormatTime(t)
}

// byKey returns the row of a leg key; nil when there is none.
func (s *Service) byKey(ctx context.Context, key string) (*row, error) {
	r, err := scanRow(s.DB.QueryRowContext(ctx, `SELECT `+rowCols+` FROM insurance_settlements WHERE leg_key = ? AND deleted_at IS NULL`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// insert writes a new row and captures it for the cloud. A row for the same
// key written meanwhile is returned instead (dup true).
func (s *Service) insert(ctx context.Context, r *row) (dup bool, err error) {
	now := s.now()
	r.CreatedAt, r.UpdatedAt, r.Version = now, now, 1
	if r.HospitalID == "" {
		r.HospitalID = s.Hospital
	}
	if r.State == "" {
		r.State = "{}"
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO insurance_settlements (`+rowCols+`, deleted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			r.ID, r.HospitalID, r.Kind, r.Key, r.QuoteID, r.SettleKey, r.PaymentID, r.PatientID, r.Channel, r.Status,
			r.Total, r.Split.Fund, r.Split.Account, r.Split.Cash, r.SetlID, r.MsgID, r.Insutype, r.Day, r.Attempts,
			ihos.Truncate(r.LastError, 500), r.State, nullTime(r.ExpiresAt), nullTime(r.SettledAt), r.Version,
			ihos.FormatTime(now), ihos.FormatTime(now)); err != nil {
			return err
		}
		return s.capture(ctx, tx, r.ID)
	})
	if sqldb.IsUniqueViolation(err) {
		return true, nil
	}
	if err != nil {
		return false, ihos.Internal(err)
	}
	s.committed()
	return false, nil
}

// save writes rows back (every mutable column) in one transaction. It runs
// without the caller's cancellation: what the centre answered must be kept
// even when the caller gave up waiting.
func (s *Service) save(ctx context.Context, rows ...*row) error {
	ctx = context.WithoutCancel(ctx)
	now := s.now()
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if err := ihos.CheckSplit(r.Total, r.Split); err != nil {
				return err
			}
			if _, err := s.DB.TxExec(ctx, tx, `UPDATE insurance_settlements SET status = ?, payment_id = ?, total = ?, fund_pay = ?, account_pay = ?, cash_pay = ?,
				setl_id = ?, msgid = ?, insutype = ?, day = ?, attempts = ?, last_error = ?, state = ?, settled_at = ?, version = version + 1, updated_at = ?
				WHERE id = ?`,
				r.Status, r.PaymentID, r.Total, r.Split.Fund, r.Split.Account, r.Split.Cash, r.SetlID, r.MsgID, r.Insutype, r.Day,
				r.Attempts, ihos.Truncate(r.LastError, 500), r.State, nullTime(r.SettledAt), ihos.FormatTime(now), r.ID); err != nil {
				return err
			}
			r.UpdatedAt = now
			r.Version++
			if err := s.capture(ctx, tx, r.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var e *ihos.Error
		if errors.As(err, &e) {
			return err
		}
		return ihos.Internal(err)
	}
	s.committed()
	return nil
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, id string) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, sync.Ref{Entity: Entity, ID: id})
}

func (s *Service) committed() {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
}

// decode reads a row's state JSON into v.
func decode(r *row, v any) error {
	if err := json.Unmarshal([]byte(r.State), v); err != nil {
		return ihos.Internal(err)
	}
	return nil
}

// encode writes v as a row's state JSON.
func encode(r *row, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the states are plain structs
	}
	r.State = string(b)
}

// dayOf is the Asia/Shanghai day of t.
func dayOf(t time.Time) string { return t.In(ihos.Shanghai).Format("2006-01-02") }
