// Package clinicaltest is the hospital the tests of the clinical documents
// (packages prescriptions and emr) write in: a real CA and certs/esign
// service with the doctor enrolled (what is signed is a real detached PKCS#7
// that verifies against the hospital CA), an HIS that records the orders it
// is given, the hospital's doctors and department, and visits. Each test
// adds the catalogue and the patients it needs.
package clinicaltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs/ca"
	"ihos/certs/esign"
	"ihos/his"
	"ihos/internal/auth"
	"ihos/internal/sqldb"
	"ihos/visits"
)

// Admin is the context the fixtures write with: a system administrator.
var Admin = ihos.WithActor(context.Background(), ihos.Actor{UserID: "t", Username: "t", Role: auth.RoleSysAdmin})

// The hospital's names.
const (
	Hospital    = "H1"
	Department  = "DEP1"
	Doctor      = "DOC1" // enrolled for e-signature with PIN
	OtherDoctor = "DOC2"
	PIN         = "246810"
)

// Signer is the clinical.Signer over a real certs/esign service.
type Signer struct{ S *esign.Service }

// Sign implements clinical.Signer.
func (e Signer) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	sig, err := e.S.Sign(ctx, staffID, pin, doc)
	return sig.P7, err
}

// HIS is the clinical.HIS: it records the orders it is given and answers
// one queued order a line; Down makes it fail as an unreachable hospital.
type HIS struct {
	Down      bool
	Reqs      []his.OrderRequest
	Hospitals []string

	n  atomic.Int64
	mu sync.Mutex
}

// PlaceOrder implements clinical.HIS.
func (h *HIS) PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Down {
		return nil, ihos.Errorf(ihos.EUnavailable, "医院系统暂时无法连接")
	}
	h.Reqs, h.Hospitals = append(h.Reqs, req), append(h.Hospitals, hospital)
	var out []his.Order
	for _, it := range req.Items {
		out = append(out, his.Order{ID: fmt.Sprintf("ORD%d", h.n.Add(1)), Kind: req.Kind, PatientHISID: req.Patient.HISID, Code: it.Code, Name: it.Name, Status: his.OrderQueued})
	}
	return out, nil
}

// Staff is a staff member of the hospital.
type Staff struct{ ID, Kind, Name string }

// Fixture is the hospital, with its doctors (Doctor 王医生, OtherDoctor
// 李医生) and any further staff, in department Department (心内科).
type Fixture struct {
	T      testing.TB
	DB     *sqldb.DB
	Visits *visits.Service
	Signer Signer
	Root   *smx509.Certificate // the hospital CA's certificate
	HIS    *HIS
	Now    time.Time
}

// New sets the hospital up in db.
func New(t testing.TB, db *sqldb.DB, staff ...Staff) *Fixture {
	t.Helper()
	c, err := ca.Open(Admin, db, ca.Options{Dir: t.TempDir(), Name: "测试医院 CA"})
	if err != nil {
		t.Fatal(err)
	}
	sign := &esign.Service{DB: db, CA: c, KEK: bytes.Repeat([]byte{7}, 16)}
	if _, err := sign.Enroll(Admin, Doctor, "王医生", PIN); err != nil {
		t.Fatal(err)
	}
	f := &Fixture{T: t, DB: db, Visits: &visits.Service{DB: db}, Signer: Signer{sign}, Root: c.Certificate(), HIS: &HIS{}, Now: time.Now().UTC()}
	now := ihos.FormatTime(f.Now)
	staff = append([]Staff{{Doctor, ihos.StaffDoctor, "王医生"}, {OtherDoctor, ihos.StaffDoctor, "李医生"}}, staff...)
	for _, s := range staff {
		f.Exec(`INSERT INTO staff (id, hospital_id, institution_id, department_id, job_no, name, kind, created_at, updated_at) VALUES (?, ?, 'I1', ?, ?, ?, ?, ?, ?)`,
			s.ID, Hospital, Department, "J"+s.ID, s.Name, s.Kind, now, now)
	}
	f.Exec(`INSERT INTO departments (id, hospital_id, institution_id, code, name, created_at, updated_at) VALUES (?, ?, 'I1', 'NK', '心内科', ?, ?)`, Department, Hospital, now, now)
	return f
}

// Exec runs a statement as the administrator, failing the test on error.
func (f *Fixture) Exec(q string, args ...any) {
	f.T.Helper()
	if _, err := f.DB.ExecContext(Admin, q, args...); err != nil {
		f.T.Fatalf("%s: %v", q, err)
	}
}

var bookings atomic.Int64

// Visit opens a text visit of patient with Doctor; accepted: the doctor
// accepted it (in progress).
func (f *Fixture) Visit(patient string, accepted bool) *visits.Visit {
	f.T.Helper()
	v, err := f.Visits.Open(Admin, visits.VisitSpec{HospitalID: Hospital, BookingID: fmt.Sprintf("B%d", bookings.Add(1)), PatientID: patient,
		DoctorID: Doctor, DepartmentID: Department, Type: visits.TypeText, BookedAt: f.Now})
	if err != nil {
		f.T.Fatal(err)
	}
	if accepted {
		if v, err = f.Visits.Accept(Admin, visits.Party{Role: visits.RoleDoctor, ID: Doctor}, v.ID); err != nil {
			f.T.Fatal(err)
		}
	}
	return v
}

// Refused fails t unless err is an ihos.Error of code whose message (with
// its field messages) contains msg.
func Refused(t testing.TB, what string, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted, want %s", what, code)
	}
	if ihos.ErrorCode(err) != code || !strings.Contains(ErrText(err), msg) {
		t.Fatalf("%s: got %s %q, want %s containing %q", what, ihos.ErrorCode(err), ErrText(err), code, msg)
	}
}

// ErrText is the message with the field messages of an invalid error.
func ErrText(err error) string {
	var e *ihos.Error
	if errors.As(err, &e) {
		s := e.Message
		for _, v := range e.Fields {
			s += " " + v
		}
		return s
	}
	return err.Error()
}
