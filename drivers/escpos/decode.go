package escpos

import (
	"fmt"
	"image"
	"image/color"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Ticket is what a printer would have produced from an ESC/POS stream, in a
// form tests can compare.
type Ticket struct {
	// Lines are the printed text lines, decoded to UTF-8. A line ends at LF
	// (or ESC d, a cut, or the end of the stream); style commands do not
	// split lines.
	Lines []string
	// Align is the alignment in effect when each line started (parallel to
	// Lines).
	Align []Alignment
	// Bold reports whether any character of each line was printed
	// emphasized (ESC E or ESC ! bit 3; parallel to Lines).
	Bold []bool
	// QRCodes holds the data of each printed QR code (GS ( k fn 81 prints
	// the data stored by the last fn 80).
	QRCodes []string
	// Barcodes holds the data of each Code128 barcode (GS k 73), with the
	// "{B" prefix removed and "{{" unescaped.
	Barcodes []string
	// Images holds each GS v 0 raster as a *image.Gray, black = 0,
	// white = 255. Its width is the byte count per row times 8, so the
	// padding columns the encoder adds are included (white).
	Images []image.Image
	// Cuts counts GS V commands.
	Cuts int
	// Items is everything printed, in paper order, with the style it was
	// printed in, so that a renderer can lay the ticket out (package
	// ticketimage). Each text line of Lines is one ItemText; runs of empty
	// lines are merged into one ItemFeed, so the ItemText count plus the
	// ItemFeed Lines equals len(Lines).
	Items []Item
}

// ItemKind tells what an Item is.
type ItemKind int

// Item kinds.
const (
	ItemText    ItemKind = iota // a line of text: Text, Align, Bold, Width, Height
	ItemQR                      // a QR code: Data, Align, QRModule, QRLevel
	ItemBarcode                 // a Code128 barcode: Data, Align, BarHeight, BarModule, HRI
	ItemImage                   // a GS v 0 raster: Image, Align
	ItemFeed                    // Lines empty lines: Lines, Height
	ItemCut                     // a cut (GS V)
)

func (k ItemKind) String() string {
	switch k {
	case ItemText:
		return "text"
	case ItemQR:
		return "qr"
	case ItemBarcode:
		return "barcode"
	case ItemImage:
		return "image"
	case ItemFeed:
		return "feed"
	case ItemCut:
		return "cut"
	}
	return fmt.Sprintf("ItemKind(%d)", int(k))
}

// HRI positions (GS H n).
const (
	HRINone  = 0
	HRIAbove = 1
	HRIBelow = 2
	HRIBoth  = 3
)

// Item is one printed element of a Ticket. Fields that do not apply to
// its Kind are zero.
type Item struct {
	Kind ItemKind
	// Text is the line, decoded to UTF-8 (ItemText).
	Text string
	// Align is the justification (ESC a) in effect when the line's first
	// character, or the code or image, was received.
	Align Alignment
	// Bold reports whether any character of the line was emphasized.
	Bold bool
	// Width and Height are the character magnification, 1..8 (GS !, or
	// ESC ! bits 5 and 4). A printer can change the size in the middle of
	// a line; the Item keeps the size of the line's first character. For
	// ItemFeed they are the size in effect at the feed.
	Width, Height int
	// Data is the payload of a QR code or barcode; for barcodes with the
	// "{B" prefix removed and "{{" unescaped.
	Data string
	// Image is the raster of an ItemImage, as in Ticket.Images.
	Image image.Image
	// QRModule is the QR module size in dots (GS ( k fn 67, 1..16;
	// printer default 3) and QRLevel the error correction (fn 69,
	// QRLevelL..QRLevelH; printer default QRLevelL).
	QRModule int
	QRLevel  byte
	// BarHeight is the barcode height in dots (GS h, default 162),
	// BarModule the narrowest bar in dots (GS w, 1..6, default 3) and HRI
	// where the human-readable text is printed (GS H, HRINone..HRIBoth).
	BarHeight, BarModule, HRI int
	// Lines is the number of empty lines of an ItemFeed.
	Lines int
}

// DecodeError reports an unknown, malformed or truncated command.
type DecodeError struct {
	Offset int // byte offset of the command (or byte) in the stream
	Msg    string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("escpos: decode at offset %d: %s", e.Offset, e.Msg)
}

// Params of ESC, GS and FS commands this decoder accepts and ignores,
// keyed by the command byte: the number of fixed parameter bytes.
var (
	skipESC = map[byte]int{'G': 1, 'M': 1, '2': 0, '3': 1, 't': 1, 'R': 1, 'V': 1, '{': 1, 'p': 3, 'U': 1, ' ': 1}
	skipGS  = map[byte]int{'B': 1, 'L': 2, 'W': 2, 'f': 1, 'a': 1, 'P': 2, 'b': 1}
	skipFS  = map[byte]int{'!': 1, '-': 1, 'W': 1, 'S': 2}
)

// Decode interprets an ESC/POS stream the way a printer would and returns the
// resulting ticket. codePage is "GB18030" (also when empty) or "GBK"; it is
// used for text after FS & (Chinese character mode). Outside Chinese mode
// (at the start, after ESC @ or FS .) only ASCII text is accepted.
//
// Supported: ESC @, ESC a, ESC E, ESC !, ESC -, ESC d, GS !, GS h, GS w,
// GS H, GS k 73, GS ( k (cn 49: fn 65, 67, 69, 80, 81; other GS ( commands,
// such as the process ID request GS ( H fn 48, are skipped by their pL pH
// length and leave nothing in the Ticket), GS v 0, GS V (m 0, 1, 48, 49, 65, 66),
// FS &, FS ., DLE EOT n (ignored), LF, CR (ignored), text, and a few
// fixed-length setting commands that are ignored (see skipESC etc.).
//
// The character size (GS !, ESC ! bits 4 and 5), the barcode settings (GS h,
// GS w, GS H) and the QR module size and error correction (GS ( k fn 67, 69)
// are not part of Lines but are recorded in Items, for rendering; ESC @
// resets them to the printer defaults.
//
// ESC d n prints the pending text as a line and feeds: with text pending it
// yields that line plus n-1 empty lines, otherwise n empty lines. Barcodes,
// QR codes, rasters and cuts also end a pending line. ESC @ discards pending
// text, as a printer clears its buffer.
//
// Anything else, and any truncated command, stops decoding with a
// *DecodeError naming the byte offset; the returned Ticket (never nil)
// then holds what was decoded before that command.
func Decode(b []byte, codePage string) (*Ticket, error) {
	d := &decoder{t: &Ticket{}, b: b}
	d.reset()
	switch codePage {
	case "", CodePageGB18030:
		d.enc = simplifiedchinese.GB18030
	case CodePageGBK:
		d.enc = simplifiedchinese.GBK
	default:
		return d.t, &DecodeError{Offset: 0, Msg: fmt.Sprintf("unknown code page %q", codePage)}
	}
	err := d.run()
	if err == nil {
		d.endLine()
	}
	return d.t, err
}

type decoder struct {
	t       *Ticket
	b       []byte
	enc     encoding.Encoding
	chinese bool

	// Current style and pending line.
	align     Alignment
	bold      bool
	width     int // character magnification, 1..8
	height    int
	line      []byte
	lineAlign Alignment
	lineBold  bool
	lineW     int
	lineH     int

	qr       []byte
	qrSet    bool
	qrModule int
	qrLevel  byte

	barHeight int
	barModule int
	hri       int
}

// reset sets the state ESC @ (and power on) establishes.
func (d *decoder) reset() {
	d.line = d.line[:0]
	d.chinese = false
	d.align = Left
	d.bold = false
	d.width, d.height = 1, 1
	d.qrModule, d.qrLevel = 3, QRLevelL
	d.barHeight, d.barModule, d.hri = 162, 3, HRINone
}

func (d *decoder) errf(off int, format string, a ...any) error {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, a...)}
}

