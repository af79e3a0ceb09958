package xmldsig

// Exclusive XML Canonicalization 1.0 without comments
// (http://www.w3.org/2001/10/xml-exc-c14n#), written over the reader's events.
//
// What the writer produces, per the W3C recommendations (C14N 1.0 §2.3 and
// exc-c14n §3):
//
//   - UTF-8, no XML declaration, no DOCTYPE, line ends already normalised to LF
//     by the reader;
//   - elements as start and end tag pairs, also when empty (<a></a>);
//   - namespace declarations first, sorted by prefix (the default namespace
//     first), then attributes sorted by namespace URI and local name (attributes
//     without a namespace first);
//   - only visibly utilised namespace declarations: an element gets xmlns:p when
//     it or one of its attributes uses p and its nearest output ancestor did not
//     already render p with the same URI; xmlns="" only when the element is in
//     no namespace and an output ancestor rendered a non-empty default;
//     prefixes in an InclusiveNamespaces PrefixList are rendered like inclusive
//     C14N does, whether used or not;
//   - text with & < > and CR escaped (&amp; &lt; &gt; &#xD;), attribute values
//     with & < " TAB LF CR escaped (&amp; &lt; &quot; &#x9; &#xA; &#xD;), CDATA
//     sections as escaped text, references expanded;
//   - comments dropped; processing instructions kept as <?target data?>, those
//     outside the root element separated from it by one LF;
//   - white space outside the root element dropped, white space inside kept.

import (
	"bufio"
	"bytes"
	"io"
	"sort"
	"strings"
)

// canonWriter writes the canonical form of a stream of events. Node-set
// selection (leaving out the Signature, or keeping only SignedInfo) is done by
// the caller, which simply does not pass the events left out.
type canonWriter struct {
	w *bufio.Writer
	// incl are the InclusiveNamespaces prefixes ("" is #default), sorted.
	incl []string
	// scope holds the namespaces in scope (only needed for incl).
	scope *nsStack
	// rendered holds the namespace declarations output so far, per output
	// ancestor.
	rendered *nsStack
	depth    int
	rootDone bool
	decls    []nsDecl // scratch
}

// newCanonWriter returns a writer to w. scope, when not nil, is the namespace
// context of the first element written (the bindings of its ancestors), for
// InclusiveNamespaces prefixes.
func newCanonWriter(w io.Writer, incl []string, scope map[string]string) *canonWriter {
	c := &canonWriter{w: bufio.NewWriterSize(w, 32<<10), incl: incl, rendered: newNSStack()}
	if len(incl) > 0 {
		c.scope = newNSStack()
		c.scope.push()
		for p, uri := range scope {
			c.scope.bind(p, uri)
		}
	}
	return c
}

func (c *canonWriter) flush() error { return c.w.Flush() }

func (c *canonWriter) write(ev *event) {
	switch ev.kind {
	case evStart:
		c.start(ev)
	case evEnd:
		c.end(ev)
	case evText:
		if c.depth > 0 {
			escapeText(c.w, ev.text)
		}
	case evPI:
		c.pi(ev)
	}
}

