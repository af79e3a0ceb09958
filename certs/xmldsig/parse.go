package xmldsig

// The document reader: encoding/xml's RawToken does the lexing (names, UTF-8,
// the five predefined entities, CDATA, comments), and this file adds what
// RawToken leaves to its caller and what canonicalisation needs on top:
//
//   - well-formedness RawToken does not check: matching end tags, exactly one
//     root element, no text outside it, no duplicate attributes;
//   - XML Namespaces 1.0: prefixes resolved to URIs, undeclared prefixes and
//     illegal bindings (xmlns:p="", rebinding xml or xmlns) refused;
//   - attribute-value normalisation (XML 1.0 §3.3.3): a literal tab, CR or LF in
//     an attribute value is a space, while &#x9; &#xA; &#xD; stay what they say.
//     RawToken does not do this, so values are decoded again from the raw bytes
//     of the start tag (the decoder's InputOffset delimits each token);
//   - character references to surrogates or other non-characters refused
//     (RawToken turns &#xD800; into U+FFFD silently);
//   - security: no DOCTYPE or other <! declaration (so no entity expansion and no
//     external entities, XXE), a size bound and a nesting bound.
//
// It streams: one event per element start, element end, text node or
// processing instruction, so memory stays proportional to the nesting depth, not
// to the document.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"ihos"
)