// need returns the n bytes after the command start plus skip, or an error
// if the stream ends first.
func (d *decoder) need(start, skip, n int, name string) ([]byte, error) {
	if len(d.b)-start-skip < n {
		return nil, d.errf(start, "truncated %s", name)
	}
	return d.b[start+skip : start+skip+n], nil
}

func (d *decoder) text(c byte) {
	if len(d.line) == 0 {
		d.lineAlign = d.align
		d.lineBold = false
		d.lineW, d.lineH = d.width, d.height
	}
	d.line = append(d.line, c)
	if d.bold {
		d.lineBold = true
	}
}

// endLine prints the pending text, if any, as one line.
func (d *decoder) endLine() {
	if len(d.line) == 0 {
		return
	}
	s, err := d.enc.NewDecoder().Bytes(d.line)
	if err != nil { // not expected: x/text replaces invalid bytes with U+FFFD
		s = []byte(string(d.line))
	}
	d.t.Lines = append(d.t.Lines, string(s))
	d.t.Align = append(d.t.Align, d.lineAlign)
	d.t.Bold = append(d.t.Bold, d.lineBold)
	d.t.Items = append(d.t.Items, Item{Kind: ItemText, Text: string(s), Align: d.lineAlign,
		Bold: d.lineBold, Width: d.lineW, Height: d.lineH})
	d.line = d.line[:0]
}

