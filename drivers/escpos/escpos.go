// Package escpos encodes ESC/POS commands for thermal ticket printers and
// parses what they send back: real-time status bytes (DLE EOT) and process ID
// responses (GS ( H function 48).
//
// A Printer buffers commands in memory; builder methods never write to the
// underlying io.Writer. Flush writes the whole buffer in a single Write call,
// so a ticket reaches the transport as one unit.
//
// Builder methods record the first error they meet (see Err) and emit no bytes
// for the failing call; Flush refuses to write while an error is recorded, so
// a ticket with a missing barcode or QR code is never printed silently.
//
// Command bytes follow the Epson ESC/POS command reference (public, Epson
// "ESC/POS Command Reference for TM printers").
package escpos

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Control bytes.
const (
	esc = 0x1B
	gs  = 0x1D
	fs  = 0x1C
	dle = 0x10
	eot = 0x04
	lf  = 0x0A
)

// Paper widths in dots at 203 dpi.
const (
	Width58mm  = 384
	Width80mm  = 576
	Width106mm = 832
)

// Code page names accepted in Options.CodePage.
const (
	CodePageGB18030 = "GB18030"
	CodePageGBK     = "GBK"
)

// Limits.
const (
	// MaxQRData is the largest payload GS ( k function 80 accepts
	// (pL + pH*256 = len + 3 with the parameter at most 7092).
	MaxQRData = 7089
	// MaxCode128Data is the largest Code128 payload after '{' escaping:
	// GS k 73 n with n = len + 2 (the "{B" prefix) and n at most 255.
	MaxCode128Data = 253
	// MaxBandRows is the row count of each GS v 0 band. Epson models accept
	// more, but many compatible printers have small receive buffers; 255
	// keeps yH = 0, which every printer we know of accepts.
	MaxBandRows = 255
	// maxRasterBytesPerRow is the GS v 0 limit on xL + xH*256 (1..128).
	maxRasterBytesPerRow = 128
)

// Alignment is the ESC a parameter.
type Alignment byte

// Alignments.
const (
	Left   Alignment = 0
	Center Alignment = 1
	Right  Alignment = 2
)

// QR error-correction levels for Printer.QR (GS ( k function 69).
const (
	QRLevelL byte = 48
	QRLevelM byte = 49
	QRLevelQ byte = 50
	QRLevelH byte = 51
)

// Options configure a Printer.
type Options struct {
	// Width is the printable width in dots; images wider than this are
	// scaled down. Zero means Width80mm.
	Width int
	// CodePage is "GB18030" (default when empty) or "GBK".
	CodePage string
}

// Printer buffers ESC/POS commands for one io.Writer. It is not safe for
// concurrent use.
type Printer struct {
	w           io.Writer
	width       int
	enc         *encoding.Encoder
	buf         []byte
	err         error
	unencodable int
	scratch     [8]byte
}

// New returns a Printer writing to w. An unknown code page is recorded as an
// error (see Err) and GB18030 is used.
func New(w io.Writer, o Options) *Printer {
	p := &Printer{w: w, width: o.Width}
	if p.width <= 0 {
		p.width = Width80mm
	}
	switch o.CodePage {
	case "", CodePageGB18030:
		p.enc = simplifiedchinese.GB18030.NewEncoder()
	case CodePageGBK:
		p.enc = simplifiedchinese.GBK.NewEncoder()
	default:
		p.enc = simplifiedchinese.GB18030.NewEncoder()
		p.fail(fmt.Errorf("escpos: unknown code page %q", o.CodePage))
	}
	return p
}

func (p *Printer) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// Err returns the first error recorded by a builder call, or nil.
func (p *Printer) Err() error { return p.err }

// Unencodable returns how many characters Text replaced with '?' because the
// code page cannot encode them (or the input was not valid UTF-8).
func (p *Printer) Unencodable() int { return p.unencodable }

// Bytes returns the buffered commands. The slice aliases the buffer until
// the next builder call or Flush.
func (p *Printer) Bytes() []byte { return p.buf }

// Reset discards the buffered bytes, the recorded error and the
// unencodable count.
func (p *Printer) Reset() {
	p.buf = p.buf[:0]
	p.err = nil
	p.unencodable = 0
}

