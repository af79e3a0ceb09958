package xmldsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
)

// Namespaces and algorithm identifiers.
const (
	// NamespaceDSig is the XML-DSig 1.0 namespace.
	NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"
	// NamespaceExcC14N is the namespace of the InclusiveNamespaces element.
	NamespaceExcC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

	// AlgExcC14N is Exclusive XML Canonicalization 1.0 without comments.
	AlgExcC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
	// AlgEnveloped is the enveloped-signature transform.
	AlgEnveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

	// AlgSHA256 is SHA-256 (defined by XML Encryption 1.0).
	AlgSHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
	// AlgRSASHA256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 9231).
	AlgRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	// AlgECDSASHA256 is ECDSA with SHA-256 (RFC 9231); the signature
	// value is r‖s, each left-padded to the size of the curve order.
	AlgECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

	// AlgSM3 and AlgSM2SM3 identify SM3 (GB/T 32905) and SM3withSM2 (GB/T
	// 32918.2, Z over the GM/T 0009 default user id 1234567812345678). Neither
	// RFC 6931 nor RFC 9231 nor the IANA "XML Security URIs" registry registers
	// an SM2 or SM3 identifier, so there is no registered URI to use. These
	// two follow RFC 6931's http://www.w3.org/2007/05/xmldsig-more# namespace
	// and its naming (as for #sha3-256; signature URIs as <sig>-<hash>). A peer
	// that uses other private URIs must be configured to use these. The
	// SM2 signature value is r‖s, 32 bytes each (64 bytes), not DER, as for
	// ECDSA in XML-DSig.
	AlgSM3    = "http://www.w3.org/2007/05/xmldsig-more#sm3"
	AlgSM2SM3 = "http://www.w3.org/2007/05/xmldsig-more#sm2-sm3"
)

const (
	// maxSignatureSize bounds the ds:Signature element: a certificate chain of
	// a few certificates is a few tens of KB.
	maxSignatureSize = 1 << 20
	maxKeyInfoCerts  = 8
	maxPrefixList    = 64
)

// Options tune Sign. The zero value is the default.
type Options struct {
	// OmitKeyInfo leaves out ds:KeyInfo. By default the signer certificate is
	// included as ds:KeyInfo/ds:X509Data/ds:X509Certificate, so a verifier
	// needs nothing but the document.
	OmitKeyInfo bool
}

// sigAlg describes how one key type signs.
type sigAlg struct {
	name      string // for messages
	signature string // SignatureMethod URI
	digest    string // DigestMethod URI Sign uses
	ecSize    int    // bytes of r and of s; 0 for RSA
}

func algFor(pub crypto.PublicKey) (sigAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return sigAlg{}, ihos.Errorf(ihos.EInvalid, "缺少公钥")
		}
		if k.Curve == sm2.P256() {
			return sigAlg{name: "SM2", signature: AlgSM2SM3, digest: AlgSM3, ecSize: 32}, nil
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return sigAlg{name: "ECDSA", signature: AlgECDSASHA256, digest: AlgSHA256, ecSize: (k.Curve.Params().BitSize + 7) / 8}, nil
		}
		return sigAlg{}, ihos.Errorf(ihos.EInvalid, "不支持的椭圆曲线 %s（支持 SM2、P-256、P-384、P-521）", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return sigAlg{}, ihos.Errorf(ihos.EInvalid, "缺少公钥")
		}
		return sigAlg{name: "RSA", signature: AlgRSASHA256, digest: AlgSHA256}, nil
	case nil:
		return sigAlg{}, ihos.Errorf(ihos.EInvalid, "缺少公钥")
	}
	return sigAlg{}, ihos.Errorf(ihos.EInvalid, "不支持的密钥类型 %T（支持 SM2、RSA、ECDSA）", pub)
}

func newDigest(uri string) (hash.Hash, error) {
	switch uri {
	case AlgSM3:
		return sm3.New(), nil
	case AlgSHA256:
		return sha256.New(), nil
	}
	return nil, ihos.Errorf(ihos.EInvalid, "不支持的摘要算法 %s（支持 SM3、SHA-256）", clip(uri))
}

func isSignature(ev *event) bool {
	return ev.kind == evStart && ev.ns == NamespaceDSig && ev.local == "Signature"
}