const (
	// MaxDocumentSize bounds the documents Sign, Verify and Canonicalize accept.
	// A CDA document with embedded images stays well below it.
	MaxDocumentSize = 16 << 20
	// maxDepth bounds element nesting. libxml2 (xmlsec, most regional
	// platforms' verifiers) refuses more than 256 levels by default; real
	// clinical documents nest a few dozen.
	maxDepth = 1024

	nsXML   = "http://www.w3.org/XML/1998/namespace"
	nsXMLNS = "http://www.w3.org/2000/xmlns/"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

type evKind uint8

const (
	evStart evKind = iota + 1
	evEnd
	evText
	evPI
)

// attr is an attribute other than a namespace declaration.
type attr struct {
	prefix, local, ns, value string
}

// nsDecl is a namespace declaration on an element: prefix "" is the default
// namespace (xmlns="…"), uri "" undeclares it.
type nsDecl struct {
	prefix, uri string
}

// event is one node of the document in document order.
type event struct {
	kind evKind
	// Elements (evStart, evEnd): the qualified name and its namespace URI.
	prefix, local, ns string
	// evStart: attributes sorted by (namespace URI, local name) and namespace
	// declarations sorted by prefix, as canonical XML orders them.
	attrs []attr
	decls []nsDecl
	// evText: the character data (entities decoded, line ends normalised).
	// evPI: text is the target and data the content after the target.
	text, data string
	// depth is the number of elements enclosing the node: the root element's
	// start and end have depth 0, its children 1.
	depth int
	// start and end are the token's byte offsets in the caller's document.
	start, end int
	// selfClosing marks an evStart written as an empty-element tag (<a/>).
	selfClosing bool
}

func (e *event) qname() string {
	if e.prefix == "" {
		return e.local
	}
	return e.prefix + ":" + e.local
}

// attr returns the value of the unqualified attribute local.
func (e *event) attr(local string) (string, bool) {
	for _, a := range e.attrs {
		if a.ns == "" && a.local == local {
			return a.value, true
		}
	}
	return "", false
}

// nsStack holds namespace bindings per prefix, pushed and popped with elements.
type nsStack struct {
	m      map[string][]string
	frames [][]string // the prefixes bound by each open element
}

func newNSStack() *nsStack { return &nsStack{m: make(map[string][]string)} }

func (s *nsStack) push() { s.frames = append(s.frames, nil) }

func (s *nsStack) bind(prefix, uri string) {
	s.m[prefix] = append(s.m[prefix], uri)
	top := len(s.frames) - 1
	s.frames[top] = append(s.frames[top], prefix)
}

func (s *nsStack) pop() {
	top := len(s.frames) - 1
	for _, p := range s.frames[top] {
		v := s.m[p]
		if len(v) == 1 {
			delete(s.m, p)
		} else {
			s.m[p] = v[:len(v)-1]
		}
	}
	s.frames[top] = nil
	s.frames = s.frames[:top]
}

func (s *nsStack) lookup(prefix string) (string, bool) {
	v := s.m[prefix]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// snapshot returns the bindings in scope now.
func (s *nsStack) snapshot() map[string]string {
	out := make(map[string]string, len(s.m))
	for p, v := range s.m {
		out[p] = v[len(v)-1]
	}
	return out
}

type openElem struct {
	prefix, local string
}

// reader turns a document into events.
type reader struct {
	src      []byte // the document without a byte-order mark
	base     int    // length of the byte-order mark skipped
	dec      *xml.Decoder
	ns       *nsStack
	open     []openElem
	sawRoot  bool
	rootDone bool
}

// checkSize refuses empty and oversized input before any parsing.
func checkSize(doc []byte) error {
	if len(doc) > MaxDocumentSize {
		return ihos.Errorf(ihos.EInvalid, "XML 文档过大：%d 字节，最多 %d 字节（16 MB）", len(doc), MaxDocumentSize)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return ihos.Errorf(ihos.EInvalid, "XML 文档为空")
	}
	return nil
}

func newReader(doc []byte) (*reader, error) {
	if err := checkSize(doc); err != nil {
		return nil, err
	}
	base := 0
	if bytes.HasPrefix(doc, utf8BOM) {
		base = len(utf8BOM)
	}
	if bytes.HasPrefix(doc, []byte{0xFE, 0xFF}) || bytes.HasPrefix(doc, []byte{0xFF, 0xFE}) {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 文档是 UTF-16 编码，只支持 UTF-8 编码")
	}
	src := doc[base:]
	dec := xml.NewDecoder(bytes.NewReader(src))
	dec.Strict = true
	return &reader{src: src, base: base, dec: dec, ns: newNSStack()}, nil
}

func errXML(cause error, format string, args ...any) error {
	e := ihos.Errorf(ihos.EInvalid, format, args...)
	e.Err = cause
	return e
}

// next returns the next event, or io.EOF after a complete document.
func (r *reader) next() (*event, error) {
	for {
		off := int(r.dec.InputOffset())
		tok, err := r.dec.RawToken()
		if err == io.EOF {
			if !r.sawRoot {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 文档没有根元素")
			}
			if len(r.open) > 0 {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 文档不完整：元素 <%s> 没有结束标签", r.open[len(r.open)-1].qname())
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, r.syntaxError(err)
		}
		end := int(r.dec.InputOffset())
		if off < 0 || end < off || end > len(r.src) {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: decoder offsets %d..%d outside %d bytes", off, end, len(r.src)))
		}
		raw := r.src[off:end]
		switch t := tok.(type) {
		case xml.StartElement:
			return r.startElement(t, raw, off, end)
		case xml.EndElement:
			return r.endElement(t, off, end)
		case xml.CharData:
			if len(r.open) == 0 {
				if len(bytes.Trim(raw, " \t\r\n")) != 0 {
					return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：根元素之外有文本内容")
				}
				continue
			}
			if !bytes.HasPrefix(raw, []byte("<![CDATA[")) {
				if err := checkCharRefs(raw); err != nil {
					return nil, err
				}
			}
			return &event{kind: evText, text: string(t), depth: len(r.open), start: off + r.base, end: end + r.base}, nil
		case xml.Comment:
			continue
		case xml.ProcInst:
			if strings.EqualFold(t.Target, "xml") {
				if off != 0 || t.Target != "xml" {
					return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：XML 声明（<?xml ...?>）只能出现在文档开头")
				}
				continue
			}
			data, err := piData(t.Inst)
			if err != nil {
				return nil, err
			}
			return &event{kind: evPI, text: t.Target, data: data, depth: len(r.open), start: off + r.base, end: end + r.base}, nil
		case xml.Directive:
			return nil, ihos.Errorf(ihos.EInvalid, "XML 文档包含 DOCTYPE 或实体声明（<!%s），出于安全原因（防止 XXE 外部实体攻击）不予处理", directiveName(t))
		default:
			return nil, ihos.Internal(fmt.Errorf("xmldsig: unexpected token %T", tok))
		}
	}
}

func (o openElem) qname() string {
	if o.prefix == "" {
		return o.local
	}
	return o.prefix + ":" + o.local
}

func directiveName(d xml.Directive) string {
	s := string(d)
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	if len(s) > 20 {
		s = s[:20]
	}
	if !utf8.ValidString(s) {
		return "…"
	}
	return s
}

func (r *reader) syntaxError(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return errXML(err, "XML 格式错误（第 %d 行），无法解析", se.Line)
	}
	if strings.Contains(err.Error(), "encoding") {
		return errXML(err, "XML 文档声明了非 UTF-8 编码，只支持 UTF-8 编码")
	}
	return errXML(err, "XML 格式错误，无法解析")
}

func (r *reader) startElement(t xml.StartElement, raw []byte, off, end int) (*event, error) {
	if r.rootDone {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：文档有多个根元素")
	}
	if len(r.open) >= maxDepth {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 元素嵌套过深：超过 %d 层", maxDepth)
	}
	r.sawRoot = true
	ev := &event{kind: evStart, prefix: t.Name.Space, local: t.Name.Local, depth: len(r.open), start: off + r.base, end: end + r.base}
	ev.selfClosing = bytes.HasSuffix(raw, []byte("/>"))
	if err := checkName(ev.prefix, ev.local); err != nil {
		return nil, err
	}
	if ev.prefix == "xmlns" {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：元素名不能使用 xmlns 前缀（<%s>）", ev.qname())
	}

	raws, err := parseRawAttrs(raw)
	if err != nil {
		return nil, err
	}
	if len(raws) != len(t.Attr) {
		return nil, ihos.Internal(fmt.Errorf("xmldsig: %d raw attributes, decoder found %d in <%s>", len(raws), len(t.Attr), ev.qname()))
	}
	r.ns.push()
	r.open = append(r.open, openElem{ev.prefix, ev.local})
	var plain []attr
	for i, ra := range raws {
		a := t.Attr[i]
		if qn := qualified(a.Name.Space, a.Name.Local); qn != ra.qname {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: attribute %q read as %q", ra.qname, qn))
		}
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if ra.value == nsXML || ra.value == nsXMLNS {
				return nil, ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：默认命名空间不能是 %s", ra.value)
			}
			ev.decls = append(ev.decls, nsDecl{"", ra.value})
		case a.Name.Space == "xmlns":
			p := a.Name.Local
			if err := checkDecl(p, ra.value); err != nil {
				return nil, err
			}
			if p == "xml" {
				continue // binds xml to its only legal value: nothing to record
			}
			ev.decls = append(ev.decls, nsDecl{p, ra.value})
		default:
			if err := checkName(a.Name.Space, a.Name.Local); err != nil {
				return nil, err
			}
			plain = append(plain, attr{prefix: a.Name.Space, local: a.Name.Local, value: ra.value})
		}
	}
	sort.Slice(ev.decls, func(i, j int) bool { return ev.decls[i].prefix < ev.decls[j].prefix })
	for i := 1; i < len(ev.decls); i++ {
		if ev.decls[i].prefix == ev.decls[i-1].prefix {
			return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：元素 <%s> 重复声明了命名空间前缀 %q", ev.qname(), ev.decls[i].prefix)
		}
	}
	for _, d := range ev.decls {
		r.ns.bind(d.prefix, d.uri)
	}

	ns, err := r.resolve(ev.prefix, true)
	if err != nil {
		return nil, err
	}
	ev.ns = ns
	for i := range plain {
		if plain[i].ns, err = r.resolve(plain[i].prefix, false); err != nil {
			return nil, err
		}
	}
	ev.attrs = plain
	sort.Slice(ev.attrs, func(i, j int) bool {
		a, b := ev.attrs[i], ev.attrs[j]
		if a.ns != b.ns {
			return a.ns < b.ns
		}
		return a.local < b.local
	})
	for i := 1; i < len(ev.attrs); i++ {
		if ev.attrs[i].ns == ev.attrs[i-1].ns && ev.attrs[i].local == ev.attrs[i-1].local {
			return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：元素 <%s> 有重复的属性 %s", ev.qname(), ev.attrs[i].local)
		}
	}
	return ev, nil
}

func (r *reader) endElement(t xml.EndElement, off, end int) (*event, error) {
	if len(r.open) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：多余的结束标签 </%s>", qualified(t.Name.Space, t.Name.Local))
	}
	top := r.open[len(r.open)-1]
	if top.prefix != t.Name.Space || top.local != t.Name.Local {
		return nil, ihos.Errorf(ihos.EInvalid, "XML 格式错误：开始标签 <%s> 与结束标签 </%s> 不匹配", top.qname(), qualified(t.Name.Space, t.Name.Local))
	}
	ns, err := r.resolve(top.prefix, true)
	if err != nil {
		return nil, err
	}
	r.open = r.open[:len(r.open)-1]
	r.ns.pop()
	if len(r.open) == 0 {
		r.rootDone = true
	}
	return &event{kind: evEnd, prefix: top.prefix, local: top.local, ns: ns, depth: len(r.open), start: off + r.base, end: end + r.base}, nil
}

