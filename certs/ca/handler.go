package ca

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
)

// Handler serves the CA's public endpoints, at these absolute paths:
//
//	GET  /ca/cert             the CA certificate (DER, application/pkix-cert)
//	GET  /ca/crl              the current CRL (DER, application/pkix-crl)
//	POST /ca/ocsp             an OCSP request (application/ocsp-request) → application/ocsp-response
//	GET  /ca/ocsp/{base64}    the same, the request base64 (and URL-) encoded in the path (RFC 6960 appendix A)
//
// OCSP requests over 64 KB or that do not parse get a malformedRequest
// response. The paths are matched without cleaning, since a base64 request may
// contain "//": mount the handler where paths reach it unchanged (an
// http.ServeMux pattern redirects such paths to cleaned ones; POST, which
// openssl and CheckOCSP use, is unaffected).
func (c *CA) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/ca/cert":
			if !allow(w, r, http.MethodGet, http.MethodHead) {
				return
			}
			w.Header().Set("Content-Type", "application/pkix-cert")
			w.Header().Set("Content-Disposition", `attachment; filename="ca.crt"`)
			w.Write(c.cert.Raw)
		case p == "/ca/crl":
			if !allow(w, r, http.MethodGet, http.MethodHead) {
				return
			}
			der, err := c.CRL(r.Context())
			if err != nil {
				http.Error(w, "CRL 暂时无法生成，请稍后重试", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/pkix-crl")
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write(der)
		case p == "/ca/ocsp" || strings.HasPrefix(p, "/ca/ocsp/"):
			switch {
			case r.Method == http.MethodPost:
				body, err := io.ReadAll(io.LimitReader(r.Body, maxOCSPRequest+1))
				if err != nil || len(body) > maxOCSPRequest {
					writeOCSP(w, statusOnlyResponse(ocspMalformedRequest))
					return
				}
				writeOCSP(w, c.respondOCSP(r.Context(), body))
			case r.Method == http.MethodGet && p != "/ca/ocsp":
				writeOCSP(w, c.respondOCSP(r.Context(), decodeGETRequest(p[len("/ca/ocsp/"):])))
			default:
				allow(w, r, http.MethodPost)
			}
		default:
			http.NotFound(w, r)
		}
	})
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "不支持的请求方法", http.StatusMethodNotAllowed)
	return false
}

func writeOCSP(w http.ResponseWriter, resp []byte) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// decodeGETRequest decodes the base64 of a GET OCSP request. Clients differ in
// what they escape and whether they pad, so standard and URL-safe alphabets,
// padded or not, are accepted (the path arrives percent-decoded). It returns nil (a malformed request) on failure.
func decodeGETRequest(s string) []byte {
	if len(s) > maxOCSPRequest*4/3+4 {
		return nil
	}
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}
