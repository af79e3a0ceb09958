// Package accounts is the patients' side of the platform's identity: a
// patient signs up and logs in with their phone number and an SMS code (the
// phone number is the username), holds an expiring, revocable session (an
// HttpOnly cookie for the H5 pages, a bearer token for the mini-program's
// web-view), verifies their real name (实名认证) against the
// identity-verification service, adds family members (家庭成员) and links
// each to their record in the hospital's HIS.
//
// The account is the login; the people it acts for are rows of patients
// (the holder once verified, and every family member), tied to it by
// patient_members with the relation. A child under 6 may only be added by
// their guardian (DESIGN §7). Phone and ID numbers are sealed at rest
// (internal/pii); SMS codes and session tokens are stored as hashes only.
// Every change is audited.
//
// Staff sessions (internal/auth) are a separate table joined to console
// users; patient sessions follow the same design (random token, SHA-256 at
// rest, idle and absolute expiry, CSRF token for cookie writes) here.
// Other packages authorise patient requests with Service.Authorize.
package accounts

import (
	"context"
	"database/sql"
	"regexp"
	"strings"
	"time"

	"ihos"
	"ihos/his"
	"ihos/idverify"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
	"ihos/sms"
	"ihos/sync"
)

// Policy holds the limits of the code flow and of sessions.
type Policy struct {
	CodeTTL      time.Duration // a code is valid this long (5 min)
	ResendAfter  time.Duration // a phone may ask again after this (60 s)
	PhonePerHour int           // codes one phone may ask for an hour (5)
	IPPerHour    int           // codes one address may ask for an hour (20)
	MaxAttempts  int           // wrong codes before a code is void (5)
	IdleTimeout  time.Duration // a session unused this long ends (7 days)
	MaxAge       time.Duration // a session ends this long after login (30 days)
	MaxMembers   int           // people on one account, the holder included (10)
}

// DefaultPolicy is the policy New sets.
var DefaultPolicy = Policy{
	CodeTTL: 5 * time.Minute, ResendAfter: time.Minute, PhonePerHour: 5, IPPerHour: 20, MaxAttempts: 5,
	IdleTimeout: 7 * 24 * time.Hour, MaxAge: 30 * 24 * time.Hour, MaxMembers: 10,
}

// Service holds patient accounts.
type Service struct {
	DB     *sqldb.DB
	Sealer *pii.Sealer
	SMS    sms.Sender        // nil: codes cannot be sent
	IDs    idverify.Verifier // nil: real names cannot be verified
	// Hospital reports whether patients may sign up at a hospital; nil
	// accepts any valid hospital id.
	Hospital func(id string) bool
	// Capture records changed patients rows for replication inside the
	// transaction that changed them; nil on a node without sync.
	Capture func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error
	// Committed is called after a captured change commits (the link's Kick).
	Committed func()
	// LinkHIS asks the hospital's appliance to find the person in its HIS
	// (his.RPCLinkPatient over the sync link).
	LinkPatient func(ctx context.Context, hospital string, req his.LinkRequest) (his.PatientLink, error)
	// SecureCookie marks the session cookie Secure (HTTPS deployments).
	SecureCookie bool
	Policy
	Now func() time.Time
}

// New returns a Service with the default policy.
func New(db *sqldb.DB, sealer *pii.Sealer) *Service {
	return &Service{DB: db, Sealer: sealer, Policy: DefaultPolicy, Now: time.Now}
}

// Patient is the account behind a request, as other packages see it.
type Patient struct {
	AccountID  string `json:"account_id"`
	HospitalID string `json:"hospital_id"`
	Phone      string `json:"phone"` // masked: 138****8000
	// PatientID is the holder's patients row, "" until real-name verified.
	PatientID string `json:"patient_id"`
	Name      string `json:"name,omitempty"`
	Verified  bool   `json:"verified"`
}

// Actor is the patient as the audit log records them.
func (p Patient) Actor(ip, requestID string) ihos.Actor {
	name := p.Name
	if name == "" {
		name = p.Phone
	}
	return ihos.Actor{UserID: p.AccountID, Username: p.Phone, Name: name, Role: Role, IP: ip, RequestID: requestID}
}

// Role is the actor role of a patient in the audit log.
const Role = "patient"

var mobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

func checkPhone(phone string) (string, error) {
	phone = strings.TrimSpace(phone)
	phone = strings.TrimPrefix(phone, "+86")
	if !mobile.MatchString(phone) {
		return "", &ihos.Error{Code: ihos.EInvalid, Message: "请输入正确的 11 位手机号码", Fields: map[string]string{"phone": "请输入正确的 11 位手机号码"}}
	}
	return phone, nil
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, refs...)
}

func (s *Service) committed() {
	if s.Committed != nil {
		s.Committed()
	}
}

// record appends an audit entry in tx for the account.
func (s *Service) record(ctx context.Context, tx *sql.Tx, action, resource, id, summary string) error {
	return audit.Append(ctx, s.DB, tx, audit.Entry{Action: action, Resource: resource, RecordID: id, Summary: summary})
}

// ErrNoSession is the answer to a request without a valid patient session.
var ErrNoSession = ihos.Errorf(ihos.EUnauthorized, "未登录或登录已过期，请重新登录")

// tx is DB.TxRefusing: fn's refusal commits what fn wrote and is returned.
func (s *Service) tx(ctx context.Context, fn func(tx *sql.Tx) (refusal error, err error)) error {
	return s.DB.TxRefusing(ctx, fn)
}