// ErrShortWrite is returned by Flush when the writer accepted fewer bytes
// than given without returning an error.
var ErrShortWrite = errors.New("escpos: short write")

// Flush writes the buffered commands in one Write call and empties the
// buffer on success. It writes nothing and returns Err() if a builder call
// failed. On a write error the buffer is kept so the caller may retry.
func (p *Printer) Flush() error {
	if p.err != nil {
		return p.err
	}
	if len(p.buf) == 0 {
		return nil
	}
	n, err := p.w.Write(p.buf)
	if err != nil {
		return err
	}
	if n != len(p.buf) {
		return ErrShortWrite
	}
	p.buf = p.buf[:0]
	return nil
}

// Raw appends bytes verbatim.
func (p *Printer) Raw(b []byte) *Printer {
	p.buf = append(p.buf, b...)
	return p
}

// Init appends ESC @ (initialize) followed by FS & (Chinese character mode).
func (p *Printer) Init() *Printer {
	p.buf = append(p.buf, esc, '@', fs, '&')
	return p
}

// Text appends s encoded in the printer's code page. Characters the code page
// cannot encode, invalid UTF-8 bytes and private-use code points (printers
// have no glyphs for them, and x/text does not map all of them reversibly)
// become '?' and are counted in Unencodable.
func (p *Printer) Text(s string) *Printer {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			p.buf = append(p.buf, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || privateUse(r) {
			p.replace()
			i += size
			continue
		}
		p.enc.Reset()
		n, _, err := p.enc.Transform(p.scratch[:], []byte(s[i:i+size]), true)
		if err != nil || n == 0 {
			p.replace()
		} else {
			p.buf = append(p.buf, p.scratch[:n]...)
		}
		i += size
	}
	return p
}

func privateUse(r rune) bool {
	return (r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000
}

func (p *Printer) replace() {
	p.buf = append(p.buf, '?')
	p.unencodable++
}

// Line appends Text(s) followed by LF.
func (p *Printer) Line(s string) *Printer {
	p.Text(s)
	p.buf = append(p.buf, lf)
	return p
}

// Align appends ESC a n.
func (p *Printer) Align(a Alignment) *Printer {
	if a > Right {
		p.fail(fmt.Errorf("escpos: invalid alignment %d", a))
		return p
	}
	p.buf = append(p.buf, esc, 'a', byte(a))
	return p
}

// Bold appends ESC E n (n = 1 on, 0 off).
func (p *Printer) Bold(on bool) *Printer {
	var n byte
	if on {
		n = 1
	}
	p.buf = append(p.buf, esc, 'E', n)
	return p
}

// Size appends GS ! n selecting character width and height magnification,
// each 1..8: n = (w-1)<<4 | (h-1).
func (p *Printer) Size(w, h int) *Printer {
	if w < 1 || w > 8 || h < 1 || h > 8 {
		p.fail(fmt.Errorf("escpos: character size %dx%d out of range 1..8", w, h))
		return p
	}
	p.buf = append(p.buf, gs, '!', byte((w-1)<<4|(h-1)))
	return p
}

// Feed appends ESC d n: print and feed n lines (0..255).
func (p *Printer) Feed(lines int) *Printer {
	if lines < 0 || lines > 255 {
		p.fail(fmt.Errorf("escpos: feed %d lines out of range 0..255", lines))
		return p
	}
	p.buf = append(p.buf, esc, 'd', byte(lines))
	return p
}

// Cut appends GS V m n (function B): feed to the cutting position and cut.
// m = 65 full cut, m = 66 partial cut (one point left uncut); n = 0 extra
// feed.
func (p *Printer) Cut(partial bool) *Printer {
	m := byte(65)
	if partial {
		m = 66
	}
	p.buf = append(p.buf, gs, 'V', m, 0)
	return p
}

// Barcode128 appends a Code128 barcode in code set B: GS h 80 (height in
// dots), GS w 2 (module width), GS H 2 (HRI below), then GS k 73 n "{B" data.
// data must be printable ASCII (0x20..0x7E); '{' is sent as "{{" as the
// command requires.
func (p *Printer) Barcode128(data string) *Printer {
	if data == "" {
		p.fail(errors.New("escpos: empty Code128 data"))
		return p
	}
	enc := make([]byte, 0, len(data)+2)
	enc = append(enc, '{', 'B')
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c < 0x20 || c > 0x7E {
			p.fail(fmt.Errorf("escpos: Code128 set B cannot encode byte 0x%02X at %d", c, i))
			return p
		}
		enc = append(enc, c)
		if c == '{' {
			enc = append(enc, '{')
		}
	}
	if len(enc) > 255 {
		p.fail(fmt.Errorf("escpos: Code128 data too long (%d bytes encoded, max 255)", len(enc)))
		return p
	}
	p.buf = append(p.buf,
		gs, 'h', 80,
		gs, 'w', 2,
		gs, 'H', 2,
		gs, 'k', 73, byte(len(enc)))
	p.buf = append(p.buf, enc...)
	return p
}