// resolve maps a prefix to its namespace URI. Unprefixed elements take the
// default namespace; unprefixed attributes are in no namespace.
func (r *reader) resolve(prefix string, element bool) (string, error) {
	switch prefix {
	case "":
		if !element {
			return "", nil
		}
		uri, _ := r.ns.lookup("")
		return uri, nil
	case "xml":
		return nsXML, nil
	}
	uri, ok := r.ns.lookup(prefix)
	if !ok {
		return "", ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：前缀 %q 未声明", prefix)
	}
	return uri, nil
}

func qualified(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// checkName refuses names RawToken passes through that are not QNames.
func checkName(prefix, local string) error {
	if local == "" || strings.Contains(local, ":") {
		return ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：名称 %q 不是合法的限定名", qualified(prefix, local))
	}
	return nil
}

// checkDecl applies the Namespaces in XML 1.0 constraints on xmlns:prefix="uri".
func checkDecl(prefix, uri string) error {
	switch {
	case prefix == "xmlns":
		return ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：不能声明 xmlns 前缀")
	case prefix == "xml" && uri != nsXML:
		return ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：xml 前缀只能绑定到 %s", nsXML)
	case prefix != "xml" && (uri == nsXML || uri == nsXMLNS):
		return ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：前缀 %q 不能绑定到保留的命名空间 %s", prefix, uri)
	case uri == "":
		return ihos.Errorf(ihos.EInvalid, "XML 命名空间错误：前缀 %q 不能绑定到空的命名空间（XML 1.0 不允许取消前缀声明）", prefix)
	}
	return nil
}

// piData normalises line ends in a processing instruction's content (RawToken
// returns it raw) and checks that it is text.
func piData(inst []byte) (string, error) {
	if !utf8.Valid(inst) {
		return "", ihos.Errorf(ihos.EInvalid, "XML 格式错误：处理指令含有非 UTF-8 字节")
	}
	for _, r := range string(inst) {
		if !isXMLChar(r) {
			return "", ihos.Errorf(ihos.EInvalid, "XML 格式错误：处理指令含有非法字符 %U", r)
		}
	}
	return normaliseNewlines(string(inst)), nil
}

func normaliseNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

type rawAttr struct {
	qname, value string
}

// parseRawAttrs reads the attributes of a start tag that encoding/xml has
// already accepted, decoding each value with XML 1.0 attribute-value
// normalisation for CDATA attributes (no DTD, so every attribute is CDATA).
func parseRawAttrs(tag []byte) ([]rawAttr, error) {
	if len(tag) < 2 || tag[0] != '<' {
		return nil, ihos.Internal(fmt.Errorf("xmldsig: start tag %q", truncate(tag)))
	}
	i := 1
	for i < len(tag) && !isSpace(tag[i]) && tag[i] != '/' && tag[i] != '>' {
		i++
	}
	var out []rawAttr
	for {
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i >= len(tag) {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: unterminated start tag %q", truncate(tag)))
		}
		if tag[i] == '/' || tag[i] == '>' {
			return out, nil
		}
		n := i
		for i < len(tag) && !isSpace(tag[i]) && tag[i] != '=' {
			i++
		}
		name := string(tag[n:i])
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || tag[i] != '=' {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: attribute %q without value", name))
		}
		i++
		for i < len(tag) && isSpace(tag[i]) {
			i++
		}
		if i >= len(tag) || tag[i] != '"' && tag[i] != '\'' {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: attribute %q not quoted", name))
		}
		q := tag[i]
		i++
		v := i
		for i < len(tag) && tag[i] != q {
			i++
		}
		if i >= len(tag) {
			return nil, ihos.Internal(fmt.Errorf("xmldsig: attribute %q unterminated", name))
		}
		val, err := decodeAttrValue(tag[v:i])
		if err != nil {
			return nil, err
		}
		i++
		out = append(out, rawAttr{qname: name, value: val})
	}
}

// decodeAttrValue expands references and normalises white space in a raw
// attribute value: CR LF, CR, LF and tab become one space each.
func decodeAttrValue(raw []byte) (string, error) {
	if bytes.IndexAny(raw, "&\t\r\n") < 0 {
		return string(raw), nil
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			b.WriteByte(' ')
		case '\n', '\t':
			b.WriteByte(' ')
		case '&':
			s, n, err := decodeRef(raw[i:])
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i += n - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// decodeRef decodes the entity or character reference at the start of raw
// and returns its text and length.
func decodeRef(raw []byte) (string, int, error) {
	semi := bytes.IndexByte(raw, ';')
	if semi < 0 || semi > 16 {
		return "", 0, ihos.Errorf(ihos.EInvalid, "XML 格式错误：无效的实体引用 %q", truncate(raw))
	}
	name := string(raw[1:semi])
	switch name {
	case "lt":
		return "<", semi + 1, nil
	case "gt":
		return ">", semi + 1, nil
	case "amp":
		return "&", semi + 1, nil
	case "apos":
		return "'", semi + 1, nil
	case "quot":
		return "\"", semi + 1, nil
	}
	r, ok := charRef(name)
	if !ok {
		return "", 0, ihos.Errorf(ihos.EInvalid, "XML 格式错误：无效的字符引用 &%s;", name)
	}
	return string(r), semi + 1, nil
}

// charRef parses "#123" or "#x1F" into a character allowed in XML 1.0.
func charRef(name string) (rune, bool) {
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	digits, base := name[1:], 10
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if digits == "" {
		return 0, false
	}
	var v rune
	for i := 0; i < len(digits); i++ {
		var d rune
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		v = v*rune(base) + d
		if v > 0x10FFFF {
			return 0, false
		}
	}
	return v, isXMLChar(v)
}

// checkCharRefs refuses character references in raw character data that
// RawToken accepts but XML does not (surrogates, U+FFFE, U+0000…).
func checkCharRefs(raw []byte) error {
	for {
		i := bytes.Index(raw, []byte("&#"))
		if i < 0 {
			return nil
		}
		raw = raw[i:]
		semi := bytes.IndexByte(raw, ';')
		if semi < 0 || semi > 16 {
			return ihos.Errorf(ihos.EInvalid, "XML 格式错误：无效的字符引用 %q", truncate(raw))
		}
		if _, ok := charRef(string(raw[1:semi])); !ok {
			return ihos.Errorf(ihos.EInvalid, "XML 格式错误：无效的字符引用 %s", raw[:semi+1])
		}
		raw = raw[semi+1:]
	}
}

func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return strings.ToValidUTF8(string(b), "?")
}
