package tickets

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"strconv"
	"strings"
	"unicode/utf8"

	"ihos"
	"ihos/drivers/escpos"
)

// Directives (see the package documentation).
const (
	dirRule    = "rule"
	dirQR      = "qr"
	dirBarcode = "barcode"
	dirLogo    = "logo"
	dirFeed    = "feed"
	dirCut     = "cut"
)

// Limits of directive arguments.
const (
	maxFeed = 10
	// maxQR is the largest QR payload accepted: a thermal printer's QR code
	// of more than about 1000 bytes is too dense to scan from paper.
	maxQR = 1000
	// qrMaxModule and qrMinModule bound the QR module size in dots.
	qrMaxModule = 6
	qrMinModule = 3
	// dotsPerCol is the width of one ASCII character (font A, 12×24).
	dotsPerCol = 12
)

// Directive names and the one-line help the console shows, in order.
var Directives = []struct{ Syntax, Help string }{
	{"@center / @left / @right", "本行居中 / 靠左（默认）/ 靠右"},
	{"@bold", "本行加粗"},
	{"@big", "本行倍宽倍高（每行可容纳的字数减半）"},
	{"@tall", "本行倍高"},
	{"@rule [字符]", "整行分隔线，默认为 -"},
	{"@qr 内容", "二维码（默认居中，自动选择大小）"},
	{"@barcode 内容", "Code128 条码（仅限英文、数字和符号；超出纸宽时打印文字）"},
	{"@logo", "医院徽标（已配置时）"},
	{"@feed N", "走纸 N 行（1～10），空行不会打印，需要空行时用它"},
	{"@cut", "切纸（模板没有 @cut 时在末尾自动切纸）"},
	{"@@", "行首的 @@ 打印一个 @"},
	{"{{tab}}", "分栏：两栏时左栏靠左、右栏靠右；更多栏时后面各栏右对齐"},
}

// lineSpec is one output line after its directives are read.
type lineSpec struct {
	align    escpos.Alignment
	alignSet bool
	bold     bool
	big      bool
	tall     bool
	block    string // a block directive, or "" for text
	arg      string // the block directive's argument
	text     string // the text of a text line
}

// styleWords are the directives that style a line's text.
var styleWords = map[string]bool{"left": true, "center": true, "right": true, "bold": true, "big": true, "tall": true}

// parseDirectives reads the style words and the block directive at the start
// of line, each introduced by mark: '@' in template source, dirMark in
// executed output (see markDirectives).
func parseDirectives(line string, mark byte) (lineSpec, error) {
	var ls lineSpec
	s := line
	for {
		if mark == '@' && strings.HasPrefix(s, "@@") {
			ls.text = s[1:]
			return ls, nil
		}
		if len(s) == 0 || s[0] != mark {
			ls.text = s
			return ls, nil
		}
		word, rest, _ := strings.Cut(s[1:], " ")
		rest = strings.TrimLeft(rest, " ")
		switch word {
		case "left":
			ls.align, ls.alignSet = escpos.Left, true
		case "center":
			ls.align, ls.alignSet = escpos.Center, true
		case "right":
			ls.align, ls.alignSet = escpos.Right, true
		case "bold":
			ls.bold = true
		case "big":
			ls.big = true
		case "tall":
			ls.tall = true
		case dirRule, dirQR, dirBarcode, dirLogo, dirFeed, dirCut:
			ls.block, ls.arg = word, strings.TrimSpace(rest)
			return ls, nil
		default:
			if word == "" {
				return ls, errors.New("行首的 @ 后面缺少指令名（要打印 @ 请写 @@）")
			}
			return ls, fmt.Errorf("未知的指令 @%s（要打印 @ 请写 @@）", word)
		}
		s = rest
	}
}

// feedLines reads the argument of @feed.
func feedLines(arg string) (int, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > maxFeed {
		return 0, fmt.Errorf("@feed 后面应为 1～%d 的行数", maxFeed)
	}
	return n, nil
}

// stripMarks removes directive marks left in the middle of a line (a
// directive written after an action that trimmed the line break before it).
func stripMarks(s string) string {
	if strings.IndexByte(s, dirMark) < 0 {
		return s
	}
	return strings.ReplaceAll(s, string(dirMark), "@")
}

// cellWidth is the printed width of r in ASCII columns: code-page text
// prints every non-ASCII character as a 24-dot Chinese glyph.
func cellWidth(r rune) int {
	if r < utf8.RuneSelf {
		return 1
	}
	return 2
}

