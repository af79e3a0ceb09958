package xmldsig

// Reading a ds:Signature element strictly: only the structure Sign writes (and
// xmlsec, Apache Santuario or .NET write for the same profile) is accepted;
// anything else is refused with a message saying what was found.

import (
	"encoding/base64"
	"strings"

	"ihos"
)

// signature is what Verify needs from a ds:Signature.
type signature struct {
	c14nIncl        []string // SignedInfo InclusiveNamespaces
	signatureMethod string
	digestMethod    string
	refIncl         []string // the Reference's exc-c14n InclusiveNamespaces
	digest          []byte
	value           []byte
	certs           [][]byte // DER, from KeyInfo/X509Data
	signedInfo      []*event // the SignedInfo subtree, for canonicalisation
}

// node is an element of the captured Signature subtree.
type node struct {
	ev          *event
	children    []*node
	text        strings.Builder // the element's own character data
	first, last int             // its events in the captured list
}

func buildTree(evs []*event) *node {
	var root *node
	var stack []*node
	for i, ev := range evs {
		switch ev.kind {
		case evStart:
			n := &node{ev: ev, first: i}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case evEnd:
			stack[len(stack)-1].last = i
			stack = stack[:len(stack)-1]
		case evText:
			stack[len(stack)-1].text.WriteString(ev.text)
		}
	}
	return root
}

func (n *node) name() string { return n.ev.qname() }

func (n *node) is(ns, local string) bool { return n.ev.ns == ns && n.ev.local == local }

// onlyElements refuses text other than white space between child elements.
func (n *node) onlyElements() error {
	if strings.Trim(n.text.String(), " \t\r\n") != "" {
		return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：<%s> 中不应有文本内容", n.name())
	}
	return nil
}

// algorithm returns the Algorithm attribute.
func (n *node) algorithm() (string, error) {
	v, ok := n.ev.attr("Algorithm")
	if !ok {
		return "", ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：<%s> 缺少 Algorithm 属性", n.name())
	}
	return v, nil
}

// base64Content decodes the element's text as base64, ignoring white space.
func (n *node) base64Content() ([]byte, error) {
	if len(n.children) > 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：<%s> 不应有子元素", n.name())
	}
	s := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, n.text.String())
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errInvalid(err, "XML 签名格式错误：<%s> 不是有效的 Base64 编码", n.name())
	}
	return b, nil
}

func unexpected(parent, child *node) error {
	return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：<%s> 中有不支持的元素 <%s>", parent.name(), child.name())
}

func missing(parent *node, what string) error {
	return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：<%s> 缺少 %s", parent.name(), what)
}