// Sign returns doc with an enveloped XML signature appended as the last child
// of the root element: ds:SignedInfo canonicalised with Exclusive XML
// Canonicalization 1.0, one ds:Reference URI="" (the whole document) with the
// enveloped-signature and exc-c14n transforms, and the signature and digest
// methods of the key: SM3withSM2 with SM3 for SM2 keys, RSA-SHA256 with
// SHA-256 for RSA keys, ECDSA-SHA256 with SHA-256 for ECDSA keys. Unless
// o.OmitKeyInfo, cert is embedded as ds:X509Data; it must hold key's public
// key. The rest of doc is kept byte for byte. A document that already holds a
// ds:Signature is refused (Verify accepts exactly one signature).
func Sign(doc []byte, cert *smx509.Certificate, key crypto.Signer, o Options) ([]byte, error) {
	if key == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少签名私钥")
	}
	pub := key.Public()
	alg, err := algFor(pub)
	if err != nil {
		return nil, err
	}
	if cert == nil && !o.OmitKeyInfo {
		return nil, ihos.Errorf(ihos.EInvalid, "缺少签名证书（KeyInfo 需要嵌入签名证书）")
	}
	if cert != nil {
		eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !eq.Equal(cert.PublicKey) {
			return nil, ihos.Errorf(ihos.EInvalid, "签名证书与签名私钥不匹配")
		}
	}

	h, _ := newDigest(alg.digest)
	r, err := newReader(doc)
	if err != nil {
		return nil, err
	}
	c := newCanonWriter(h, nil, nil)
	var root, rootEnd *event
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if isSignature(ev) {
			return nil, ihos.Errorf(ihos.EInvalid, "文档已包含 XML 签名（ds:Signature），不能再次签名")
		}
		if ev.depth == 0 && ev.kind == evStart {
			root = ev
		}
		if ev.depth == 0 && ev.kind == evEnd {
			rootEnd = ev
		}
		c.write(ev)
	}
	if err := c.flush(); err != nil {
		return nil, ihos.Internal(err)
	}
	digest := h.Sum(nil)

	signedInfo := signedInfoXML(alg, digest)
	siC14N, err := canonicalSignedInfo(signedInfo)
	if err != nil {
		return nil, err
	}
	sig, err := certs.SignData(key, siC14N)
	if err != nil {
		return nil, err
	}
	if alg.ecSize > 0 {
		if sig, err = derToRaw(sig, alg.ecSize); err != nil {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: %s signature: %w", alg.name, err))
		}
	}

	var s strings.Builder
	s.WriteString(`<ds:Signature xmlns:ds="` + NamespaceDSig + `">` + "\n")
	s.WriteString(signedInfo)
	s.WriteString("\n<ds:SignatureValue>\n")
	writeBase64(&s, sig)
	s.WriteString("</ds:SignatureValue>\n")
	if !o.OmitKeyInfo {
		s.WriteString("<ds:KeyInfo>\n<ds:X509Data>\n<ds:X509Certificate>\n")
		writeBase64(&s, cert.Raw)
		s.WriteString("</ds:X509Certificate>\n</ds:X509Data>\n</ds:KeyInfo>\n")
	}
	s.WriteString("</ds:Signature>")

	// Insert with no white space around the Signature: text added outside it
	// would change the signed content.
	out := make([]byte, 0, len(doc)+s.Len()+len(root.qname())+3)
	if root.selfClosing {
		// <root .../> becomes <root ...>Signature</root>: the same canonical form.
		out = append(out, doc[:root.end-2]...)
		out = append(out, '>')
		out = append(out, s.String()...)
		out = append(out, "</"+root.qname()+">"...)
		out = append(out, doc[root.end:]...)
		return out, nil
	}
	out = append(out, doc[:rootEnd.start]...)
	out = append(out, s.String()...)
	out = append(out, doc[rootEnd.start:]...)
	return out, nil
}

