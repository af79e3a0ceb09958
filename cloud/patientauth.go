package cloud

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"ihos"
	"ihos/accounts"
	"ihos/his"
	"ihos/internal/node"
	"ihos/internal/web"
	"ihos/staffauth"
)

// The patient-facing APIs (booking, payment orders, 诊间支付 bills, the
// insurance quote) are used two ways: by the patient's phone with their own
// session (package accounts), and by staff tools, the command-line tool and
// tests with the staff session or CLI token. patientAuth is the one place
// that tells them apart. A patient acts only for the people on their account
// (themselves and their family members); staff keep their permission check.
// Staff-only routes (refunds, admin lists) never use patientAuth, so a
// patient session never reaches them.

// errNotFamily refuses a patient acting for someone not on their account.
var errNotFamily = ihos.Errorf(ihos.EForbidden, "只能为本人或家庭成员办理，请先在“就诊人管理”中添加该就诊人")

// errNotVerified refuses a patient who has not verified their real name yet:
// until then the account acts for nobody.
var errNotVerified = ihos.Errorf(ihos.EForbidden, "请先完成实名认证")

// errOtherHospital refuses a patient acting at a hospital other than the one
// their account belongs to.
var errOtherHospital = ihos.Errorf(ihos.EForbidden, "只能在您注册的医院办理")

// errHISNotLinked refuses a bill or quote for a HIS record that is not the
// linked record of one of the account's members.
var errHISNotLinked = ihos.Errorf(ihos.EForbidden, "只能查询本人或家庭成员已关联的医院就诊档案，请先在“就诊人管理”中关联")

// patientAuth authorises a patient-facing route.
type patientAuth struct {
	// app's Patients is read per request: the accounts service is started
	// after the payment service registers its routes.
	app   *App
	staff web.Authorizer // node.AuthorizeCLIOr
}

// authorize returns the context to continue with and, for a patient
// session, the patient (nil for staff and the CLI). The CLI token and a
// staff session are checked for perm as before; any other request must carry
// a valid patient session. A staff session wins over a patient one (a
// developer logged in to both in one browser), and costs no extra lookup.
func (pa patientAuth) authorize(r *http.Request, perm string) (context.Context, *accounts.Patient, error) {
	svc := pa.accounts()
	if _, staff := ihos.ActorFrom(r.Context()); staff || svc == nil || r.Header.Get(node.CLITokenHeader) != "" {
		ctx, err := pa.staff(r, perm)
		return ctx, nil, err
	}
	p, err := svc.Authorize(r)
	if err != nil {
		if errors.Is(err, accounts.ErrNoSession) && !patientCredential(r) {
			// Nothing patient-like: the staff check says what is missing.
			ctx, serr := pa.staff(r, perm)
			return ctx, nil, serr
		}
		return nil, nil, err
	}
	ctx := ihos.WithActor(r.Context(), p.Actor(web.ClientIP(r), web.RequestID(r.Context())))
	return ctx, &p, nil
}

// patientCredential reports whether r carries a patient session's token:
// the patient cookie, or a bearer token (a staff bearer token was accepted
// by the staff middleware before authorize ran).
func patientCredential(r *http.Request) bool {
	if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		return true
	}
	_, err := r.Cookie(accounts.CookieName)
	return err == nil
}

func (pa patientAuth) accounts() *accounts.Service {
	if pa.app == nil {
		return nil
	}
	return pa.app.Patients
}

// member returns the account's member who is patientID; "" means the
// account holder. Anyone else is refused with errNotFamily.
func (pa patientAuth) member(ctx context.Context, p *accounts.Patient, patientID string) (accounts.Member, error) {
	patientID = strings.TrimSpace(patientID)
	if patientID == "" {
		if p.PatientID == "" {
			return accounts.Member{}, errNotVerified
		}
		patientID = p.PatientID
	}
	m, err := pa.accounts().MemberByPatient(ctx, *p, patientID)
	if ihos.ErrorCode(err) == ihos.ENotFound {
		return accounts.Member{}, errNotFamily
	}
	return m, err
}

