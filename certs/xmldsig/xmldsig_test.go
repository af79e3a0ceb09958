package xmldsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"ihos/certs"
)

// cdaDoc is a Chinese CDA-like document (WS/T 500 style): default HL7 v3
// namespace, an xsi prefix used only in attributes, a stylesheet PI before the
// root, Chinese text and attribute values, escapes and empty elements.
const cdaDoc = `<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="CDA.xsl"?>
<!-- 电子病历共享文档：病历概要 -->
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:mif="urn:hl7-org:v3/mif" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:hl7-org:v3 ../sdschemas/CDA.xsd">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <templateId root="2.16.156.10011.2.1.1.21"/>
  <id root="2.16.156.10011.1.1" extension="RN001"/>
  <code code="C0001" codeSystem="2.16.156.10011.2.4" codeSystemName="卫生信息共享文档编码体系"/>
  <title>病历概要</title>
  <effectiveTime value="20260115093000"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" displayName="正常访问保密级别"/>
  <languageCode code="zh-CN"/>
  <recordTarget typeCode="RCT" contextControlCode="OP">
    <patientRole classCode="PAT">
      <id root="2.16.156.10011.1.11" extension="HR201703"/>
      <patient classCode="PSN" determinerCode="INSTANCE">
        <id root="2.16.156.10011.1.3" extension="110101199001011234"/>
        <name>患者 张三</name>
        <administrativeGenderCode code="1" codeSystem="2.16.156.10011.2.3.3.4" displayName="男性"/>
        <birthTime value="19900101"/>
      </patient>
    </patientRole>
  </recordTarget>
  <component>
    <structuredBody>
      <component>
        <section>
          <code code="29548-5" displayName="Diagnosis" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>
          <text>高血压 2 级 &amp; 2 型糖尿病；血压 150/95 mmHg &lt;建议复诊&gt;</text>
          <entry>
            <observation classCode="OBS" moodCode="EVN">
              <value xsi:type="PQ" value="150" unit="mmHg"/>
            </observation>
          </entry>
        </section>
      </component>
    </structuredBody>
  </component>
</ClinicalDocument>
`

type signer struct {
	name string
	key  crypto.Signer
	cert *smx509.Certificate
	// sigLen is the decoded SignatureValue length.
	sigLen         int
	sigAlg, digAlg string
	otherSameKind  *smx509.Certificate
}

var (
	signersOnce sync.Once
	signersList []*signer
	signersErr  error
)

// selfSigned makes a self-signed certificate for key (any of SM2, RSA, ECDSA).
func selfSigned(key crypto.Signer, cn string) (*smx509.Certificate, error) {
	tmpl := &smx509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"ihos 测试医院"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment | smx509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	return smx509.ParseCertificate(der)
}

func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "SM2":
		return certs.GenerateSM2Key()
	case "RSA":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ECDSA-P256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECDSA-P384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key kind %s", kind)
}

func testSigners(t testing.TB) []*signer {
	t.Helper()
	signersOnce.Do(func() {
		for _, k := range []struct {
			kind           string
			sigLen         int
			sigAlg, digAlg string
		}{
			{"SM2", 64, AlgSM2SM3, AlgSM3},
			{"RSA", 256, AlgRSASHA256, AlgSHA256},
			{"ECDSA-P256", 64, AlgECDSASHA256, AlgSHA256},
			{"ECDSA-P384", 96, AlgECDSASHA256, AlgSHA256},
		} {
			s := &signer{name: k.kind, sigLen: k.sigLen, sigAlg: k.sigAlg, digAlg: k.digAlg}
			if s.key, signersErr = newKey(k.kind); signersErr != nil {
				return
			}
			if s.cert, signersErr = selfSigned(s.key, k.kind+" 签名医生 李医生"); signersErr != nil {
				return
			}
			other, err := newKey(k.kind)
			if err != nil {
				signersErr = err
				return
			}
			if s.otherSameKind, signersErr = selfSigned(other, k.kind+" 其他人"); signersErr != nil {
				return
			}
			signersList = append(signersList, s)
		}
	})
	if signersErr != nil {
		t.Fatal(signersErr)
	}
	return signersList
}

