package accounts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"ihos"
	"ihos/his"
	"ihos/internal/pii"
	"ihos/sync"
)

// Relations of a member to the account holder.
const (
	RelSelf   = "self"
	RelChild  = "child"
	RelParent = "parent"
	RelSpouse = "spouse"
	RelOther  = "other"
)

var relationLabels = map[string]string{RelSelf: "本人", RelChild: "子女", RelParent: "父母", RelSpouse: "配偶", RelOther: "其他"}

// GuardianAge is the age below which a child needs their guardian on the
// account (DESIGN §7).
const GuardianAge = 6

// AdultAge is the age a guardian must have reached.
const AdultAge = 18

// Age returns the age in whole years on day now of a person born on birth
// (both read as calendar dates in Beijing).
func Age(birth, now time.Time) int {
	now = now.In(ihos.Shanghai)
	age := now.Year() - birth.Year()
	if now.Month() < birth.Month() || (now.Month() == birth.Month() && now.Day() < birth.Day()) {
		age--
	}
	return age
}

// RequiresGuardian reports whether a person born on birthDate is a child
// under 6 today, who may only be added to an account by their guardian.
func RequiresGuardian(birthDate time.Time) bool {
	return Age(birthDate, time.Now()) < GuardianAge
}

// BirthDate reads the birth date out of a GB 11643 ID number.
func BirthDate(idNumber string) (time.Time, bool) {
	if len(idNumber) != 18 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", idNumber[6:14])
	return t, err == nil
}

// Member is a person an account acts for.
type Member struct {
	ID            string     `json:"id"`
	PatientID     string     `json:"patient_id"`
	Name          string     `json:"name"`
	Gender        string     `json:"gender"`
	IDNumber      string     `json:"id_number"` // masked
	BirthDate     string     `json:"birth_date"`
	Age           int        `json:"age"`
	Relation      string     `json:"relation"`
	RelationLabel string     `json:"relation_label"`
	Guardian      bool       `json:"guardian"`
	HISPatientID  string     `json:"his_patient_id,omitempty"`
	LinkStatus    string     `json:"link_status,omitempty"`
	LinkedAt      *time.Time `json:"linked_at,omitempty"`
}

// person is a checked name and ID number.
type person struct {
	name, id, gender string
	birth            time.Time
}

// checkPerson checks a name and ID number before any call to the
// verification service: the checksum catches a mistyped number for free.
func (s *Service) checkPerson(name, id string) (person, error) {
	p := person{name: strings.TrimSpace(name), id: strings.ToUpper(strings.TrimSpace(id))}
	bad := map[string]string{}
	if n := utf8.RuneCountInString(p.name); n < 2 || n > 30 || strings.IndexFunc(p.name, unicode.IsDigit) >= 0 {
		bad["name"] = "请输入与身份证一致的姓名"
	}
	switch {
	case len(p.id) != 18:
		bad["id_number"] = "请输入 18 位居民身份证号码"
	case !ihos.ValidIDNumber(p.id):
		bad["id_number"] = "身份证号码校验不通过，请核对后重新输入"
	default:
		birth, ok := BirthDate(p.id)
		if !ok || birth.After(s.now()) || birth.Year() < 1900 {
			bad["id_number"] = "身份证号码中的出生日期无效，请核对后重新输入"
		}
		p.birth = birth
	}
	if len(bad) > 0 {
		msg := "输入有误，请检查标出的字段"
		if len(bad) == 1 {
			for _, m := range bad {
				msg = m
			}
		}
		return p, &ihos.Error{Code: ihos.EInvalid, Message: msg, Fields: bad}
	}
	p.gender = "女"
	if (p.id[16]-'0')%2 == 1 {
		p.gender = "男"
	}
	return p, nil
}

// verify asks the identity-verification service.
func (s *Service) verify(ctx context.Context, p person) error {
	if s.IDs == nil {
		return ihos.Errorf(ihos.EUnavailable, "实名认证服务未配置，暂时无法认证")
	}
	r, err := s.IDs.Verify(ctx, p.name, p.id)
	if err != nil {
		return err
	}
	if !r.Match {
		return &ihos.Error{Code: ihos.EInvalid, Message: "实名认证未通过：" + r.Reason, Fields: map[string]string{"id_number": r.Reason}}
	}
	return nil
}