// feed prints the pending text (or an empty line) as one line.
func (d *decoder) feed() {
	if len(d.line) > 0 {
		d.endLine()
		return
	}
	d.t.Lines = append(d.t.Lines, "")
	d.t.Align = append(d.t.Align, d.align)
	d.t.Bold = append(d.t.Bold, false)
	if n := len(d.t.Items); n > 0 && d.t.Items[n-1].Kind == ItemFeed {
		d.t.Items[n-1].Lines++
		return
	}
	d.t.Items = append(d.t.Items, Item{Kind: ItemFeed, Align: d.align, Width: d.width, Height: d.height, Lines: 1})
}

// item appends a non-text item, ending the pending line first.
func (d *decoder) item(it Item) {
	d.endLine()
	it.Align = d.align
	d.t.Items = append(d.t.Items, it)
}

func (d *decoder) run() error {
	b := d.b
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == lf:
			d.feed()
			i++
		case c == '\r':
			i++
		case c == esc:
			n, err := d.escCmd(i)
			if err != nil {
				return err
			}
			i += n
		case c == gs:
			n, err := d.gsCmd(i)
			if err != nil {
				return err
			}
			i += n
		case c == fs:
			p, err := d.need(i, 1, 1, "FS command")
			if err != nil {
				return err
			}
			switch p[0] {
			case '&':
				d.chinese = true
				i += 2
			case '.':
				d.chinese = false
				i += 2
			default:
				k, ok := skipFS[p[0]]
				if !ok {
					return d.errf(i, "unknown command FS 0x%02X", p[0])
				}
				if _, err := d.need(i, 2, k, "FS command"); err != nil {
					return err
				}
				i += 2 + k
			}
		case c == dle:
			p, err := d.need(i, 1, 2, "DLE command")
			if err != nil {
				return err
			}
			if p[0] != eot {
				return d.errf(i, "unknown command DLE 0x%02X", p[0])
			}
			i += 3
		case c < 0x20:
			return d.errf(i, "unexpected control byte 0x%02X", c)
		case c >= 0x80 && !d.chinese:
			return d.errf(i, "non-ASCII byte 0x%02X outside Chinese mode (FS &)", c)
		default:
			d.text(c)
			i++
		}
	}
	return nil
}