func signedInfoXML(alg sigAlg, digest []byte) string {
	var s strings.Builder
	s.WriteString("<ds:SignedInfo>\n")
	s.WriteString(`<ds:CanonicalizationMethod Algorithm="` + AlgExcC14N + `"/>` + "\n")
	s.WriteString(`<ds:SignatureMethod Algorithm="` + alg.signature + `"/>` + "\n")
	s.WriteString(`<ds:Reference URI="">` + "\n")
	s.WriteString("<ds:Transforms>\n")
	s.WriteString(`<ds:Transform Algorithm="` + AlgEnveloped + `"/>` + "\n")
	s.WriteString(`<ds:Transform Algorithm="` + AlgExcC14N + `"/>` + "\n")
	s.WriteString("</ds:Transforms>\n")
	s.WriteString(`<ds:DigestMethod Algorithm="` + alg.digest + `"/>` + "\n")
	s.WriteString("<ds:DigestValue>" + base64.StdEncoding.EncodeToString(digest) + "</ds:DigestValue>\n")
	s.WriteString("</ds:Reference>\n")
	s.WriteString("</ds:SignedInfo>")
	return s.String()
}

// canonicalSignedInfo canonicalises the SignedInfo Sign writes, through the
// same code path Verify uses on the signed document, in the context of a
// Signature element declaring the ds prefix.
func canonicalSignedInfo(signedInfo string) ([]byte, error) {
	wrapped := `<ds:Signature xmlns:ds="` + NamespaceDSig + `">` + signedInfo + `</ds:Signature>`
	r, err := newReader([]byte(wrapped))
	if err != nil {
		return nil, ihos.Internal(err)
	}
	var evs []*event
	var scope map[string]string
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, ihos.Internal(err)
		}
		if ev.depth == 0 {
			if ev.kind == evStart {
				scope = r.ns.snapshot()
			}
			continue
		}
		evs = append(evs, ev)
	}
	return canonicalFragment(evs, nil, scope)
}

// canonicalFragment canonicalises a captured element subtree as a document
// subset whose apex is its first event; scope is the namespace context of the
// apex (for InclusiveNamespaces prefixes).
func canonicalFragment(evs []*event, incl []string, scope map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	c := newCanonWriter(&buf, incl, scope)
	for _, ev := range evs {
		c.write(ev)
	}
	if err := c.flush(); err != nil {
		return nil, ihos.Internal(err)
	}
	return buf.Bytes(), nil
}

func writeBase64(s *strings.Builder, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		s.WriteString(enc[:76])
		s.WriteByte('\n')
		enc = enc[76:]
	}
	s.WriteString(enc)
	s.WriteByte('\n')
}

type ecSig struct {
	R, S *big.Int
}