// RealName verifies the account holder's name and ID number and makes them
// the account's first member (本人).
func (s *Service) RealName(ctx context.Context, pt Patient, name, idNumber string) (Member, error) {
	if pt.Verified {
		return Member{}, ihos.Errorf(ihos.EConflict, "您已完成实名认证")
	}
	p, err := s.checkPerson(name, idNumber)
	if err != nil {
		return Member{}, err
	}
	if Age(p.birth, s.now()) < GuardianAge {
		return Member{}, ihos.Errorf(ihos.EInvalid, "未满 %d 周岁的儿童不能单独注册，请由监护人登录后在“家庭成员”中添加", GuardianAge)
	}
	if err := s.verify(ctx, p); err != nil {
		return Member{}, err
	}
	var memberID string
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var current string
		if err := s.DB.TxQueryRow(ctx, tx, `SELECT patient_id FROM patient_accounts WHERE id = ?`+s.DB.ForUpdate(), pt.AccountID).Scan(&current); err != nil {
			return nil, err
		}
		if current != "" {
			return ihos.Errorf(ihos.EConflict, "您已完成实名认证"), nil
		}
		patientID, refusal, err := s.person(ctx, tx, pt, p, true)
		if refusal != nil || err != nil {
			return refusal, err
		}
		ts := ihos.FormatTime(s.now())
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_accounts SET patient_id = ?, verified_at = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			patientID, ts, ts, pt.AccountID); err != nil {
			return nil, err
		}
		memberID, refusal, err = s.addMember(ctx, tx, pt, patientID, p, RelSelf, false)
		if refusal != nil || err != nil {
			return refusal, err
		}
		return nil, s.record(ctx, tx, "realname", "patient_accounts", pt.AccountID, "患者实名认证通过："+p.name+"（"+pii.Mask(p.id, 6, 4)+"）")
	})
	if err != nil {
		return Member{}, err
	}
	s.committed()
	return s.Member(ctx, pt, memberID)
}

// MemberInput is a family member to add.
type MemberInput struct {
	Name     string `json:"name"`
	IDNumber string `json:"id_number"`
	Relation string `json:"relation"`
	// Guardian is the holder's statement that they are the member's guardian
	// (监护人); required for a child under 6.
	Guardian bool `json:"guardian"`
}

