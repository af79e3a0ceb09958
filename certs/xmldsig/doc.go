// Package xmldsig signs and verifies XML documents (HL7 CDA, WS/T 500 电子病历
// 共享文档, documents exchanged with regional platforms) with enveloped W3C XML
// Signatures 1.0:
//
//	signed, err := xmldsig.Sign(doc, cert, key, xmldsig.Options{})
//	signer, err := xmldsig.Verify(signed, nil) // or Verify(signed, trustedCert)
//
// Sign appends one ds:Signature as the last child of the root element. Its
// SignedInfo is canonicalised with Exclusive XML Canonicalization 1.0 and holds
// one Reference URI="" (the whole document) with the enveloped-signature and
// exc-c14n transforms. The algorithms follow the key:
//
//	key    SignatureMethod                                        DigestMethod
//	SM2    http://www.w3.org/2007/05/xmldsig-more#sm2-sm3          http://www.w3.org/2007/05/xmldsig-more#sm3
//	RSA    http://www.w3.org/2001/04/xmldsig-more#rsa-sha256       http://www.w3.org/2001/04/xmlenc#sha256
//	ECDSA  http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256     http://www.w3.org/2001/04/xmlenc#sha256
//
// The RSA and ECDSA URIs are the registered ones (RFC 9231, which obsoletes RFC
// 6931). No SM2 or SM3 URI is registered (RFC 6931, RFC 9231 and the IANA "XML
// Security URIs" registry have none), so the SM2/SM3 URIs are unregistered
// names in RFC 6931's 2007/05/xmldsig-more# namespace; see AlgSM2SM3. SM2
// signatures are SM3withSM2 with Z over the default user id 1234567812345678
// (certs.SignData). ECDSA and SM2 signature values are r‖s (for SM2 64 bytes),
// not DER, as XML-DSig defines for ECDSA.
//
// Verify accepts one shape only, against signature wrapping: exactly one
// ds:Signature in the whole document, a direct child of the root, with exactly
// one Reference URI="". It returns the signer certificate; chain, validity and
// revocation checks are the caller's (certs/svs, certs/ca).
//
// # Canonicalisation
//
// Canonicalize implements Exclusive XML Canonicalization 1.0 without comments
// over encoding/xml tokens (see c14n.go): sorted attributes, visibly utilised
// namespace declarations only (and InclusiveNamespaces PrefixLists when a
// signature names them), default namespace and xmlns="" handling, the
// specification's text and attribute escaping, start/end tag pairs for empty
// elements, CDATA as text, line ends and attribute white space normalised,
// comments dropped. Processing instructions are kept as the specification
// requires, inside and outside the root element: CDA documents usually start
// with <?xml-stylesheet ...?>, and other verifiers include it in the digest.
//
// As with any exclusive canonicalisation, a namespace prefix used only inside
// an attribute value or text (a QName such as xsi:type="p:PQ") is not
// visibly utilised, so its declaration is not covered by the digest; CDA
// documents use unprefixed xsi:type values, which resolve through the default
// namespace that is covered.
//
// Limits, each refused with a Chinese message rather than handled:
// documents over 16 MB; DOCTYPE and any <!…> declaration (so no entities
// beyond the five predefined, no XXE); encodings other than UTF-8 (a UTF-8 BOM
// is allowed); nesting deeper than 1024; namespace errors (undeclared prefixes,
// xmlns:p="", duplicate attributes). Only whole-document, same-document
// references are supported: no XPath or XPointer transforms, no ID-based
// references, no detached or enveloping signatures, no inclusive C14N.
package xmldsig