// escCmd decodes the ESC command at i and returns its length.
func (d *decoder) escCmd(i int) (int, error) {
	p, err := d.need(i, 1, 1, "ESC command")
	if err != nil {
		return 0, err
	}
	switch cmd := p[0]; cmd {
	case '@':
		d.reset()
		return 2, nil
	case 'a', 'E', '!', '-', 'd':
		q, err := d.need(i, 2, 1, fmt.Sprintf("ESC %c", cmd))
		if err != nil {
			return 0, err
		}
		n := q[0]
		switch cmd {
		case 'a':
			switch {
			case n <= 2:
				d.align = Alignment(n)
			case n >= 48 && n <= 50:
				d.align = Alignment(n - 48)
			default:
				return 0, d.errf(i, "invalid ESC a %d", n)
			}
		case 'E':
			d.bold = n&1 == 1
		case '!':
			d.bold = n&0x08 != 0
			d.width, d.height = 1, 1
			if n&0x20 != 0 {
				d.width = 2
			}
			if n&0x10 != 0 {
				d.height = 2
			}
		case 'd':
			if n > 0 && len(d.line) > 0 {
				d.endLine()
				n--
			} else {
				d.endLine()
			}
			for ; n > 0; n-- {
				d.feed()
			}
		}
		return 3, nil
	default:
		k, ok := skipESC[cmd]
		if !ok {
			return 0, d.errf(i, "unknown command ESC 0x%02X", cmd)
		}
		if _, err := d.need(i, 2, k, "ESC command"); err != nil {
			return 0, err
		}
		return 2 + k, nil
	}
}

// gsCmd decodes the GS command at i and returns its length.
func (d *decoder) gsCmd(i int) (int, error) {
	p, err := d.need(i, 1, 1, "GS command")
	if err != nil {
		return 0, err
	}
	switch cmd := p[0]; cmd {
	case '!', 'h', 'w', 'H':
		q, err := d.need(i, 2, 1, fmt.Sprintf("GS %c", cmd))
		if err != nil {
			return 0, err
		}
		n := int(q[0])
		switch cmd {
		case '!':
			d.width, d.height = n>>4&7+1, n&7+1
		case 'h':
			if n > 0 {
				d.barHeight = n
			}
		case 'w':
			if n >= 1 && n <= 6 {
				d.barModule = n
			}
		case 'H':
			if n >= 48 {
				n -= 48
			}
			if n <= HRIBoth {
				d.hri = n
			}
		}
		return 3, nil
	case 'V':
		q, err := d.need(i, 2, 1, "GS V")
		if err != nil {
			return 0, err
		}
		n := 3
		switch q[0] {
		case 0, 1, 48, 49:
		case 65, 66:
			if _, err := d.need(i, 3, 1, "GS V"); err != nil {
				return 0, err
			}
			n = 4
		default:
			return 0, d.errf(i, "unsupported GS V m=%d", q[0])
		}
		d.item(Item{Kind: ItemCut})
		d.t.Cuts++
		return n, nil
	case 'k':
		return d.barcode(i)
	case '(':
		return d.gsParen(i)
	case 'v':
		return d.raster(i)
	default:
		k, ok := skipGS[cmd]
		if !ok {
			return 0, d.errf(i, "unknown command GS 0x%02X", cmd)
		}
		if _, err := d.need(i, 2, k, "GS command"); err != nil {
			return 0, err
		}
		return 2 + k, nil
	}
}