func (c *canonWriter) start(ev *event) {
	c.rendered.push()
	if c.scope != nil {
		c.scope.push()
		for _, d := range ev.decls {
			c.scope.bind(d.prefix, d.uri)
		}
	}
	// Candidates: the element's own prefix, its attributes' prefixes, and the
	// inclusive prefixes in scope.
	c.decls = c.decls[:0]
	c.decls = append(c.decls, nsDecl{ev.prefix, ev.ns})
	for _, a := range ev.attrs {
		if a.prefix != "" {
			c.decls = append(c.decls, nsDecl{a.prefix, a.ns})
		}
	}
	for _, p := range c.incl {
		if uri, ok := c.scope.lookup(p); ok || p == "" {
			c.decls = append(c.decls, nsDecl{p, uri})
		}
	}
	sort.SliceStable(c.decls, func(i, j int) bool { return c.decls[i].prefix < c.decls[j].prefix })
	out := c.decls[:0]
	for i, d := range c.decls {
		if i > 0 && d.prefix == c.decls[i-1].prefix {
			continue // same prefix, same URI: resolved in one scope
		}
		if d.prefix == "xml" {
			continue // bound by definition, never declared
		}
		cur, ok := c.rendered.lookup(d.prefix)
		if !ok && d.prefix == "" {
			cur, ok = "", true // no default namespace is the initial state
		}
		if ok && cur == d.uri {
			continue
		}
		out = append(out, d)
	}
	c.w.WriteByte('<')
	c.w.WriteString(ev.qname())
	for _, d := range out {
		c.rendered.bind(d.prefix, d.uri)
		if d.prefix == "" {
			c.w.WriteString(` xmlns="`)
		} else {
			c.w.WriteString(" xmlns:")
			c.w.WriteString(d.prefix)
			c.w.WriteString(`="`)
		}
		escapeAttr(c.w, d.uri)
		c.w.WriteByte('"')
	}
	for _, a := range ev.attrs {
		c.w.WriteByte(' ')
		if a.prefix != "" {
			c.w.WriteString(a.prefix)
			c.w.WriteByte(':')
		}
		c.w.WriteString(a.local)
		c.w.WriteString(`="`)
		escapeAttr(c.w, a.value)
		c.w.WriteByte('"')
	}
	c.w.WriteByte('>')
	c.depth++
}

func (c *canonWriter) end(ev *event) {
	c.w.WriteString("</")
	c.w.WriteString(ev.qname())
	c.w.WriteByte('>')
	c.rendered.pop()
	if c.scope != nil {
		c.scope.pop()
	}
	c.depth--
	if c.depth == 0 {
		c.rootDone = true
	}
}

func (c *canonWriter) pi(ev *event) {
	if c.depth == 0 && c.rootDone {
		c.w.WriteByte('\n')
	}
	c.w.WriteString("<?")
	c.w.WriteString(ev.text)
	if ev.data != "" {
		c.w.WriteByte(' ')
		c.w.WriteString(ev.data)
	}
	c.w.WriteString("?>")
	if c.depth == 0 && !c.rootDone {
		c.w.WriteByte('\n')
	}
}

func escapeText(w *bufio.Writer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(esc)
		last = i + 1
	}
	w.WriteString(s[last:])
}

func escapeAttr(w *bufio.Writer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		w.WriteString(s[last:i])
		w.WriteString(esc)
		last = i + 1
	}
	w.WriteString(s[last:])
}

// Canonicalize returns the Exclusive XML Canonicalization 1.0 (without
// comments) of the whole document doc, as the transform
// http://www.w3.org/2001/10/xml-exc-c14n# computes it for a same-document
// reference URI="". Comments are dropped, processing instructions kept. It
// refuses documents over MaxDocumentSize, with a DOCTYPE or entity
// declarations, in another encoding than UTF-8, or not namespace-well-formed.
func Canonicalize(doc []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(doc))
	if err := canonicalizeTo(&buf, doc, nil, -1); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// canonicalizeTo writes the canonical form of doc to w, with the given
// InclusiveNamespaces prefixes, leaving out the element (and its subtree)
// whose start tag begins at the byte offset skip (-1: none).
func canonicalizeTo(w io.Writer, doc []byte, incl []string, skip int) error {
	r, err := newReader(doc)
	if err != nil {
		return err
	}
	c := newCanonWriter(w, incl, nil)
	skipDepth := -1
	for {
		ev, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if skipDepth >= 0 {
			if ev.kind == evEnd && ev.depth == skipDepth {
				skipDepth = -1
			}
			continue
		}
		if ev.kind == evStart && ev.start == skip {
			skipDepth = ev.depth // until its end event (also sent for <a/>)
			continue
		}
		c.write(ev)
	}
	return c.flush()
}

// parsePrefixList splits an InclusiveNamespaces PrefixList; "#default" is the
// default namespace, returned as "".
func parsePrefixList(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if f == "#default" {
			f = ""
		}
		out = append(out, f)
	}
	sort.Strings(out)
	return compactStrings(out)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
