package tickets

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"ihos"
	"ihos/internal/pii"
)

// MaxSource is the largest template source accepted, in bytes.
const MaxSource = 16 << 10

// maxOutput bounds what one template execution may write: far more than any
// ticket, small enough that a runaway template costs nothing.
const maxOutput = 64 << 10

// dirMark replaces the '@' of directives written at the start of a
// template line (see markDirectives). Data is cleaned of control characters
// before execution (see clean), so only the template itself can start a
// directive: a patient named "@cut" prints as "@cut".
const dirMark = '\x01'

// colBreak is the column break {{tab}} prints (a tab typed in the template
// does the same; tabs in data become spaces).
const colBreak = '\t'

var funcs = template.FuncMap{
	"yuan":     ihos.FormatYuan,
	"date":     func(t time.Time) string { return formatTime(t, "2006-01-02") },
	"time":     func(t time.Time) string { return formatTime(t, "15:04") },
	"datetime": func(t time.Time) string { return formatTime(t, "2006-01-02 15:04") },
	"mask":     pii.Mask,
	"flag":     flagArrow,
	"tab":      func() string { return string(colBreak) },
}

func formatTime(t time.Time, layout string) string {
	if t.IsZero() {
		return ""
	}
	return t.In(ihos.Shanghai).Format(layout)
}

// flagArrow shows an abnormal-result flag as printed reports do.
func flagArrow(f string) string {
	switch strings.ToUpper(strings.TrimSpace(f)) {
	case "H", "HH", "↑":
		return "↑"
	case "L", "LL", "↓":
		return "↓"
	case "A", "AA":
		return "*"
	}
	return ""
}

// compiled is a parsed, checked template.
type compiled struct {
	kind string
	tmpl *template.Template
}

// parseTemplate parses and checks source for kind.
func parseTemplate(kind, source string) (*compiled, error) {
	if len(source) > MaxSource {
		return nil, ihos.Errorf(ihos.EInvalid, "模板过长：最多 %d KB", MaxSource>>10)
	}
	if !utf8.ValidString(source) {
		return nil, ihos.Errorf(ihos.EInvalid, "模板含有无效的字符编码（需为 UTF-8）")
	}
	t, err := template.New(kind).Funcs(funcs).Parse(source)
	if err != nil {
		return nil, templateError(err)
	}
	if len(t.Templates()) > 1 {
		return nil, ihos.Errorf(ihos.EInvalid, "模板中不能使用 define 或 block 定义子模板")
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "模板是空的")
	}
	if err := check(t.Tree, t.Tree.Root); err != nil {
		return nil, err
	}
	if err := checkDirectives(source); err != nil {
		return nil, err
	}
	rewrite(t.Tree, t.Tree.Root, source)
	return &compiled{kind: kind, tmpl: t}, nil
}

// check refuses what a staff-edited template must not do: call other
// templates, use a variable-bound escape function, or range over anything
// but a field or a variable (range 1000000000 would spin).
func check(tree *parse.Tree, n parse.Node) error {
	line := func(n parse.Node) int {
		loc, _ := tree.ErrorContext(n) // "name:line:col"
		parts := strings.Split(loc, ":")
		if len(parts) < 3 {
			return 0
		}
		v, _ := strconv.Atoi(parts[len(parts)-2])
		return v
	}
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return nil
		}
		for _, c := range x.Nodes {
			if err := check(tree, c); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return ihos.Errorf(ihos.EInvalid, "模板第 %d 行：不能引用其他模板（template）", line(x))
	case *parse.ActionNode:
		return checkPipe(tree, x.Pipe, line(x))
	case *parse.IfNode:
		return checkBranch(tree, &x.BranchNode, line(x))
	case *parse.WithNode:
		return checkBranch(tree, &x.BranchNode, line(x))
	case *parse.RangeNode:
		p := x.Pipe
		ok := p != nil && len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1
		if ok {
			switch p.Cmds[0].Args[0].(type) {
			case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode, *parse.DotNode:
			default:
				ok = false
			}
		}
		if !ok {
			return ihos.Errorf(ihos.EInvalid, "模板第 %d 行：range 只能用于字段，如 {{range .Items}}", line(x))
		}
		return checkBranch(tree, &x.BranchNode, line(x))
	}
	return nil
}

func checkBranch(tree *parse.Tree, b *parse.BranchNode, line int) error {
	if err := checkPipe(tree, b.Pipe, line); err != nil {
		return err
	}
	if err := check(tree, b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return check(tree, b.ElseList)
	}
	return nil
}

