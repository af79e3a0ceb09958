// Package clinical is what the clinical documents of an online visit share
// (DESIGN.md §7): prescriptions (package prescriptions), outpatient records
// and exam/lab orders (package emr) are written by the visit's doctor,
// signed with the doctor's e-signature over their canonical JSON, never
// changed once signed, placed with the hospital's HIS, and every change of
// theirs leaves an append-only history row and an audit record with the
// before and after, in the same transaction. The rules of each document
// (who writes, for how long, what it holds) stay in its own package; the
// mechanics live here once.
//
// The doctor's key lives on the appliance and the HIS behind it: both are
// reached through the small interfaces Signer and HIS (the cloud's adapters
// over the sync RPC are in cloud/signer.go), so one adapter serves every
// document.
package clinical

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/certs/esign"
	"ihos/his"
	"ihos/visits"
)

// Signer signs a document with a staff member's e-signature (certs/esign on
// the appliance, reached over the sync RPC): it returns the detached PKCS#7
// over esign.Canonical(doc).
type Signer interface {
	Sign(ctx context.Context, staffID, pin string, doc []byte) (sig []byte, err error)
}

// HIS places an order with a hospital's HIS (his.Service.PlaceOrder on the
// appliance, reached over the sync RPC his.RPCPlaceOrder). Orders carry a
// Key (the document's id), so a repeated call places nothing twice.
type HIS interface {
	PlaceOrder(ctx context.Context, hospital string, req his.OrderRequest) ([]his.Order, error)
}

// The statuses every signed document starts with: a draft is the doctor's
// work in progress, rewritten in place; a signed version never changes.
const (
	StatusDraft  = "draft"
	StatusSigned = "signed"
)

// Labels of the statuses the documents share, as people see them.
const (
	LabelDraft     = "草稿"
	LabelSigned    = "已签名"
	LabelSentToHIS = "已发送至医院"
)

// ErrNoSigner answers a signing request while no signer is wired (the link
// to the appliance is not set up).
var ErrNoSigner = ihos.Errorf(ihos.EUnavailable, "电子签名服务暂不可用，请稍后再签名")

// CanSign checks, before anything is read, that a signature can be asked
// for: a signer is wired and the doctor typed the PIN that unlocks the key.
func CanSign(s Signer, pin string) error {
	if s == nil {
		return ErrNoSigner
	}
	if pin == "" {
		return ihos.Invalid(map[string]string{"pin": "请输入签名密码"})
	}
	return nil
}

// Document is the canonical JSON (esign.Canonical) of doc, a document's
// signed form: its content and whose it is, without its workflow fields.
func Document(doc any) ([]byte, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	return esign.Canonical(raw)
}

// Signature is a document as its doctor signed it.
type Signature struct {
	Doc string    // the canonical JSON that was signed
	SM3 string    // its SM3 digest, hex: how the audit log and people refer to it
	Sig []byte    // the detached PKCS#7
	At  time.Time // when it was signed (the document's written_at)
}

// Sign has s sign the document written at at (document renders it, with
// Document) with staffID's e-signature unlocked by pin. The call may take a
// round trip to the appliance: callers hold no transaction meanwhile, and
// store the signature only if the draft is unchanged.
func Sign(ctx context.Context, s Signer, staffID, pin string, at time.Time, document func(at time.Time) ([]byte, error)) (Signature, error) {
	if err := CanSign(s, pin); err != nil {
		return Signature{}, err
	}
	doc, err := document(at)
	if err != nil {
		return Signature{}, err
	}
	sig, err := s.Sign(ctx, staffID, pin, doc)
	if err != nil {
		return Signature{}, err
	}
	if len(sig) == 0 {
		return Signature{}, ihos.Internal(errors.New("clinical: empty signature"))
	}
	sum := certs.SM3Sum(doc)
	return Signature{Doc: string(doc), SM3: hex.EncodeToString(sum[:]), Sig: sig, At: at}, nil
}

// SignatureColumn is a signature as its column holds it: base64, NULL when
// unsigned.
func SignatureColumn(sig []byte) any {
	if len(sig) == 0 {
		return nil
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// ScanSignature reads a column written by SignatureColumn.
func ScanSignature(col sql.NullString) ([]byte, error) {
	if col.String == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(col.String)
}

// Visit reads the visit a document is written for; id is what the client
// sent.
func Visit(ctx context.Context, vs *visits.Service, id string) (*visits.Visit, error) {
	if strings.TrimSpace(id) == "" {
		return nil, ihos.Invalid(map[string]string{"visit_id": "请指定问诊"})
	}
	return vs.Get(ctx, visits.System, id)
}
