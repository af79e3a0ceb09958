package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"strings"
	stdsync "sync"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/internal/audit"
	"ihos/internal/node"
	"ihos/internal/sqldb"
	"ihos/internal/web"
	"ihos/sync"
)

// Hospitals is the cloud's register of the hospitals it serves, and the
// enrollment that turns a one-time code into a hospital's client certificate.
type Hospitals struct {
	db      *sqldb.DB
	ca      *certs.CA
	link    *sync.Link
	leafURL func() string // what appliances dial, told to them at enrollment

	mu      stdsync.RWMutex
	enabled map[string]string // id → name
}

// EnrollmentCodeTTL is how long a code stays valid.
const EnrollmentCodeTTL = 24 * time.Hour

// Hospital is one row of the register.
type Hospital struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Enrolled   bool      `json:"enrolled"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	Enabled    bool      `json:"enabled"`
}

// Code is a fresh enrollment code for a hospital.
type Code struct {
	Hospital  string    `json:"hospital_id"`
	Name      string    `json:"name"`
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	LeafURL   string    `json:"leaf_url"`
}

// Enrollment is what an appliance receives for a valid code.
type Enrollment struct {
	Hospital string `json:"hospital_id"`
	Name     string `json:"name"`
	CertPEM  string `json:"cert_pem"`
	CAPEM    string `json:"ca_pem"`
	LeafURL  string `json:"leaf_url"`
}

func (h *Hospitals) load(ctx context.Context) error {
	rows, err := h.db.QueryContext(ctx, `SELECT id, name FROM hospitals WHERE enabled = 1`)
	if err != nil {
		return err
	}
	defer rows.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.enabled = map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return err
		}
		h.enabled[id] = name
	}
	return rows.Err()
}

// Known reports whether id is an enabled hospital.
func (h *Hospitals) Known(id string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.enabled[id]
	return ok
}

// IDs returns the enabled hospitals.
func (h *Hospitals) IDs() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]string, 0, len(h.enabled))
	for id := range h.enabled {
		out = append(out, id)
	}
	return out
}

// hospitalOf admits a leafnode certificate of an enabled hospital.
func (h *Hospitals) hospitalOf(c *x509.Certificate) (string, bool) {
	id, err := certs.HospitalOf(c)
	return id, err == nil && h.Known(id)
}

// Add registers a hospital (id "" picks one) or, for one already registered,
// issues a new code (re-enrollment, e.g. a replaced server). The code is shown
// once; only its hash is kept.
func (h *Hospitals) Add(ctx context.Context, id, name string) (*Code, error) {
	name = strings.TrimSpace(name)
	bad := map[string]string{}
	if name == "" || len([]rune(name)) > 100 {
		bad["name"] = "请填写医院名称（不超过 100 个字）"
	}
	if id == "" {
		id = "h" + randomString(8, "abcdefghjkmnpqrstuvwxyz23456789")
	}
	if !ihos.ValidHospitalID(id) {
		bad["id"] = "医院编号只能包含字母、数字、- 和 _，最长 36 位"
	}
	if len(bad) > 0 {
		return nil, ihos.Invalid(bad)
	}
	code := randomString(12, "ABCDEFGHJKMNPQRSTUVWXYZ23456789")
	code = code[:4] + "-" + code[4:8] + "-" + code[8:]
	expires := time.Now().Add(EnrollmentCodeTTL).UTC()
	now := ihos.FormatTime(time.Now())
	err := h.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE hospitals SET name = ?, code_hash = ?, code_expires_at = ?, enabled = 1, updated_at = ? WHERE id = ?`,
			name, codeHash(code), ihos.FormatTime(expires), now, id)
		if err != nil {
			return err
		}
		op := "update"
		if n, _ := res.RowsAffected(); n == 0 {
			op = "create"
			if _, err := tx.ExecContext(ctx, `INSERT INTO hospitals (id, name, code_hash, code_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				id, name, codeHash(code), ihos.FormatTime(expires), now, now); err != nil {
				return err
			}
		}
		return audit.Append(ctx, h.db, tx, audit.Entry{Action: op, Resource: "hospitals", RecordID: id, Summary: "签发医院登记码：" + name})
	})
	if err != nil {
		return nil, ihos.Internal(err)
	}
	h.mu.Lock()
	h.enabled[id] = name
	h.mu.Unlock()
	if err := h.link.AddHospital(ctx, id); err != nil {
		return nil, ihos.Internal(err)
	}
	return &Code{Hospital: id, Name: name, Code: code, ExpiresAt: expires, LeafURL: h.leafURL()}, nil
}

// Enroll trades a valid code for a certificate for the CSR.
func (h *Hospitals) Enroll(ctx context.Context, code string, csrPEM []byte) (*Enrollment, error) {
	invalid := ihos.Errorf(ihos.EUnauthorized, "登记码无效、已使用或已过期，请向云端管理员重新申请")
	code = strings.TrimSpace(code)
	if code == "" || len(code) > 40 {
		return nil, invalid
	}
	var e *Enrollment
	err := h.db.Tx(ctx, func(tx *sql.Tx) error {
		var id, name, expires string
		err := tx.QueryRowContext(ctx, `SELECT id, name, code_expires_at FROM hospitals WHERE code_hash = ? AND enabled = 1`+h.db.ForUpdate(), codeHash(code)).
			Scan(&id, &name, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return invalid
		}
		if err != nil {
			return err
		}
		if t, err := ihos.ParseTime(expires); err != nil || time.Now().After(t) {
			return invalid
		}
		cert, err := h.ca.SignCSR(csrPEM, id)
		if err != nil {
			return err
		}
		parsed, _ := certs.ParseCertPEM(cert)
		serial := ""
		if parsed != nil {
			serial = parsed.SerialNumber.Text(16)
		}
		now := ihos.FormatTime(time.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE hospitals SET code_hash = '', code_expires_at = NULL, enrolled_at = ?, cert_serial = ?, updated_at = ? WHERE id = ?`,
			now, serial, now, id); err != nil {
			return err
		}
		e = &Enrollment{Hospital: id, Name: name, CertPEM: string(cert), CAPEM: string(h.ca.CAPEM()), LeafURL: h.leafURL()}
		return audit.Append(ctx, h.db, tx, audit.Entry{ActorID: "hospital:" + id, ActorName: id, Action: "enroll", Resource: "hospitals", RecordID: id,
			Summary: "医院完成登记，签发证书 " + serial})
	})
	if err != nil {
		var ie *ihos.Error
		if errors.As(err, &ie) {
			return nil, ie
		}
		return nil, ihos.Internal(err)
	}
	return e, nil
}