// QR appends a QR code printed by the printer itself (GS ( k, cn = 49):
// function 65 (model 2), 67 (module size 1..16 dots), 69 (error correction,
// QRLevelL..QRLevelH = 48..51), 80 (store data, pL pH = len+3) and 81
// (print). data must be 1..MaxQRData bytes; it is sent as is (use ASCII or
// bytes the printer's QR code page expects).
func (p *Printer) QR(data string, moduleSize int, ec byte) *Printer {
	switch {
	case len(data) == 0:
		p.fail(errors.New("escpos: empty QR data"))
		return p
	case len(data) > MaxQRData:
		p.fail(fmt.Errorf("escpos: QR data %d bytes exceeds %d", len(data), MaxQRData))
		return p
	case moduleSize < 1 || moduleSize > 16:
		p.fail(fmt.Errorf("escpos: QR module size %d out of range 1..16", moduleSize))
		return p
	case ec < QRLevelL || ec > QRLevelH:
		p.fail(fmt.Errorf("escpos: QR error correction %d out of range 48..51", ec))
		return p
	}
	k := len(data) + 3
	p.buf = append(p.buf,
		gs, '(', 'k', 4, 0, 49, 65, 50, 0, // model 2
		gs, '(', 'k', 3, 0, 49, 67, byte(moduleSize),
		gs, '(', 'k', 3, 0, 49, 69, ec,
		gs, '(', 'k', byte(k), byte(k>>8), 49, 80, 48)
	p.buf = append(p.buf, data...)
	p.buf = append(p.buf, gs, '(', 'k', 3, 0, 49, 81, 48)
	return p
}

// ProcessID appends GS ( H pL pH fn m d1 d2 d3 d4 with pL = 6, pH = 0,
// fn = 48, m = 48 ("specifies the process ID response"): once the printer
// has processed everything received before this command, printing
// included, it sends the response 37h 22h d1 d2 d3 d4 00h on its back
// channel (see ParseProcessID). A print queue ends each ticket with it to
// learn that the ticket, cut and all, has come out. Each byte of id must be
// 20h..7Eh; Epson suggests ascending digit strings ("0001".."9999") so the
// order of the responses is easy to check.
//
// Epson also specifies that IDs of data the printer clears without
// processing it (DLE DC4 fn 8, error recovery that clears the buffers) are
// never sent, and that when several responses are waiting to be sent
// because the host could not receive, only the latest is sent. Printers
// that do not implement the command (many compatible models) send nothing.
//
// Source: Epson ESC/POS Command Reference, "GS ( H <Function 48>"
// (https://download4.epson.biz/sec_pubs/pos/reference_en/escpos/gs_lparen_ch_fn48.html)
// and "GS ( H" (…/escpos/gs_lparen_ch.html).
func (p *Printer) ProcessID(id [4]byte) *Printer {
	cmd, err := ProcessIDCommand(id)
	if err != nil {
		p.fail(err)
		return p
	}
	p.buf = append(p.buf, cmd...)
	return p
}

// ProcessIDCommand returns the GS ( H function 48 command of
// Printer.ProcessID, for callers that append it to bytes rendered earlier.
func ProcessIDCommand(id [4]byte) ([]byte, error) {
	for i, c := range id {
		if !validProcessIDByte(c) {
			return nil, fmt.Errorf("escpos: process ID byte %d is 0x%02X, want 0x20..0x7E", i, c)
		}
	}
	return []byte{gs, '(', 'H', 6, 0, 48, 48, id[0], id[1], id[2], id[3]}, nil
}
