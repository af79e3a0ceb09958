// Package staffauth is how doctors and pharmacists log in to their app on
// the cloud (issue 8). The hospital grants app access on its console
// (Grant, on the appliance): a staff_app_logins row with the bcrypt hash of
// an initial password shown once, replicated to the cloud, so the password
// itself never leaves the console. On the cloud a doctor logs in with the
// phone and that password (Login), must choose their own password first
// (ChangePassword), and holds an expiring, revocable session like a
// patient's (package accounts): random token, SHA-256 at rest, idle and
// absolute expiry, CSRF token for cookie writes.
//
// Only authorised, active staff work online (DESIGN §7): every request
// (Authorize) re-reads the replicated staff row, so disabling a doctor on the
// console ends their sessions as soon as the change replicates. Before the
// first visit of each day (Asia/Shanghai) the doctor confirms their identity
// with an SMS code to their phone (实名认证); the visit and prescription APIs
// call RequireRealNameToday.
package staffauth

import (
	"context"
	"database/sql"
	"fmt"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/sms"
	"ihos/sync"
)

// Policy holds the limits of logins, sessions and real-name codes.
type Policy struct {
	MaxFailures int           // wrong passwords before a lockout (5)
	LockFor     time.Duration // how long a lockout lasts (15 min)
	IdleTimeout time.Duration // a session unused this long ends (12 h)
	MaxAge      time.Duration // a session ends this long after login (7 days)
	CodeTTL     time.Duration // a real-name code is valid this long (5 min)
	ResendAfter time.Duration // a new code may be asked for after this (60 s)
	MaxAttempts int           // wrong codes before a code is void (5)
	BcryptCost  int           // cost of password hashes (bcrypt.DefaultCost+2, as the console's)
}

// DefaultPolicy is the policy New sets.
var DefaultPolicy = Policy{MaxFailures: 5, LockFor: 15 * time.Minute, IdleTimeout: 12 * time.Hour, MaxAge: 7 * 24 * time.Hour,
	CodeTTL: 5 * time.Minute, ResendAfter: time.Minute, MaxAttempts: 5, BcryptCost: 12}

// Service holds staff app logins: Grant and Disable on the appliance, the
// rest on the cloud.
type Service struct {
	DB *sqldb.DB
	// Sealer opens the staff phone on the appliance (Grant) and keys the
	// real-name code hashes on the cloud.
	Sealer *pii.Sealer
	SMS    sms.Sender // nil: real-name codes cannot be sent
	// Hospital is the appliance's own hospital (Grant).
	Hospital string
	// Capture records changed staff_app_logins rows for replication inside
	// the transaction that changed them (appliance); nil without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// Committed is called after a captured change commits (the link's Kick).
	Committed func()
	// SecureCookie marks the session cookie Secure (HTTPS deployments).
	SecureCookie bool
	Policy
	Now func() time.Time

	mu     stdsync.Mutex
	issued []issued // initial passwords waiting to be shown on the console page
}

// New returns a Service with the default policy.
func New(db *sqldb.DB, sealer *pii.Sealer) *Service {
	return &Service{DB: db, Sealer: sealer, Policy: DefaultPolicy, Now: time.Now}
}

// Entities declares staff_app_logins: the appliance owns app access and the
// cloud holds the replica it checks logins against.
func Entities() []sync.Entity {
	// The login phone is personal data: sealed on both sides, sealed under
	// the hospital's transit key in between (sync.Entity.Sealed).
	return []sync.Entity{{Name: "staff_app_logins", Table: "staff_app_logins", Owner: sync.Appliance, Sealed: []string{"phone"}}}
}

// SealPhones seals login phones stored in clear text by a release before
// they were sealed, and sets their blind index. It changes no version: the
// value is the same, only how it rests; both sides run it at start.
func (s *Service) SealPhones(ctx context.Context) error {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, phone FROM staff_app_logins WHERE phone_bidx = '' AND phone <> ''`)
	if err != nil {
		return err
	}
	type clear struct{ id, phone string }
	var todo []clear
	for rows.Next() {
		var c clear
		if err := rows.Scan(&c.id, &c.phone); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range todo {
		phone := c.phone
		if pii.IsSealed(phone) {
			if phone, err = s.Sealer.Open(phone); err != nil {
				return fmt.Errorf("staffauth: login phone of %s: %w", c.id, err)
			}
		}
		sealed, err := s.Sealer.Seal(phone)
		if err != nil {
			return err
		}
		if _, err := s.DB.ExecContext(ctx, `UPDATE staff_app_logins SET phone = ?, phone_bidx = ? WHERE id = ? AND phone = ?`,
			sealed, s.Sealer.Index(phone), c.id, c.phone); err != nil {
			return err
		}
	}
	return nil
}

// Staff is the staff member behind a request, as other packages see it.
type Staff struct {
	ID           string `json:"id"`
	HospitalID   string `json:"hospital_id"`
	Name         string `json:"name"`
	Kind         string `json:"kind"` // ihos.StaffDoctor or ihos.StaffPharmacist
	KindLabel    string `json:"kind_label"`
	Title        string `json:"title"`
	DepartmentID string `json:"department_id"`
	Department   string `json:"department"`
	LicenseNo    string `json:"license_no"`
	Phone        string `json:"phone"` // masked: 138****8000
	// MustChange is set until the doctor replaces the issued password; such
	// a session may only change the password.
	MustChange bool `json:"must_change"`
	// RealNameToday reports the daily real-name check of today.
	RealNameToday bool `json:"realname_today"`
}

// Actor is the staff member as the audit log records them.
func (st Staff) Actor(ip, requestID string) ihos.Actor {
	return ihos.Actor{UserID: st.ID, Username: st.Phone, Name: st.Name, Role: st.Kind, DepartmentID: st.DepartmentID, IP: ip, RequestID: requestID}
}

// ErrNoSession is the answer to a request without a valid staff session.
var ErrNoSession = ihos.Errorf(ihos.EUnauthorized, "未登录或登录已过期，请重新登录")

// ErrRealName is the answer to a visit action before today's real-name check.
var ErrRealName = ihos.Errorf(ihos.EForbidden, "请先完成今日实名认证")

// appKinds are the staff kinds the app admits (nurses come with home care).
var appKinds = []string{ihos.StaffDoctor, ihos.StaffPharmacist}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

// today is the Asia/Shanghai date of now.
func (s *Service) today() string { return s.now().In(ihos.Shanghai).Format(time.DateOnly) }

// tx is DB.TxRefusing: fn's refusal commits what fn wrote and is returned.
func (s *Service) tx(ctx context.Context, fn func(tx *sql.Tx) (refusal error, err error)) error {
	return s.DB.TxRefusing(ctx, fn)
}