// derToRaw turns DER SEQUENCE{r, s} into r‖s with each half size bytes.
func derToRaw(der []byte, size int) ([]byte, error) {
	var sig ecSig
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 || sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > size*8 || sig.S.BitLen() > size*8 {
		return nil, errors.New("malformed ECDSA/SM2 signature")
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}

// rawToDER turns r‖s into DER SEQUENCE{r, s}, the form certs.VerifyData checks.
func rawToDER(raw []byte, size int) ([]byte, error) {
	if len(raw) != 2*size {
		return nil, errors.New("wrong length")
	}
	return asn1.Marshal(ecSig{R: new(big.Int).SetBytes(raw[:size]), S: new(big.Int).SetBytes(raw[size:])})
}

// Verify checks the enveloped XML signature of doc and returns the signer
// certificate: cert when it is not nil, otherwise the certificate in
// ds:KeyInfo/ds:X509Data whose key verifies the signature. Checking that
// certificate (chain, validity period, revocation, key usage) is the caller's
// job.
//
// Only one form is accepted, so that a signature cannot be moved or copied to
// vouch for other content (signature wrapping): the document holds exactly one
// ds:Signature, a direct child of the root element; its SignedInfo has the
// exc-c14n CanonicalizationMethod, one of the SignatureMethods Sign uses (and
// the one that fits the certificate's key), and exactly one Reference with
// URI="" whose transforms are enveloped-signature then exc-c14n. The reference
// digest is checked over the canonical document without the Signature element,
// then the SignatureValue over the canonical SignedInfo. InclusiveNamespaces
// PrefixLists are honoured.
//
// Errors are *ihos.Error with code invalid; a document that was changed after
// signing, or a signature that does not match, gives an error wrapping
// certs.ErrSignatureInvalid.
func Verify(doc []byte, cert *smx509.Certificate) (*smx509.Certificate, error) {
	r, err := newReader(doc)
	if err != nil {
		return nil, err
	}
	// The digest method is only known once the Signature is read, and the
	// Signature may come anywhere among the root's children: hash with both
	// while reading, so the document is parsed once.
	hSHA, hSM3 := sha256.New(), sm3.New()
	c := newCanonWriter(io.MultiWriter(hSHA, hSM3), nil, nil)
	var (
		sigEvents []*event
		sigScope  map[string]string
		sigStart  = -1
		capturing bool
		count     int
	)
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if isSignature(ev) {
			count++
			if count > 1 {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 签名验证失败：文档中有多个 ds:Signature 元素（可能是签名包装攻击），只接受一个位于根元素下的签名")
			}
			if ev.depth != 1 {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 签名验证失败：ds:Signature 必须是根元素的直接子元素（包络签名）")
			}
			capturing, sigStart, sigScope = true, ev.start, r.ns.snapshot()
		}
		if capturing {
			if ev.end-sigStart > maxSignatureSize {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 签名元素过大：超过 %d 字节", maxSignatureSize)
			}
			sigEvents = append(sigEvents, ev)
			if ev.kind == evEnd && ev.depth == 1 {
				capturing = false
			}
			continue
		}
		c.write(ev)
	}
	if err := c.flush(); err != nil {
		return nil, ihos.Internal(err)
	}
	if count == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "文档没有 XML 签名：根元素下没有 ds:Signature 元素")
	}
	sig, err := parseSignature(sigEvents)
	if err != nil {
		return nil, err
	}

	// 1. The reference: the document without the Signature.
	var got []byte
	switch {
	case len(sig.refIncl) > 0:
		h, _ := newDigest(sig.digestMethod)
		if err := canonicalizeTo(h, doc, sig.refIncl, sigStart); err != nil {
			return nil, err
		}
		got = h.Sum(nil)
	case sig.digestMethod == AlgSM3:
		got = hSM3.Sum(nil)
	default:
		got = hSHA.Sum(nil)
	}
	if subtle.ConstantTimeCompare(got, sig.digest) != 1 {
		return nil, errInvalid(certs.ErrSignatureInvalid, "XML 签名验证失败：文档内容在签名后被修改（引用摘要不符）")
	}

	// 2. The signature over SignedInfo.
	siC14N, err := canonicalFragment(sig.signedInfo, sig.c14nIncl, sigScope)
	if err != nil {
		return nil, err
	}
	if cert != nil {
		if err := verifyWith(cert, sig, siC14N); err != nil {
			return nil, err
		}
		return cert, nil
	}
	if len(sig.certs) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 签名中没有签名证书（ds:KeyInfo/ds:X509Data），请提供验签证书")
	}
	var firstErr error
	for _, der := range sig.certs {
		kc, err := certs.ParseCertificate(der)
		if err == nil {
			err = verifyWith(kc, sig, siC14N)
		}
		if err == nil {
			return kc, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if len(sig.certs) == 1 {
		return nil, firstErr
	}
	return nil, errInvalid(firstErr, "XML 签名验证失败：ds:KeyInfo 中没有能验证该签名的证书")
}

func verifyWith(cert *smx509.Certificate, sig *signature, signedInfo []byte) error {
	alg, err := algFor(cert.PublicKey)
	if err != nil {
		return err
	}
	if alg.signature != sig.signatureMethod {
		return ihos.Errorf(ihos.EInvalid, "XML 签名算法 %s 与证书的 %s 密钥不符", clip(sig.signatureMethod), alg.name)
	}
	value := sig.value
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		// Tolerate a value whose leading zero bytes were dropped.
		if n := k.Size(); len(value) < n && len(value) > 0 {
			value = append(make([]byte, n-len(value)), value...)
		}
	default:
		der, err := rawToDER(value, alg.ecSize)
		if err != nil {
			return errInvalid(certs.ErrSignatureInvalid, "XML 签名值格式错误：%s 签名值应为 %d 字节的 r‖s，实际为 %d 字节", alg.name, 2*alg.ecSize, len(value))
		}
		value = der
	}
	if err := certs.VerifyData(cert.PublicKey, signedInfo, value); err != nil {
		if errors.Is(err, certs.ErrSignatureInvalid) {
			return errInvalid(err, "XML 签名验证失败：签名值与签名信息（SignedInfo）或证书不匹配")
		}
		return err
	}
	return nil
}

func errInvalid(cause error, format string, args ...any) error {
	e := ihos.Errorf(ihos.EInvalid, format, args...)
	e.Err = cause
	return e
}

// clip shortens an attacker-supplied string for a message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