// owns reports whether patientID is one of the account's members; for
// reading and changing things by id (a booking, a payment), where someone
// else's is answered as not found rather than forbidden.
func (pa patientAuth) owns(ctx context.Context, p *accounts.Patient, patientID string) (bool, error) {
	if patientID == "" {
		return false, nil
	}
	_, err := pa.accounts().MemberByPatient(ctx, *p, patientID)
	switch ihos.ErrorCode(err) {
	case "":
		return true, nil
	case ihos.ENotFound:
		return false, nil
	}
	return false, err
}

// hisMember returns the account's member whose linked HIS record is
// hisPatientID; "" means the holder's own record.
func (pa patientAuth) hisMember(ctx context.Context, p *accounts.Patient, hisPatientID string) (accounts.Member, error) {
	hisPatientID = strings.TrimSpace(hisPatientID)
	if hisPatientID == "" {
		m, err := pa.member(ctx, p, "")
		if err != nil {
			return accounts.Member{}, err
		}
		if m.HISPatientID == "" || m.LinkStatus != his.LinkLinked {
			return accounts.Member{}, errHISNotLinked
		}
		return m, nil
	}
	ms, err := pa.accounts().Members(ctx, *p)
	if err != nil {
		return accounts.Member{}, err
	}
	for _, m := range ms {
		// A link awaiting the hospital's review is not yet the person's
		// record: their bills are not shown until staff confirm it.
		if m.HISPatientID == hisPatientID && m.LinkStatus == his.LinkLinked {
			return m, nil
		}
	}
	return accounts.Member{}, errHISNotLinked
}

// hospital returns the hospital a patient request acts at: their account's,
// which is also the default.
func hospital(p *accounts.Patient, id string) (string, error) {
	id = strings.TrimSpace(id)
	if id == "" || id == p.HospitalID {
		return p.HospitalID, nil
	}
	return "", errOtherHospital
}

// guard is web.Guard for a patient-facing route: fn gets the patient (nil
// for staff and the CLI).
func (pa patientAuth) guard(mux *http.ServeMux) func(pattern, perm string, fn patientFunc) {
	return func(pattern, perm string, fn patientFunc) {
		mux.Handle(pattern, web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			ctx, p, err := pa.authorize(r, perm)
			if err != nil {
				return err
			}
			return fn(ctx, p, w, r)
		}))
	}
}

// patientFunc is a patient-facing handler; p is nil for staff and the CLI.
type patientFunc func(ctx context.Context, p *accounts.Patient, w http.ResponseWriter, r *http.Request) error

// appSession returns the doctor, pharmacist or patient of r's own session
// (package staffauth or accounts), with the context carrying them as the
// audit actor. It returns neither (and no error) when r comes with the
// command-line token or a console staff session, or carries no app session
// at all: the caller then uses its staff/CLI check, whose refusal says what
// is missing. A staff app session is tried first (its cookie has its own
// name; a bearer token is looked up as a staff token, then as a patient's).
func appSession(a *App, r *http.Request) (context.Context, *staffauth.Staff, *accounts.Patient, error) {
	if _, console := ihos.ActorFrom(r.Context()); console || r.Header.Get(node.CLITokenHeader) != "" || a == nil {
		return nil, nil, nil, nil
	}
	ip, rid := web.ClientIP(r), web.RequestID(r.Context())
	if a.Staff != nil {
		st, err := a.Staff.Authorize(r)
		if err == nil {
			return ihos.WithActor(r.Context(), st.Actor(ip, rid)), &st, nil, nil
		}
		if !errors.Is(err, staffauth.ErrNoSession) {
			return nil, nil, nil, err
		}
	}
	if a.Patients != nil {
		p, err := a.Patients.Authorize(r)
		if err == nil {
			return ihos.WithActor(r.Context(), p.Actor(ip, rid)), nil, &p, nil
		}
		if !errors.Is(err, accounts.ErrNoSession) {
			return nil, nil, nil, err
		}
	}
	return nil, nil, nil, nil
}