// parseSignature reads the captured events of one ds:Signature element.
func parseSignature(evs []*event) (*signature, error) {
	root := buildTree(evs)
	if err := root.onlyElements(); err != nil {
		return nil, err
	}
	sig := &signature{}
	kids := root.children
	if len(kids) == 0 || !kids[0].is(NamespaceDSig, "SignedInfo") {
		return nil, missing(root, "ds:SignedInfo")
	}
	if err := sig.readSignedInfo(kids[0]); err != nil {
		return nil, err
	}
	sig.signedInfo = evs[kids[0].first : kids[0].last+1]
	if len(kids) < 2 || !kids[1].is(NamespaceDSig, "SignatureValue") {
		return nil, missing(root, "ds:SignatureValue")
	}
	v, err := kids[1].base64Content()
	if err != nil {
		return nil, err
	}
	if len(v) == 0 {
		return nil, errInvalid(nil, "XML 签名格式错误：签名值（ds:SignatureValue）为空")
	}
	sig.value = v
	rest := kids[2:]
	if len(rest) > 0 && rest[0].is(NamespaceDSig, "KeyInfo") {
		if err := sig.readKeyInfo(rest[0]); err != nil {
			return nil, err
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return nil, unexpected(root, rest[0])
	}
	return sig, nil
}

func (sig *signature) readSignedInfo(si *node) error {
	if err := si.onlyElements(); err != nil {
		return err
	}
	kids := si.children
	if len(kids) == 0 || !kids[0].is(NamespaceDSig, "CanonicalizationMethod") {
		return missing(si, "ds:CanonicalizationMethod")
	}
	incl, err := readExcC14N(kids[0])
	if err != nil {
		return err
	}
	sig.c14nIncl = incl
	if len(kids) < 2 || !kids[1].is(NamespaceDSig, "SignatureMethod") {
		return missing(si, "ds:SignatureMethod")
	}
	sm := kids[1]
	if sig.signatureMethod, err = sm.algorithm(); err != nil {
		return err
	}
	switch sig.signatureMethod {
	case AlgSM2SM3, AlgRSASHA256, AlgECDSASHA256:
	default:
		return ihos.Errorf(ihos.EInvalid, "不支持的 XML 签名算法 %s（支持 SM2-SM3、RSA-SHA256、ECDSA-SHA256）", clip(sig.signatureMethod))
	}
	if err := sm.onlyElements(); err != nil {
		return err
	}
	if len(sm.children) > 0 {
		return unexpected(sm, sm.children[0])
	}
	refs := kids[2:]
	if len(refs) == 0 {
		return missing(si, "ds:Reference")
	}
	for _, k := range refs {
		if !k.is(NamespaceDSig, "Reference") {
			return unexpected(si, k)
		}
	}
	if len(refs) > 1 {
		return ihos.Errorf(ihos.EInvalid, "XML 签名验证失败：签名有 %d 个 ds:Reference，只接受一个引用整个文档（URI=\"\"）的引用", len(refs))
	}
	return sig.readReference(refs[0])
}

// readExcC14N checks an exc-c14n CanonicalizationMethod or Transform and
// returns its InclusiveNamespaces PrefixList.
func readExcC14N(n *node) ([]string, error) {
	alg, err := n.algorithm()
	if err != nil {
		return nil, err
	}
	if alg != AlgExcC14N {
		return nil, ihos.Errorf(ihos.EInvalid, "不支持的 XML 规范化算法 %s（只支持 Exclusive XML Canonicalization 1.0：%s）", clip(alg), AlgExcC14N)
	}
	if err := n.onlyElements(); err != nil {
		return nil, err
	}
	switch len(n.children) {
	case 0:
		return nil, nil
	case 1:
		in := n.children[0]
		if !in.is(NamespaceExcC14N, "InclusiveNamespaces") {
			return nil, unexpected(n, in)
		}
		if len(in.children) > 0 {
			return nil, unexpected(in, in.children[0])
		}
		pl, _ := in.ev.attr("PrefixList")
		list := parsePrefixList(pl)
		if len(list) > maxPrefixList {
			return nil, ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：InclusiveNamespaces 的前缀过多（%d 个，最多 %d 个）", len(list), maxPrefixList)
		}
		return list, nil
	}
	return nil, unexpected(n, n.children[1])
}

func (sig *signature) readReference(ref *node) error {
	uri, ok := ref.ev.attr("URI")
	if !ok || uri != "" {
		shown := "缺少 URI 属性"
		if ok {
			shown = "URI=\"" + clip(uri) + "\""
		}
		return ihos.Errorf(ihos.EInvalid, "XML 签名验证失败：ds:Reference 必须是 URI=\"\"（引用整个文档），实际为 %s", shown)
	}
	if err := ref.onlyElements(); err != nil {
		return err
	}
	kids := ref.children
	if len(kids) == 0 || !kids[0].is(NamespaceDSig, "Transforms") {
		return missing(ref, "ds:Transforms（应为 enveloped-signature 与 exc-c14n 两个变换）")
	}
	tr := kids[0]
	if err := tr.onlyElements(); err != nil {
		return err
	}
	for _, t := range tr.children {
		if !t.is(NamespaceDSig, "Transform") {
			return unexpected(tr, t)
		}
	}
	if len(tr.children) != 2 {
		return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：ds:Transforms 应依次为 enveloped-signature 与 exc-c14n 两个变换，实际有 %d 个", len(tr.children))
	}
	env := tr.children[0]
	alg, err := env.algorithm()
	if err != nil {
		return err
	}
	if alg != AlgEnveloped {
		return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：第一个变换应为 enveloped-signature（%s），实际为 %s", AlgEnveloped, clip(alg))
	}
	if err := env.onlyElements(); err != nil {
		return err
	}
	if len(env.children) > 0 {
		return unexpected(env, env.children[0])
	}
	if sig.refIncl, err = readExcC14N(tr.children[1]); err != nil {
		return err
	}

	if len(kids) < 2 || !kids[1].is(NamespaceDSig, "DigestMethod") {
		return missing(ref, "ds:DigestMethod")
	}
	dm := kids[1]
	if sig.digestMethod, err = dm.algorithm(); err != nil {
		return err
	}
	if _, err := newDigest(sig.digestMethod); err != nil {
		return err
	}
	if err := dm.onlyElements(); err != nil {
		return err
	}
	if len(dm.children) > 0 {
		return unexpected(dm, dm.children[0])
	}
	if len(kids) < 3 || !kids[2].is(NamespaceDSig, "DigestValue") {
		return missing(ref, "ds:DigestValue")
	}
	if sig.digest, err = kids[2].base64Content(); err != nil {
		return err
	}
	if len(sig.digest) != 32 {
		return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：摘要值应为 32 字节，实际为 %d 字节", len(sig.digest))
	}
	if len(kids) > 3 {
		return unexpected(ref, kids[3])
	}
	return nil
}

// readKeyInfo collects the X509Certificate elements; other key information
// (KeyName, X509IssuerSerial, …) is ignored.
func (sig *signature) readKeyInfo(ki *node) error {
	for _, k := range ki.children {
		if !k.is(NamespaceDSig, "X509Data") {
			continue
		}
		for _, x := range k.children {
			if !x.is(NamespaceDSig, "X509Certificate") {
				continue
			}
			der, err := x.base64Content()
			if err != nil {
				return err
			}
			if len(sig.certs) == maxKeyInfoCerts {
				return ihos.Errorf(ihos.EInvalid, "XML 签名格式错误：ds:KeyInfo 中证书过多（最多 %d 个）", maxKeyInfoCerts)
			}
			sig.certs = append(sig.certs, der)
		}
	}
	return nil
}