// AddMember adds a family member to a verified account. A child under 6
// needs the holder, an adult, to state that they are the guardian.
func (s *Service) AddMember(ctx context.Context, pt Patient, in MemberInput) (Member, error) {
	if !pt.Verified {
		return Member{}, ihos.Errorf(ihos.EForbidden, "请先完成本人实名认证，再添加家庭成员")
	}
	if _, ok := relationLabels[in.Relation]; !ok || in.Relation == RelSelf {
		return Member{}, &ihos.Error{Code: ihos.EInvalid, Message: "请选择与本人的关系（子女、父母、配偶或其他）",
			Fields: map[string]string{"relation": "请选择与本人的关系"}}
	}
	p, err := s.checkPerson(in.Name, in.IDNumber)
	if err != nil {
		return Member{}, err
	}
	now := s.now()
	if Age(p.birth, now) < GuardianAge {
		if in.Relation != RelChild && in.Relation != RelOther {
			return Member{}, &ihos.Error{Code: ihos.EInvalid, Message: fmt.Sprintf("未满 %d 周岁的儿童只能作为子女或其他被监护人添加", GuardianAge),
				Fields: map[string]string{"relation": "请选择“子女”或“其他”"}}
		}
		if !in.Guardian {
			return Member{}, &ihos.Error{Code: ihos.EInvalid, Message: fmt.Sprintf("未满 %d 周岁的儿童须由其监护人添加，请确认您是该儿童的监护人", GuardianAge),
				Fields: map[string]string{"guardian": "请确认您是该儿童的监护人"}}
		}
		var holderBirth string
		if err := s.DB.QueryRowContext(ctx, `SELECT birth_date FROM patient_members WHERE account_id = ? AND relation = 'self' AND deleted_at IS NULL`,
			pt.AccountID).Scan(&holderBirth); err != nil {
			return Member{}, ihos.Internal(err)
		}
		if b, err := time.Parse(time.DateOnly, holderBirth); err != nil || Age(b, now) < AdultAge {
			return Member{}, ihos.Errorf(ihos.EForbidden, "监护人须年满 %d 周岁，未成年人不能为儿童办理就诊", AdultAge)
		}
	}
	var n int
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM patient_members WHERE account_id = ? AND deleted_at IS NULL`, pt.AccountID).Scan(&n); err != nil {
		return Member{}, ihos.Internal(err)
	}
	if n >= s.MaxMembers {
		return Member{}, ihos.Errorf(ihos.EConflict, "每个账号最多添加 %d 位就诊人", s.MaxMembers)
	}
	if err := s.verify(ctx, p); err != nil {
		return Member{}, err
	}
	var memberID string
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		patientID, refusal, err := s.person(ctx, tx, pt, p, false)
		if refusal != nil || err != nil {
			return refusal, err
		}
		memberID, refusal, err = s.addMember(ctx, tx, pt, patientID, p, in.Relation, in.Guardian)
		return refusal, err
	})
	if err != nil {
		return Member{}, err
	}
	s.committed()
	return s.Member(ctx, pt, memberID)
}

// person returns the patients row of p at the account's hospital, creating
// it (with the holder's phone as contact) when the hospital has none: one
// person is one row, whoever's account adds them. self refuses a person who
// is already another account's holder.
func (s *Service) person(ctx context.Context, tx *sql.Tx, pt Patient, p person, self bool) (string, error, error) {
	// Locking the index range serialises two sign-ups of one person on
	// MariaDB (SQLite writers are serial anyway).
	bidx := s.Sealer.Index(p.id)
	var id string
	err := s.DB.TxQueryRow(ctx, tx, `SELECT id FROM patients WHERE hospital_id = ? AND id_number_bidx = ? AND deleted_at IS NULL ORDER BY created_at LIMIT 1`+s.DB.ForUpdate(),
		pt.HospitalID, bidx).Scan(&id)
	switch {
	case err == nil:
		if self {
			var n int
			if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM patient_accounts WHERE hospital_id = ? AND patient_id = ?`, pt.HospitalID, id).Scan(&n); err != nil {
				return "", nil, err
			}
			if n > 0 {
				return "", ihos.Errorf(ihos.EConflict, "该身份证号已被其他账号实名认证，如有疑问请联系医院"), nil
			}
		}
		// The verification service just confirmed the name.
		ts := ihos.FormatTime(s.now())
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patients SET name = ?, gender = ?, birth_year = ?, version = version + 1, updated_at = ? WHERE id = ? AND name <> ?`,
			p.name, p.gender, p.birth.Year(), ts, id, p.name); err != nil {
			return "", nil, err
		}
		return id, nil, s.capture(ctx, tx, sync.Ref{Entity: "patients", ID: id})
	case !errors.Is(err, sql.ErrNoRows):
		return "", nil, err
	}
	var phoneSealed string
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT phone FROM patient_accounts WHERE id = ?`, pt.AccountID).Scan(&phoneSealed); err != nil {
		return "", nil, err
	}
	phone, err := s.Sealer.Open(phoneSealed)
	if err != nil {
		return "", nil, err
	}
	phoneAgain, err := s.Sealer.Seal(phone)
	if err != nil {
		return "", nil, err
	}
	idSealed, err := s.Sealer.Seal(p.id)
	if err != nil {
		return "", nil, err
	}
	id = ihos.NewID()
	ts := ihos.FormatTime(s.now())
	if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO patients (id, hospital_id, name, gender, birth_year, phone, phone_bidx, id_number, id_number_bidx, enabled, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?, ?)`, id, pt.HospitalID, p.name, p.gender, p.birth.Year(), phoneAgain, s.Sealer.Index(phone), idSealed, bidx, ts, ts); err != nil {
		return "", nil, err
	}
	if err := s.record(ctx, tx, "create", "patients", id, "新增患者："+p.name); err != nil {
		return "", nil, err
	}
	return id, nil, s.capture(ctx, tx, sync.Ref{Entity: "patients", ID: id})
}

func (s *Service) addMember(ctx context.Context, tx *sql.Tx, pt Patient, patientID string, p person, relation string, guardian bool) (string, error, error) {
	var n int
	if err := s.DB.TxQueryRow(ctx, tx, `SELECT COUNT(*) FROM patient_members WHERE account_id = ? AND patient_id = ? AND deleted_at IS NULL`, pt.AccountID, patientID).Scan(&n); err != nil {
		return "", nil, err
	}
	if n > 0 {
		return "", ihos.Errorf(ihos.EConflict, "%s已在您的就诊人列表中", p.name), nil
	}
	id := ihos.NewID()
	ts := ihos.FormatTime(s.now())
	if _, err := s.DB.TxExec(ctx, tx, `INSERT INTO patient_members (id, account_id, hospital_id, patient_id, relation, guardian, birth_date, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, id, pt.AccountID, pt.HospitalID, patientID, relation, boolInt(guardian), p.birth.Format(time.DateOnly), ts, ts); err != nil {
		return "", nil, err
	}
	summary := "添加就诊人：" + p.name + "（" + relationLabels[relation] + "）"
	if guardian {
		summary += "，账号持有人声明为其监护人"
	}
	return id, nil, s.record(ctx, tx, "create", "patient_members", id, summary)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const memberColumns = `m.id, m.patient_id, p.name, p.gender, p.id_number, m.birth_date, m.relation, m.guardian, m.his_patient_id, m.link_status, m.linked_at`