// textWidth is the printed width of s in ASCII columns.
func textWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		n += 2
		i += size
	}
	return n
}

// wrap breaks s into pieces of at most cols columns. An ASCII word is kept
// whole when the piece has an earlier space to break at.
func wrap(s string, cols int, out []string) []string {
	if cols < 2 {
		cols = 2
	}
	for textWidth(s) > cols {
		w, cut, lastSpace := 0, 0, -1
		for i, r := range s {
			cw := cellWidth(r)
			if w+cw > cols {
				cut = i
				break
			}
			if r == ' ' && i > 0 {
				lastSpace = i
			}
			w += cw
		}
		next, _ := utf8.DecodeRuneInString(s[cut:])
		prev, size := utf8.DecodeLastRuneInString(s[:cut])
		// Inside or right after an ASCII word ("5mg*28片"): break at the
		// last space instead.
		if lastSpace > 0 && isWordRune(prev) && next != ' ' {
			out = append(out, strings.TrimRight(s[:lastSpace], " "))
			s = strings.TrimLeft(s[lastSpace:], " ")
			continue
		}
		// Chinese punctuation never starts a line: take the character
		// before it along.
		if strings.ContainsRune(noLineStart, next) && cut-size > 0 {
			cut -= size
		}
		out = append(out, strings.TrimRight(s[:cut], " "))
		s = strings.TrimLeft(s[cut:], " ")
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

// noLineStart lists the punctuation Chinese typesetting keeps off the start
// of a line.
const noLineStart = "，。、；：！？）」』”’》〉】,.;:!?)%"

func isWordRune(r rune) bool {
	return r > ' ' && r < utf8.RuneSelf
}

// columns lays out cells on lines of cols columns (see the package
// documentation).
func columns(cells []string, cols int, out []string) []string {
	n := len(cells)
	rest := 0 // columns taken by the cells after the first
	widths := make([]int, n)
	base := 0
	if n > 2 {
		base = cols / (n + 1)
	}
	for i := 1; i < n; i++ {
		w := textWidth(cells[i])
		if n == 2 {
			w++ // one space between the columns
		} else if w+1 > base {
			w++
		} else {
			w = base
		}
		widths[i] = w
		rest += w
	}
	first := cols - rest
	if first < 4 { // no room: the first cell, then the others right aligned
		out = wrap(cells[0], cols, out)
		tail := strings.TrimSpace(strings.Join(cells[1:], " "))
		for _, p := range wrap(tail, cols, nil) {
			out = append(out, strings.Repeat(" ", cols-textWidth(p))+p)
		}
		return out
	}
	pieces := wrap(cells[0], first, nil)
	if len(pieces) == 0 {
		pieces = []string{""}
	}
	var b strings.Builder
	b.WriteString(pieces[0])
	b.WriteString(strings.Repeat(" ", first-textWidth(pieces[0])))
	for i := 1; i < n; i++ {
		b.WriteString(strings.Repeat(" ", widths[i]-textWidth(cells[i])))
		b.WriteString(cells[i])
	}
	out = append(out, strings.TrimRight(b.String(), " "))
	return append(out, pieces[1:]...)
}

// qrVersion estimates the QR version the printer picks for n bytes at error
// correction level M in byte mode (ISO/IEC 18004 table 7).
func qrVersion(n int) int {
	caps := [...]int{14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666,
		711, 779, 857, 911, 997, 1059, 1125, 1190, 1264, 1370, 1452, 1538, 1628, 1722, 1809, 1911, 1989, 2099, 2213, 2331}
	for i, c := range caps {
		if n <= c {
			return i + 1
		}
	}
	return 41
}

// qrModule picks the QR module size: the largest up to qrMaxModule that
// fits the paper with the quiet zone, or 0 when none does.
func qrModule(n, widthDots int) int {
	modules := 17 + 4*qrVersion(n) + 8 // with a 4-module quiet zone each side
	for m := qrMaxModule; m >= qrMinModule; m-- {
		if modules*m <= widthDots {
			return m
		}
	}
	return 0
}

// layout prints the lines of an executed template.
type layout struct {
	p         *escpos.Printer
	widthDots int
	cols      int
	logo      image.Image

	align escpos.Alignment
	bold  bool
	sizeW int
	sizeH int
	cut   bool

	pieces []string
}

func (l *layout) setAlign(a escpos.Alignment) {
	if a != l.align {
		l.p.Align(a)
		l.align = a
	}
}

func (l *layout) setBold(b bool) {
	if b != l.bold {
		l.p.Bold(b)
		l.bold = b
	}
}

func (l *layout) setSize(w, h int) {
	if w != l.sizeW || h != l.sizeH {
		l.p.Size(w, h)
		l.sizeW, l.sizeH = w, h
	}
}

// run prints every line of out.
func (l *layout) run(out []byte) error {
	l.p.Init()
	l.align, l.bold, l.sizeW, l.sizeH = escpos.Left, false, 1, 1
	for n := 1; len(out) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			line, out = out, nil
		}
		line = bytes.TrimRight(line, " \r")
		if len(line) == 0 {
			continue
		}
		if err := l.line(string(line)); err != nil {
			return ihos.Errorf(ihos.EInvalid, "模板输出第 %d 行：%s", n, err.Error())
		}
	}
	if !l.cut {
		l.setAlign(escpos.Left)
		l.p.Cut(true)
	}
	return nil
}

