package esign

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/internal/web"
)

// Authorizer admits a request for perm and returns the context to go on with.
type Authorizer = web.Authorizer

// Routes registers the e-signature API under /api/esign. Enrolling a staff
// member and storing their signature image need "signing.write"; signing
// needs "signing.sign" plus the staff member's own PIN in the request (the
// platform's doctor and pharmacist apps call it through the sync RPC);
// verifying is open to anyone, like the CA certificate it checks against.
func (s *Service) Routes(mux *http.ServeMux, authorize Authorizer) {
	mux.Handle("POST /api/esign/enroll", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := authorize(r, "signing.write")
		if err != nil {
			return err
		}
		var in struct {
			StaffID string `json:"staff_id"`
			Name    string `json:"name"`
			PIN     string `json:"pin"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		cert, err := s.Enroll(ctx, in.StaffID, in.Name, in.PIN)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, map[string]string{"serial": cert.SerialNumber.Text(16), "subject": cert.Subject.CommonName,
			"not_after": ihos.FormatTime(cert.NotAfter)})
		return nil
	}))
	mux.Handle("POST /api/esign/sign", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := authorize(r, "signing.sign")
		if err != nil {
			return err
		}
		var in struct {
			StaffID  string          `json:"staff_id"`
			PIN      string          `json:"pin"`
			Document json.RawMessage `json:"document"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		sig, err := s.Sign(ctx, in.StaffID, in.PIN, in.Document)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"p7": base64.StdEncoding.EncodeToString(sig.P7), "serial": sig.Serial, "signed_at": sig.SignedAt})
		return nil
	}))
	mux.Handle("POST /api/esign/verify", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Document json.RawMessage `json:"document"`
			P7       string          `json:"p7"`
		}
		if err := web.DecodeJSON(r, &in); err != nil {
			return err
		}
		p7, err := base64.StdEncoding.DecodeString(in.P7)
		if err != nil {
			return ihos.Invalid(map[string]string{"p7": "p7 不是有效的 Base64"})
		}
		v, err := Verify(r.Context(), in.Document, p7, []*smx509.Certificate{s.CA.Certificate()})
		if err != nil {
			if ihos.ErrorCode(err) == ihos.EInvalid {
				web.WriteJSON(w, http.StatusOK, map[string]any{"valid": false, "reason": ihos.ErrorMessage(err)})
				return nil
			}
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"valid": true, "signer": v.Signer, "serial": v.Serial,
			"signed_at": v.SignedAt, "timestamp_at": v.TimestampAt})
		return nil
	}))
	mux.Handle("PUT /api/esign/{staff}/image", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := authorize(r, "signing.write")
		if err != nil {
			return err
		}
		img, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
		if err != nil {
			return ihos.Invalid(map[string]string{"image": "签名图片不能超过 200 KB"})
		}
		if err := s.SetImage(ctx, r.PathValue("staff"), img); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.Handle("GET /api/esign/{staff}/image", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		ctx, err := authorize(r, "signing.read")
		if err != nil {
			return err
		}
		img, err := s.Image(ctx, r.PathValue("staff"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
		return nil
	}))
}