func (s *Service) scanMember(row interface{ Scan(...any) error }) (Member, error) {
	var (
		m        Member
		idSealed string
		guardian int
		linked   sql.NullString
	)
	if err := row.Scan(&m.ID, &m.PatientID, &m.Name, &m.Gender, &idSealed, &m.BirthDate, &m.Relation, &guardian, &m.HISPatientID, &m.LinkStatus, &linked); err != nil {
		return m, err
	}
	id, err := s.Sealer.Open(idSealed)
	if err != nil {
		return m, err
	}
	m.IDNumber = pii.Mask(id, 6, 4)
	if b, err := time.Parse(time.DateOnly, m.BirthDate); err == nil {
		m.Age = Age(b, s.now())
	}
	m.RelationLabel, m.Guardian = relationLabels[m.Relation], guardian == 1
	if linked.Valid {
		if t, err := ihos.ParseTime(linked.String); err == nil {
			m.LinkedAt = &t
		}
	}
	return m, nil
}

// Members lists the people the account acts for, the holder first.
func (s *Service) Members(ctx context.Context, pt Patient) ([]Member, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT `+memberColumns+` FROM patient_members m JOIN patients p ON p.id = m.patient_id
		WHERE m.account_id = ? AND m.deleted_at IS NULL ORDER BY CASE WHEN m.relation = 'self' THEN 0 ELSE 1 END, m.created_at`, pt.AccountID)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		m, err := s.scanMember(rows)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	return out, nil
}

// Member returns one of the account's members.
func (s *Service) Member(ctx context.Context, pt Patient, id string) (Member, error) {
	m, err := s.scanMember(s.DB.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM patient_members m JOIN patients p ON p.id = m.patient_id
		WHERE m.id = ? AND m.account_id = ? AND m.deleted_at IS NULL`, id, pt.AccountID))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ihos.Errorf(ihos.ENotFound, "就诊人不存在")
	}
	if err != nil {
		return Member{}, ihos.Internal(err)
	}
	return m, nil
}

// MemberByPatient returns the account's member who is patients row
// patientID: what booking and payment check before acting for a person.
func (s *Service) MemberByPatient(ctx context.Context, pt Patient, patientID string) (Member, error) {
	m, err := s.scanMember(s.DB.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM patient_members m JOIN patients p ON p.id = m.patient_id
		WHERE m.patient_id = ? AND m.account_id = ? AND m.deleted_at IS NULL`, patientID, pt.AccountID))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, ihos.Errorf(ihos.ENotFound, "就诊人不存在")
	}
	if err != nil {
		return Member{}, ihos.Internal(err)
	}
	return m, nil
}

// LinkHIS links a member to their record in the hospital's HIS through the
// appliance (by ID number; the number travels in the call only) and keeps the
// link on the member. The appliance's master patient index replicates back
// as patient_links.
func (s *Service) LinkHIS(ctx context.Context, pt Patient, memberID string) (Member, error) {
	m, err := s.Member(ctx, pt, memberID)
	if err != nil {
		return Member{}, err
	}
	if s.LinkPatient == nil {
		return Member{}, ihos.Errorf(ihos.EUnavailable, "医院系统暂未接入，暂时无法关联就诊档案")
	}
	var idSealed string
	if err := s.DB.QueryRowContext(ctx, `SELECT id_number FROM patients WHERE id = ?`, m.PatientID).Scan(&idSealed); err != nil {
		return Member{}, ihos.Internal(err)
	}
	idNumber, err := s.Sealer.Open(idSealed)
	if err != nil {
		return Member{}, ihos.Internal(err)
	}
	link, err := s.LinkPatient(ctx, pt.HospitalID, his.LinkRequest{PatientID: m.PatientID, Name: m.Name, IDNumber: idNumber})
	if err != nil {
		return Member{}, err
	}
	if link.Status != his.LinkLinked && link.Status != his.LinkReview {
		return Member{}, ihos.Errorf(ihos.EConflict, "未能关联医院就诊档案，请到医院窗口核对信息")
	}
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		ts := ihos.FormatTime(s.now())
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE patient_members SET his_patient_id = ?, link_status = ?, linked_at = ?, version = version + 1, updated_at = ? WHERE id = ?`,
			link.HISPatientID, link.Status, ts, ts, m.ID); err != nil {
			return nil, err
		}
		summary := "关联医院就诊档案：" + m.Name + " → " + link.HISPatientID
		if link.Status == his.LinkReview {
			summary += "（待医院人工确认：" + link.Note + "）"
		}
		return nil, s.record(ctx, tx, "link_his", "patient_members", m.ID, ihos.Truncate(summary, 200))
	})
	if err != nil {
		return Member{}, err
	}
	return s.Member(ctx, pt, memberID)
}