// List returns every registered hospital.
func (h *Hospitals) List(ctx context.Context) ([]Hospital, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT id, name, enrolled_at, enabled FROM hospitals ORDER BY id`)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	out := []Hospital{}
	for rows.Next() {
		var x Hospital
		var at sql.NullString
		var enabled int
		if err := rows.Scan(&x.ID, &x.Name, &at, &enabled); err != nil {
			return nil, ihos.Internal(err)
		}
		if at.Valid {
			x.Enrolled = true
			x.EnrolledAt, _ = ihos.ParseTime(at.String)
		}
		x.Enabled = enabled == 1
		out = append(out, x)
	}
	return out, rows.Err()
}

func (h *Hospitals) routes(mux *http.ServeMux, n *node.Node) {
	mux.Handle("POST /api/enroll", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Code string `json:"code"`
			CSR  string `json:"csr"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		e, err := h.Enroll(r.Context(), in.Code, []byte(in.CSR))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, e)
		return nil
	}))
	mux.Handle("POST /api/hospitals", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := n.AuthorizeCLIOr(r, "hospitals.write")
		if err != nil {
			return err
		}
		var in struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		c, err := h.Add(ctx, in.ID, in.Name)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, c)
		return nil
	}))
	mux.Handle("GET /api/hospitals", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := n.AuthorizeCLIOr(r, "hospitals.read")
		if err != nil {
			return err
		}
		list, err := h.List(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"items": list})
		return nil
	}))
}

func codeHash(code string) string {
	c := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	sum := sha256.Sum256([]byte(c))
	return hex.EncodeToString(sum[:])
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}