func (l *layout) line(raw string) error {
	ls, err := parseDirectives(raw, dirMark)
	if err != nil {
		return err
	}
	w, h := 1, 1
	switch {
	case ls.big:
		w, h = 2, 2
	case ls.tall:
		h = 2
	}
	cols := l.cols / w
	switch ls.block {
	case "":
		text := stripMarks(ls.text)
		if strings.TrimSpace(text) == "" {
			return nil
		}
		if ls.big && strings.IndexByte(text, colBreak) < 0 {
			// A heading too wide for double width keeps double height
			// rather than breaking in two.
			if tw := textWidth(strings.TrimSpace(text)); tw > cols && tw <= l.cols {
				w, cols = 1, l.cols
			}
		}
		l.setSize(w, h)
		l.setBold(ls.bold)
		l.pieces = l.pieces[:0]
		if strings.IndexByte(text, colBreak) >= 0 {
			cells := strings.Split(text, string(colBreak))
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			l.pieces = columns(cells, cols, l.pieces)
			l.setAlign(escpos.Left)
		} else {
			if ls.align != escpos.Left {
				text = strings.TrimSpace(text)
			}
			l.pieces = wrap(text, cols, l.pieces)
			l.setAlign(ls.align)
		}
		for _, p := range l.pieces {
			l.p.Line(p)
		}
	case dirRule:
		c := "-"
		if a := stripMarks(ls.arg); a != "" {
			r, _ := utf8.DecodeRuneInString(a)
			c = string(r)
		}
		l.setSize(w, h)
		l.setBold(ls.bold)
		l.setAlign(escpos.Left)
		l.p.Line(strings.Repeat(c, cols/cellWidth([]rune(c)[0])))
	case dirQR:
		data := stripMarks(ls.arg)
		if data == "" {
			return nil
		}
		if len(data) > maxQR {
			return fmt.Errorf("二维码内容过长（%d 字节，最多 %d）", len(data), maxQR)
		}
		m := qrModule(len(data), l.widthDots)
		if m == 0 {
			return fmt.Errorf("二维码内容过长，%d 点宽的纸放不下", l.widthDots)
		}
		l.blockAlign(ls)
		l.p.QR(data, m, escpos.QRLevelM)
	case dirBarcode:
		data := stripMarks(ls.arg)
		if data == "" {
			return nil
		}
		for i := 0; i < len(data); i++ {
			if data[i] < 0x20 || data[i] > 0x7E {
				return fmt.Errorf("条码只能包含英文字母、数字和符号：%s", data)
			}
		}
		l.blockAlign(ls)
		if (11*len(data)+35)*2 > l.widthDots {
			l.setSize(1, 1)
			l.setBold(false)
			l.p.Line(data) // too wide for this paper: the number at least
			return nil
		}
		l.p.Barcode128(data)
	case dirLogo:
		if l.logo == nil {
			return nil
		}
		l.blockAlign(ls)
		l.p.Image(l.logo)
	case dirFeed:
		n, err := feedLines(stripMarks(ls.arg))
		if err != nil {
			return err
		}
		l.p.Feed(n)
	case dirCut:
		l.setAlign(escpos.Left)
		l.p.Cut(true)
		l.cut = true
	}
	return l.p.Err()
}

// blockAlign aligns a QR code, barcode or logo: centred unless the line says
// otherwise.
func (l *layout) blockAlign(ls lineSpec) {
	if ls.alignSet {
		l.setAlign(ls.align)
	} else {
		l.setAlign(escpos.Center)
	}
}