func checkPipe(tree *parse.Tree, p *parse.PipeNode, line int) error {
	if p == nil {
		return nil
	}
	for _, c := range p.Cmds {
		for _, a := range c.Args {
			if sub, ok := a.(*parse.PipeNode); ok {
				if err := checkPipe(tree, sub, line); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// rewrite prepares a checked tree for fast, safe execution: the '@' of
// directives at the start of template lines becomes dirMark, "@@" there
// becomes "@", and {{tab}} becomes literal text.
func rewrite(tree *parse.Tree, n parse.Node, source string) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for i, c := range x.Nodes {
			if a, ok := c.(*parse.ActionNode); ok && len(a.Pipe.Decl) == 0 && len(a.Pipe.Cmds) == 1 && len(a.Pipe.Cmds[0].Args) == 1 {
				if id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode); ok && id.Ident == "tab" {
					x.Nodes[i] = &parse.TextNode{NodeType: parse.NodeText, Pos: a.Pos, Text: []byte{colBreak}}
					continue
				}
			}
			rewrite(tree, c, source)
		}
	case *parse.TextNode:
		x.Text = markDirectives(x.Text, int(x.Pos) == 0 || (int(x.Pos) <= len(source) && source[x.Pos-1] == '\n'))
	case *parse.IfNode:
		rewrite(tree, x.List, source)
		rewrite(tree, x.ElseList, source)
	case *parse.WithNode:
		rewrite(tree, x.List, source)
		rewrite(tree, x.ElseList, source)
	case *parse.RangeNode:
		rewrite(tree, x.List, source)
		rewrite(tree, x.ElseList, source)
	}
}

// markDirectives rewrites the directives at the line starts of literal
// text; atStart says whether text begins a template line.
func markDirectives(text []byte, atStart bool) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); {
		lineStart := (i == 0 && atStart) || (i > 0 && text[i-1] == '\n')
		if !lineStart || text[i] != '@' {
			out = append(out, text[i])
			i++
			continue
		}
		if i+1 < len(text) && text[i+1] == '@' {
			out = append(out, '@')
			i += 2
			continue
		}
		// Mark the style words and the block directive that follows them.
		for i < len(text) && text[i] == '@' && !(i+1 < len(text) && text[i+1] == '@') {
			out = append(out, dirMark)
			i++
			j := i
			for j < len(text) && text[j] != ' ' && text[j] != '\n' && text[j] != '\r' {
				j++
			}
			word := string(text[i:j])
			out = append(out, text[i:j]...)
			i = j
			if !styleWords[word] {
				break
			}
			for i < len(text) && text[i] == ' ' {
				out = append(out, ' ')
				i++
			}
		}
	}
	return out
}

// checkDirectives checks the directives written at the start of source
// lines, so a typo is reported with its line number when the template is
// saved rather than when a ticket prints.
func checkDirectives(source string) error {
	for i, l := range strings.Split(source, "\n") {
		if !strings.HasPrefix(l, "@") || strings.HasPrefix(l, "@@") {
			continue
		}
		if j := strings.Index(l, "{{"); j >= 0 {
			l = l[:j] + "x" // a directive's argument may come from an action
		}
		ls, err := parseDirectives(strings.TrimRight(l, " \r"), '@')
		if err == nil && ls.block == dirFeed && !strings.Contains(l, "{{") {
			_, err = feedLines(ls.arg)
		}
		if err != nil {
			return ihos.Errorf(ihos.EInvalid, "模板第 %d 行：%s", i+1, err.Error())
		}
	}
	return nil
}

var errLine = regexp.MustCompile(`^template: [^:]*:(\d+)(?::\d+)?: (.*)$`)

// templateError translates a text/template error into Chinese with its
// line number.
func templateError(err error) error {
	var e *ihos.Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	m := errLine.FindStringSubmatch(msg)
	if m == nil {
		return ihos.Errorf(ihos.EInvalid, "模板有错误：%s", msg)
	}
	line, detail := m[1], m[2]
	if _, after, ok := strings.Cut(detail, ": "); ok && strings.HasPrefix(detail, "executing ") {
		detail = after
	}
	var zh string
	switch {
	case strings.Contains(detail, "function") && strings.Contains(detail, "not defined"):
		zh = "未知的函数 " + between(detail, `"`, `"`)
	case strings.Contains(detail, "can't evaluate field"):
		f := strings.TrimPrefix(detail, "can't evaluate field ")
		f, _, _ = strings.Cut(f, " ")
		zh = "没有字段 " + f + "（可用字段见右侧说明）"
	case strings.Contains(detail, "unexpected EOF"):
		zh = "模板不完整，可能缺少 {{end}} 或 }}"
	case strings.Contains(detail, "unclosed action"):
		zh = "{{ 没有对应的 }}"
	case strings.Contains(detail, "unexpected {{end}}"):
		zh = "多余的 {{end}}"
	case strings.Contains(detail, "wrong number of args"):
		zh = "函数的参数个数不对：" + detail
	case strings.Contains(detail, "wrong type for value"), strings.Contains(detail, "can't handle"):
		zh = "参数类型不对：" + detail
	case strings.Contains(detail, "output too large"):
		zh = "输出过长（超过 64 KB）"
	default:
		zh = "语法错误：" + detail
	}
	return ihos.Errorf(ihos.EInvalid, "模板第 %s 行：%s", line, zh)
}

func between(s, open, close string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return s
	}
	v, _, _ := strings.Cut(rest, close)
	return v
}

// errOutputTooLarge stops a template that writes more than maxOutput.
var errOutputTooLarge = errors.New("output too large")

// limitedBuffer is the execution output: a byte slice that refuses to grow
// beyond maxOutput.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > maxOutput {
		return 0, errOutputTooLarge
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

// WriteString lets text/template write literal text without a conversion.
func (l *limitedBuffer) WriteString(s string) (int, error) {
	if len(l.b)+len(s) > maxOutput {
		return 0, errOutputTooLarge
	}
	l.b = append(l.b, s...)
	return len(s), nil
}

var _ io.StringWriter = (*limitedBuffer)(nil)

// execute runs the template with data into out.
func (c *compiled) execute(out *limitedBuffer, data any) error {
	if err := c.tmpl.Execute(out, data); err != nil {
		if errors.Is(err, errOutputTooLarge) {
			return ihos.Errorf(ihos.EInvalid, "模板输出过长（超过 %d KB），请检查 range", maxOutput>>10)
		}
		return templateError(err)
	}
	return nil
}