// barcode decodes GS k 73 n d1..dn (Code128, code set B only).
func (d *decoder) barcode(i int) (int, error) {
	h, err := d.need(i, 2, 2, "GS k")
	if err != nil {
		return 0, err
	}
	if h[0] != 73 {
		return 0, d.errf(i, "unsupported barcode system GS k %d", h[0])
	}
	n := int(h[1])
	data, err := d.need(i, 4, n, "GS k 73 data")
	if err != nil {
		return 0, err
	}
	if n < 2 || data[0] != '{' || data[1] != 'B' {
		return 0, d.errf(i, "Code128 data does not start with {B")
	}
	out := make([]byte, 0, n-2)
	for j := 2; j < n; j++ {
		c := data[j]
		if c == '{' {
			if j+1 >= n || data[j+1] != '{' {
				return 0, d.errf(i+4+j, "unsupported Code128 function or code set change")
			}
			j++
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return 0, d.errf(i, "empty Code128 data")
	}
	d.item(Item{Kind: ItemBarcode, Data: string(out), BarHeight: d.barHeight, BarModule: d.barModule, HRI: d.hri})
	d.t.Barcodes = append(d.t.Barcodes, string(out))
	return 4 + n, nil
}

// gsParen decodes GS ( fn pL pH ...: QR functions of GS ( k are interpreted,
// everything else is skipped by its length.
func (d *decoder) gsParen(i int) (int, error) {
	h, err := d.need(i, 2, 3, "GS ( command")
	if err != nil {
		return 0, err
	}
	k := int(h[1]) | int(h[2])<<8
	body, err := d.need(i, 5, k, "GS ( command")
	if err != nil {
		return 0, err
	}
	total := 5 + k
	if h[0] != 'k' {
		return total, nil
	}
	if k < 2 {
		return 0, d.errf(i, "GS ( k with pL pH = %d", k)
	}
	if body[0] != 49 { // not a QR code symbol: skip
		return total, nil
	}
	switch fn := body[1]; fn {
	case 65, 67, 69, 81:
		if k != 3 && !(fn == 65 && k == 4) {
			return 0, d.errf(i, "GS ( k fn %d with pL pH = %d", fn, k)
		}
		switch fn {
		case 67:
			if body[2] < 1 || body[2] > 16 {
				return 0, d.errf(i, "QR module size %d out of range 1..16", body[2])
			}
			d.qrModule = int(body[2])
		case 69:
			if body[2] < QRLevelL || body[2] > QRLevelH {
				return 0, d.errf(i, "QR error correction %d out of range 48..51", body[2])
			}
			d.qrLevel = body[2]
		case 81:
			if !d.qrSet {
				return 0, d.errf(i, "QR print without stored data")
			}
			d.item(Item{Kind: ItemQR, Data: string(d.qr), QRModule: d.qrModule, QRLevel: d.qrLevel})
			d.t.QRCodes = append(d.t.QRCodes, string(d.qr))
		}
	case 80:
		if k < 4 {
			return 0, d.errf(i, "QR store with no data")
		}
		d.qr = append(d.qr[:0], body[3:]...)
		d.qrSet = true
	}
	return total, nil
}

// raster decodes GS v 0 m xL xH yL yH d1..dk.
func (d *decoder) raster(i int) (int, error) {
	h, err := d.need(i, 2, 6, "GS v 0")
	if err != nil {
		return 0, err
	}
	if h[0] != '0' {
		return 0, d.errf(i, "unknown command GS v 0x%02X", h[0])
	}
	if m := h[1]; m > 3 && (m < 48 || m > 51) {
		return 0, d.errf(i, "invalid GS v 0 mode %d", m)
	}
	xb := int(h[2]) | int(h[3])<<8
	rows := int(h[4]) | int(h[5])<<8
	if xb == 0 || rows == 0 {
		return 0, d.errf(i, "empty GS v 0 raster (%d bytes x %d rows)", xb, rows)
	}
	data, err := d.need(i, 8, xb*rows, "GS v 0 data")
	if err != nil {
		return 0, err
	}
	img := image.NewGray(image.Rect(0, 0, xb*8, rows))
	for y := 0; y < rows; y++ {
		for x := 0; x < xb*8; x++ {
			c := color.Gray{Y: 255}
			if data[y*xb+x>>3]&(0x80>>uint(x&7)) != 0 {
				c.Y = 0
			}
			img.SetGray(x, y, c)
		}
	}
	d.item(Item{Kind: ItemImage, Image: img})
	d.t.Images = append(d.t.Images, img)
	return 8 + xb*rows, nil
}