func mustSign(t testing.TB, doc string, s *signer, o Options) []byte {
	t.Helper()
	out, err := Sign([]byte(doc), s.cert, s.key, o)
	if err != nil {
		t.Fatalf("%s: Sign: %v", s.name, err)
	}
	return out
}

func wantSignatureInvalid(t *testing.T, err error, contains string) {
	t.Helper()
	wantInvalid(t, err, contains)
	if !errors.Is(err, certs.ErrSignatureInvalid) {
		t.Fatalf("error does not wrap certs.ErrSignatureInvalid: %v", err)
	}
}

var sigValueRE = regexp.MustCompile(`(?s)<ds:SignatureValue>\s*(.*?)\s*</ds:SignatureValue>`)

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, s := range testSigners(t) {
		t.Run(s.name, func(t *testing.T) {
			signed := mustSign(t, cdaDoc, s, Options{})
			// The document is unchanged around the inserted Signature, which is
			// the last child of the root.
			i := bytes.Index(signed, []byte("<ds:Signature "))
			j := bytes.Index(signed, []byte("</ds:Signature>")) + len("</ds:Signature>")
			if i < 0 || j < i {
				t.Fatalf("no ds:Signature in\n%s", signed)
			}
			if string(signed[:i])+string(signed[j:]) != cdaDoc {
				t.Fatal("Sign changed the document outside the Signature")
			}
			if !strings.HasPrefix(string(signed[j:]), "</ClinicalDocument>") {
				t.Fatal("Signature is not the last child of the root")
			}
			for _, want := range []string{
				`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
				`<ds:SignatureMethod Algorithm="` + s.sigAlg + `"/>`,
				`<ds:Reference URI="">`,
				`<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`,
				`<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>`,
				`<ds:DigestMethod Algorithm="` + s.digAlg + `"/>`,
				`<ds:X509Certificate>`,
			} {
				if !bytes.Contains(signed, []byte(want)) {
					t.Errorf("signed document lacks %s", want)
				}
			}
			m := sigValueRE.FindSubmatch(signed)
			raw, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(m[1]), "\n", ""))
			if err != nil || len(raw) != s.sigLen {
				t.Fatalf("SignatureValue: %d bytes (%v), want %d", len(raw), err, s.sigLen)
			}

			got, err := Verify(signed, nil)
			if err != nil {
				t.Fatalf("Verify with KeyInfo: %v", err)
			}
			if !got.Equal(s.cert) {
				t.Fatal("Verify returned another certificate than the signer's")
			}
			if got, err = Verify(signed, s.cert); err != nil || got != s.cert {
				t.Fatalf("Verify with the certificate: %v", err)
			}
			_, err = Verify(signed, s.otherSameKind)
			wantSignatureInvalid(t, err, "签名值")
		})
	}
}

func TestSignOmitKeyInfo(t *testing.T) {
	s := testSigners(t)[0]
	signed := mustSign(t, cdaDoc, s, Options{OmitKeyInfo: true})
	if bytes.Contains(signed, []byte("KeyInfo")) {
		t.Fatal("KeyInfo written although omitted")
	}
	_, err := Verify(signed, nil)
	wantInvalid(t, err, "请提供验签证书")
	if _, err := Verify(signed, s.cert); err != nil {
		t.Fatal(err)
	}
	// Without KeyInfo no certificate is needed to sign.
	if _, err := Sign([]byte(cdaDoc), nil, s.key, Options{OmitKeyInfo: true}); err != nil {
		t.Fatal(err)
	}
}

func TestSignInput(t *testing.T) {
	ss := testSigners(t)
	sm2s, rsas := ss[0], ss[1]
	_, err := Sign([]byte(cdaDoc), nil, sm2s.key, Options{})
	wantInvalid(t, err, "缺少签名证书")
	_, err = Sign([]byte(cdaDoc), rsas.cert, sm2s.key, Options{})
	wantInvalid(t, err, "不匹配")
	_, err = Sign([]byte(cdaDoc), sm2s.cert, nil, Options{})
	wantInvalid(t, err, "缺少签名私钥")
	signed := mustSign(t, cdaDoc, sm2s, Options{})
	_, err = Sign(signed, sm2s.cert, sm2s.key, Options{})
	wantInvalid(t, err, "已包含")
	_, err = Sign([]byte(`<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>`), sm2s.cert, sm2s.key, Options{})
	wantInvalid(t, err, "DOCTYPE")
	_, err = Sign([]byte("<r>"), sm2s.cert, sm2s.key, Options{})
	wantInvalid(t, err, "")
}

func TestSignSelfClosingRootAndPrefixedRoot(t *testing.T) {
	s := testSigners(t)[0]
	for _, doc := range []string{
		`<r a="1" />`,
		"\uFEFF<?xml version=\"1.0\"?><r/>\n<!-- after -->\n<?after-root pi?>",
		`<p:r xmlns:p="urn:p"><p:c>1</p:c></p:r>`,
		`<ds:Envelope xmlns:ds="urn:not-dsig"><ds:x/></ds:Envelope>`,
	} {
		signed := mustSign(t, doc, s, Options{})
		if _, err := Verify(signed, nil); err != nil {
			t.Fatalf("%s:\n%s\n%v", doc, signed, err)
		}
		c1, err := Canonicalize([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		c2 := canonicalWithoutSignature(t, signed)
		if !bytes.Equal(c1, c2) {
			t.Fatalf("signing changed the canonical content:\n%s\n%s", c1, c2)
		}
	}
}

// canonicalWithoutSignature is the reference's view of a signed document.
func canonicalWithoutSignature(t testing.TB, signed []byte) []byte {
	t.Helper()
	r, err := newReader(signed)
	if err != nil {
		t.Fatal(err)
	}
	start := -1
	for start < 0 {
		ev, err := r.next()
		if err != nil {
			t.Fatalf("no Signature: %v", err)
		}
		if isSignature(ev) {
			start = ev.start
		}
	}
	var buf bytes.Buffer
	if err := canonicalizeTo(&buf, signed, nil, start); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerifyDetectsTampering(t *testing.T) {
	for _, s := range testSigners(t) {
		t.Run(s.name, func(t *testing.T) {
			signed := string(mustSign(t, cdaDoc, s, Options{}))
			content := []struct{ name, from, to string }{
				{"text", "患者 张三", "患者 李三"},
				{"one-digit", "150/95", "150/96"},
				{"attribute", `value="150" unit`, `value="151" unit`},
				{"attribute-added", `<realmCode code="CN"/>`, `<realmCode code="CN" nullFlavor="UNK"/>`},
				{"element-added", `<languageCode code="zh-CN"/>`, `<languageCode code="zh-CN"/><title>伪造</title>`},
				{"namespace-changed", `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`, `xmlns:xsi="urn:evil"`},
				{"stylesheet-pi", `href="CDA.xsl"`, `href="evil.xsl"`},
				{"whitespace-in-content", "<title>病历概要</title>", "<title>病历概要 </title>"},
			}
			for _, c := range content {
				doc := strings.Replace(signed, c.from, c.to, 1)
				if doc == signed {
					t.Fatalf("%s: %q not found", c.name, c.from)
				}
				_, err := Verify([]byte(doc), nil)
				wantSignatureInvalid(t, err, "摘要不符")
			}

			// One character of the SignatureValue.
			m := sigValueRE.FindStringSubmatchIndex(signed)
			b := []byte(signed)
			pos := m[2] + 10
			if b[pos] == 'A' {
				b[pos] = 'B'
			} else {
				b[pos] = 'A'
			}
			_, err := Verify(b, nil)
			wantSignatureInvalid(t, err, "签名值与签名信息")

			// SignedInfo content: the digest value (consistent with a changed
			// document is impossible without the key), the transforms.
			dv := regexp.MustCompile(`<ds:DigestValue>([^<]*)</ds:DigestValue>`).FindStringSubmatch(signed)[1]
			other := base64.StdEncoding.EncodeToString(make([]byte, 32))
			_, err = Verify([]byte(strings.Replace(signed, dv, other, 1)), nil)
			wantSignatureInvalid(t, err, "摘要不符")

			// An added Id attribute on SignedInfo changes its canonical form.
			_, err = Verify([]byte(strings.Replace(signed, "<ds:SignedInfo>", `<ds:SignedInfo Id="x">`, 1)), nil)
			wantSignatureInvalid(t, err, "签名值与签名信息")
		})
	}
}

func TestVerifyAlgorithmConfusion(t *testing.T) {
	ss := testSigners(t)
	sm2s, rsas, ecs := ss[0], ss[1], ss[2]
	signed := string(mustSign(t, cdaDoc, sm2s, Options{}))
	// An SM2 signature checked against an RSA or ECDSA certificate.
	_, err := Verify([]byte(signed), rsas.cert)
	wantInvalid(t, err, "与证书的 RSA 密钥不符")
	_, err = Verify([]byte(signed), ecs.cert)
	wantInvalid(t, err, "与证书的 ECDSA 密钥不符")
	// The SignatureMethod relabelled to match the other certificate.
	relabelled := strings.Replace(signed, AlgSM2SM3, AlgECDSASHA256, 1)
	_, err = Verify([]byte(relabelled), ecs.cert)
	wantSignatureInvalid(t, err, "")
	// Weak or unknown algorithms.
	_, err = Verify([]byte(strings.Replace(signed, AlgSM2SM3, "http://www.w3.org/2000/09/xmldsig#rsa-sha1", 1)), nil)
	wantInvalid(t, err, "不支持的 XML 签名算法")
	_, err = Verify([]byte(strings.Replace(signed, AlgSM3, "http://www.w3.org/2000/09/xmldsig#sha1", 1)), nil)
	wantInvalid(t, err, "不支持的摘要算法")
	_, err = Verify([]byte(strings.Replace(signed, `<ds:CanonicalizationMethod Algorithm="`+AlgExcC14N, `<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315`, 1)), nil)
	wantInvalid(t, err, "不支持的 XML 规范化算法")
}

// reserialise writes doc again with the same prefixes and namespace
// declarations but another surface form: an XML declaration in single quotes,
// attributes reversed, single-quoted and spaced out, declarations after the
// attributes, empty elements as <a/>, CR LF line ends, non-ASCII text as
// character references, some text as CDATA, comments added.
func reserialise(t *testing.T, doc []byte) []byte {
	t.Helper()
	r, err := newReader(doc)
	if err != nil {
		t.Fatal(err)
	}
	var evs []*event
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\r\n<!-- reserialised -->\r\n")
	attrEsc := strings.NewReplacer("&", "&amp;", "<", "&lt;", "'", "&apos;", "\t", "&#9;", "\n", "&#10;", "\r", "&#13;")
	textEsc := func(s string) string {
		var o strings.Builder
		for _, r := range s {
			switch {
			case r == '&':
				o.WriteString("&amp;")
			case r == '<':
				o.WriteString("&lt;")
			case r == '>':
				o.WriteString("&gt;")
			case r == '\r':
				o.WriteString("&#xD;")
			case r == '\n':
				o.WriteString("\r\n")
			case r > 0x7f:
				fmt.Fprintf(&o, "&#x%X;", r)
			default:
				o.WriteRune(r)
			}
		}
		return o.String()
	}
	for i, ev := range evs {
		switch ev.kind {
		case evStart:
			b.WriteString("<" + ev.qname())
			for j := len(ev.attrs) - 1; j >= 0; j-- {
				a := ev.attrs[j]
				b.WriteString("\r\n\t " + qualified(a.prefix, a.local) + " = '" + attrEsc.Replace(a.value) + "'")
			}
			for _, d := range ev.decls {
				if d.prefix == "" {
					b.WriteString(" xmlns='" + attrEsc.Replace(d.uri) + "'")
				} else {
					b.WriteString(" xmlns:" + d.prefix + "='" + attrEsc.Replace(d.uri) + "'")
				}
			}
			if i+1 < len(evs) && evs[i+1].kind == evEnd {
				b.WriteString(" />")
			} else {
				b.WriteString(" >")
			}
		case evEnd:
			if evs[i-1].kind != evStart {
				b.WriteString("</" + ev.qname() + "  >")
			}
		case evText:
			if !strings.Contains(ev.text, "]]>") && strings.ContainsAny(ev.text, "&<") {
				b.WriteString("<![CDATA[" + strings.ReplaceAll(ev.text, "\n", "\r\n") + "]]>")
			} else {
				b.WriteString(textEsc(ev.text))
			}
			b.WriteString("<!-- c -->")
		case evPI:
			b.WriteString("<?" + ev.text + "    " + ev.data + "?>\r\n")
		}
	}
	return []byte(b.String())
}

func TestVerifyAfterReformatting(t *testing.T) {
	for _, s := range testSigners(t) {
		t.Run(s.name, func(t *testing.T) {
			signed := mustSign(t, cdaDoc, s, Options{})
			re := reserialise(t, signed)
			if bytes.Equal(re, signed) || !bytes.Contains(re, []byte("&#x5F20;")) || !bytes.Contains(re, []byte("\r\n\t ")) {
				t.Fatal("reserialisation did not change the surface form")
			}
			if _, err := Verify(re, nil); err != nil {
				t.Fatalf("reformatted document does not verify: %v\n%s", err, re)
			}
			// Re-serialising twice changes nothing more.
			if _, err := Verify(reserialise(t, re), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerifyRefusesDoctype(t *testing.T) {
	s := testSigners(t)[0]
	signed := string(mustSign(t, cdaDoc, s, Options{}))
	for _, decl := range []string{
		"<!DOCTYPE ClinicalDocument>\n",
		"<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n",
		"<!DOCTYPE ClinicalDocument SYSTEM \"http://example.invalid/cda.dtd\">\n",
	} {
		doc := strings.Replace(signed, "<ClinicalDocument ", decl+"<ClinicalDocument ", 1)
		_, err := Verify([]byte(doc), nil)
		wantInvalid(t, err, "DOCTYPE")
	}
}

func TestVerifyRefusesSignatureWrapping(t *testing.T) {
	s := testSigners(t)[0]
	signed := string(mustSign(t, cdaDoc, s, Options{}))
	i := strings.Index(signed, "<ds:Signature ")
	j := strings.Index(signed, "</ds:Signature>") + len("</ds:Signature>")
	sigXML := signed[i:j]
	unsigned := signed[:i] + signed[j:]

	cases := []struct{ name, doc, msg string }{
		{
			// A second element holding a copy of the Signature, next to forged
			// content.
			"copy-in-wrapper",
			strings.Replace(signed, "<title>病历概要</title>", "<title>伪造</title><extension>"+sigXML+"</extension>", 1),
			"ds:Signature", // refused at the first, misplaced copy
		},
		{
			"copy-as-second-child",
			strings.Replace(signed, "</ClinicalDocument>", sigXML+"</ClinicalDocument>", 1),
			"多个 ds:Signature",
		},
		{
			// The Signature moved into a nested element.
			"moved-deeper",
			strings.Replace(unsigned, "<title>病历概要</title>", "<title>病历概要</title><extension>"+sigXML+"</extension>", 1),
			"直接子元素",
		},
		{
			// The signed document wrapped in another root holding forged
			// content.
			"wrapped-document",
			"<Evil xmlns=\"urn:evil\"><Payload>伪造</Payload>" + signed[strings.Index(signed, "<ClinicalDocument"):] + "</Evil>",
			"直接子元素",
		},
		{
			"signature-as-root",
			sigXML,
			"直接子元素",
		},
		{
			"id-reference",
			strings.Replace(signed, `<ds:Reference URI="">`, `<ds:Reference URI="#RN001">`, 1),
			`URI=""`,
		},
		{
			"missing-uri",
			strings.Replace(signed, `<ds:Reference URI="">`, `<ds:Reference>`, 1),
			`URI=""`,
		},
		{
			"second-reference",
			strings.Replace(signed, `</ds:Reference>`, `</ds:Reference><ds:Reference URI=""></ds:Reference>`, 1),
			"只接受一个",
		},
		{
			"object-appended",
			strings.Replace(signed, `</ds:Signature>`, `<ds:Object><ClinicalDocument/></ds:Object></ds:Signature>`, 1),
			"不支持的元素",
		},
		{
			"no-enveloped-transform",
			strings.Replace(signed, `<ds:Transform Algorithm="`+AlgEnveloped+`"/>`, "", 1),
			"变换",
		},
		{
			"xpath-transform",
			strings.Replace(signed, `<ds:Transform Algorithm="`+AlgEnveloped+`"/>`, `<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>`, 1),
			"enveloped-signature",
		},
		{"unsigned", unsigned, "没有 XML 签名"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify([]byte(c.doc), nil)
			wantInvalid(t, err, c.msg)
		})
	}

	// The Signature transplanted into another document: the digest is wrong.
	other := strings.Replace(unsigned, "患者 张三", "患者 王五", 1)
	other = strings.Replace(other, "</ClinicalDocument>", sigXML+"</ClinicalDocument>", 1)
	_, err := Verify([]byte(other), nil)
	wantSignatureInvalid(t, err, "摘要不符")
}

func TestVerifyMalformedSignature(t *testing.T) {
	s := testSigners(t)[0]
	signed := string(mustSign(t, cdaDoc, s, Options{}))
	cases := []struct{ name, from, to, msg string }{
		{"bad-base64", "<ds:SignatureValue>\n", "<ds:SignatureValue>\n!!", "Base64"},
		{"short-sm2-value", "<ds:SignatureValue>\n", "<ds:SignatureValue>\nAAAA", "r‖s"},
		{"empty-value", sigValueRE.FindString(signed), "<ds:SignatureValue></ds:SignatureValue>", "为空"},
		{"text-in-signedinfo", "<ds:SignedInfo>", "<ds:SignedInfo>x", "文本内容"},
		{"digest-length", "<ds:DigestValue>", "<ds:DigestValue>AAAA", "32 字节"},
		{"no-algorithm", `<ds:SignatureMethod Algorithm="` + AlgSM2SM3 + `"/>`, `<ds:SignatureMethod/>`, "Algorithm"},
		{"hmac-length", `<ds:SignatureMethod Algorithm="` + AlgSM2SM3 + `"/>`, `<ds:SignatureMethod Algorithm="` + AlgSM2SM3 + `"><ds:HMACOutputLength>8</ds:HMACOutputLength></ds:SignatureMethod>`, "不支持的元素"},
		{"bad-certificate", "<ds:X509Certificate>\n", "<ds:X509Certificate>\nAAAA", "证书"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(signed, c.from, c.to, 1)
			if doc == signed {
				t.Fatalf("%q not found", c.from)
			}
			_, err := Verify([]byte(doc), nil)
			wantInvalid(t, err, c.msg)
		})
	}
}

// TestVerifyToleratesWhatCanonicalisationRemoves: comments, CR LF line ends,
// attribute order and quotes do not matter.
func TestVerifyToleratesWhatCanonicalisationRemoves(t *testing.T) {
	s := testSigners(t)[1]
	signed := string(mustSign(t, cdaDoc, s, Options{}))
	for name, doc := range map[string]string{
		"comment-added":  strings.Replace(signed, "<title>", "<!-- 审核通过 --><title>", 1),
		"crlf":           strings.ReplaceAll(signed, "\n", "\r\n"),
		"attribute-swap": strings.Replace(signed, `<id root="2.16.156.10011.1.1" extension="RN001"/>`, `<id extension='RN001'   root="2.16.156.10011.1.1"></id>`, 1),
		"no-declaration": strings.Replace(signed, `<?xml version="1.0" encoding="UTF-8"?>`+"\n", "", 1),
		"bom":            "\uFEFF" + signed,
	} {
		if _, err := Verify([]byte(doc), nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
