package svs

import (
	"encoding/base64"
	"net/http"

	"ihos"
	"ihos/certs/xmldsig"
	"ihos/internal/web"
)

// Operations of the signature log for XML documents.
const (
	OpSignXML   = "sign_xml"
	OpVerifyXML = "verify_xml"
)

// handleSignXML signs an XML document (a CDA/WS/T 500 shared document for the
// regional platform, say) with an enveloped XML signature by the
// application's key: POST /api/svs/sign-xml {"data": base64 XML} →
// {"xml": base64 signed XML}.
func (s *Server) handleSignXML(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Data *string `json:"data"`
	}
	data, key, err := s.signRequest(r, app, &in, func() *string { return in.Data })
	if err != nil {
		return err
	}
	ctx := r.Context()
	signed, err := xmldsig.Sign(data, key.Cert, key.Signer, xmldsig.Options{})
	if lerr := s.record(ctx, app, OpSignXML, key.Name, data, err == nil, ihos.ErrorMessage(err), serialText(key.Cert), web.ClientIP(r)); lerr != nil {
		return lerr
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]string{"xml": base64.StdEncoding.EncodeToString(signed)})
	return nil
}

// handleVerifyXML checks an enveloped XML signature and, at level 1 and 2,
// the signer's certificate: POST /api/svs/verify-xml {"data": base64 signed
// XML, "level"} → {"valid", "reason", "signer"}.
func (s *Server) handleVerifyXML(w http.ResponseWriter, r *http.Request, app *App) error {
	var in struct {
		Data  *string `json:"data"`
		Level int     `json:"level"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Data == nil {
		return required("data", "签名的 XML 文档（Base64）")
	}
	if err := checkLevel(in.Level); err != nil {
		return err
	}
	data, err := decodeB64("data", *in.Data)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var res VerifyResult
	signer, err := xmldsig.Verify(data, nil)
	if err != nil {
		res.Reason = ihos.ErrorMessage(err)
	} else {
		res.Signer = signerOf(signer)
		res.Valid = true
		if in.Level >= 1 {
			if reason := signingUsage(signer); reason != "" {
				res.Valid, res.Reason = false, reason
			} else if ok, reason := s.verifyChain(ctx, app, signer, nil, in.Level, s.now()); !ok {
				res.Valid, res.Reason = false, reason
			}
		}
	}
	serial := ""
	if signer != nil {
		serial = serialText(signer)
	}
	if err := s.record(ctx, app, OpVerifyXML, "", data, res.Valid, res.Reason, serial, web.ClientIP(r)); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, res)
	return nil
}
