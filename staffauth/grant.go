package staffauth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"math/big"
	"slices"

	"golang.org/x/crypto/bcrypt"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/sync"
)

// Grant opens app access (开通互联网诊疗账号) for a staff member on the
// appliance, or issues a new initial password to one who has it, and
// returns that password: the console shows it once and only its hash is
// stored and replicated. The doctor must change it at first login. Only
// active doctors and pharmacists with a department, a licence number and a
// phone on their record qualify.
func (s *Service) Grant(ctx context.Context, staffID string) (string, error) {
	password := newPassword()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.BcryptCost)
	if err != nil {
		return "", ihos.Internal(err)
	}
	now := ihos.FormatTime(s.now())
	var id string
	err = s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var name, kind, dept, licence, sealed string
		var enabled int
		err := s.DB.TxQueryRow(ctx, tx, `SELECT name, kind, department_id, license_no, phone, enabled FROM staff WHERE id = ? AND deleted_at IS NULL`,
			staffID).Scan(&name, &kind, &dept, &licence, &sealed, &enabled)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "医务人员不存在"), nil
		}
		if err != nil {
			return nil, err
		}
		switch {
		case enabled == 0:
			return ihos.Errorf(ihos.EInvalid, "该医务人员已停用，不能开通互联网诊疗账号"), nil
		case !slices.Contains(appKinds, kind):
			return ihos.Errorf(ihos.EInvalid, "只有医师、药师可以开通互联网诊疗账号"), nil
		case dept == "" || licence == "":
			return ihos.Errorf(ihos.EInvalid, "请先在医务人员管理中填写所属科室和执业证书编码"), nil
		case sealed == "":
			return ihos.Errorf(ihos.EInvalid, "请先在医务人员管理中填写手机号（用于登录和实名认证）"), nil
		}
		phone, err := s.Sealer.Open(sealed)
		if err != nil {
			return nil, err
		}
		// The staff record's sealed phone is copied as it is: same key,
		// same node; the blind index finds it at login.
		bidx := s.Sealer.Index(phone)
		err = s.DB.TxQueryRow(ctx, tx, `SELECT id FROM staff_app_logins WHERE staff_id = ?`+s.DB.ForUpdate(), staffID).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			id = ihos.NewID()
			_, err = s.DB.TxExec(ctx, tx, `INSERT INTO staff_app_logins (id, hospital_id, staff_id, phone, phone_bidx, enabled, password_hash, must_change, issued_at, version, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, 1, ?, 1, ?, 1, ?, ?)`, id, s.Hospital, staffID, sealed, bidx, string(hash), now, now, now)
		case err == nil:
			_, err = s.DB.TxExec(ctx, tx, `UPDATE staff_app_logins SET phone = ?, phone_bidx = ?, enabled = 1, password_hash = ?, must_change = 1, issued_at = ?,
				version = version + 1, updated_at = ?, deleted_at = NULL WHERE id = ?`, sealed, bidx, string(hash), now, now, id)
		}
		if err != nil {
			return nil, err
		}
		if err := audit.Append(ctx, s.DB, tx, audit.Entry{Action: "grant", Resource: "staff_app_logins", RecordID: id,
			Summary: "开通互联网诊疗账号（发放初始密码）：" + name + "，登录手机号 " + pii.Mask(phone, 3, 4)}); err != nil {
			return nil, err
		}
		return nil, s.capture(ctx, tx, id)
	})
	if err != nil {
		return "", err
	}
	s.committed()
	return password, nil
}

// Disable ends a staff member's app access; the cloud ends their sessions
// once the change replicates.
func (s *Service) Disable(ctx context.Context, staffID string) error {
	err := s.tx(ctx, func(tx *sql.Tx) (error, error) {
		var id string
		err := s.DB.TxQueryRow(ctx, tx, `SELECT id FROM staff_app_logins WHERE staff_id = ? AND enabled = 1`+s.DB.ForUpdate(), staffID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ihos.Errorf(ihos.ENotFound, "该医务人员未开通互联网诊疗账号"), nil
		}
		if err != nil {
			return nil, err
		}
		if _, err := s.DB.TxExec(ctx, tx, `UPDATE staff_app_logins SET enabled = 0, version = version + 1, updated_at = ? WHERE id = ?`,
			ihos.FormatTime(s.now()), id); err != nil {
			return nil, err
		}
		if err := audit.Append(ctx, s.DB, tx, audit.Entry{Action: "disable", Resource: "staff_app_logins", RecordID: id,
			Summary: "停用互联网诊疗账号"}); err != nil {
			return nil, err
		}
		return nil, s.capture(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	s.committed()
	return nil
}

func (s *Service) capture(ctx context.Context, tx *sql.Tx, id string) error {
	if s.Capture == nil {
		return nil
	}
	return s.Capture(ctx, tx, sync.Ref{Entity: "staff_app_logins", ID: id})
}

func (s *Service) committed() {
	if s.Committed != nil {
		s.Committed()
	}
}

// newPassword makes a 12-character initial password of letters and digits
// that are hard to confuse when read off the screen, with both kinds.
func newPassword() string {
	const letters, digits = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ", "23456789"
	b := make([]byte, 12)
	for i := range b {
		set := letters + digits
		switch i {
		case 0:
			set = letters
		case 11:
			set = digits
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			panic(err)
		}
		b[i] = set[n.Int64()]
	}
	return string(b)
}
