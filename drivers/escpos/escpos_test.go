package escpos

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Expected sequences below are written from the Epson ESC/POS command
// reference, not from this package's output.

func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		build func(p *Printer)
		want  []byte
	}{
		{"init+FS &", func(p *Printer) { p.Init() }, []byte{0x1B, 0x40, 0x1C, 0x26}},
		{"align left", func(p *Printer) { p.Align(Left) }, []byte{0x1B, 0x61, 0x00}},
		{"align center", func(p *Printer) { p.Align(Center) }, []byte{0x1B, 0x61, 0x01}},
		{"align right", func(p *Printer) { p.Align(Right) }, []byte{0x1B, 0x61, 0x02}},
		{"bold on", func(p *Printer) { p.Bold(true) }, []byte{0x1B, 0x45, 0x01}},
		{"bold off", func(p *Printer) { p.Bold(false) }, []byte{0x1B, 0x45, 0x00}},
		{"size 1x1", func(p *Printer) { p.Size(1, 1) }, []byte{0x1D, 0x21, 0x00}},
		{"size 2x2", func(p *Printer) { p.Size(2, 2) }, []byte{0x1D, 0x21, 0x11}},
		{"size 2x1 (double width)", func(p *Printer) { p.Size(2, 1) }, []byte{0x1D, 0x21, 0x10}},
		{"size 1x2 (double height)", func(p *Printer) { p.Size(1, 2) }, []byte{0x1D, 0x21, 0x01}},
		{"size 8x8", func(p *Printer) { p.Size(8, 8) }, []byte{0x1D, 0x21, 0x77}},
		{"feed 3", func(p *Printer) { p.Feed(3) }, []byte{0x1B, 0x64, 0x03}},
		{"feed 255", func(p *Printer) { p.Feed(255) }, []byte{0x1B, 0x64, 0xFF}},
		{"full cut", func(p *Printer) { p.Cut(false) }, []byte{0x1D, 0x56, 0x41, 0x00}},
		{"partial cut", func(p *Printer) { p.Cut(true) }, []byte{0x1D, 0x56, 0x42, 0x00}},
		{"line", func(p *Printer) { p.Line("OK") }, []byte{'O', 'K', 0x0A}},
		{"chain", func(p *Printer) { p.Init().Align(Center).Bold(true).Line("A").Cut(false) },
			[]byte{0x1B, 0x40, 0x1C, 0x26, 0x1B, 0x61, 0x01, 0x1B, 0x45, 0x01, 'A', 0x0A, 0x1D, 0x56, 0x41, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(nil, Options{})
			tt.build(p)
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Bytes(), tt.want) {
				t.Fatalf("got % X\nwant % X", p.Bytes(), tt.want)
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	tests := []struct {
		name  string
		build func(p *Printer)
	}{
		{"size 0", func(p *Printer) { p.Size(0, 1) }},
		{"size 9", func(p *Printer) { p.Size(1, 9) }},
		{"feed -1", func(p *Printer) { p.Feed(-1) }},
		{"feed 256", func(p *Printer) { p.Feed(256) }},
		{"align 3", func(p *Printer) { p.Align(3) }},
		{"barcode empty", func(p *Printer) { p.Barcode128("") }},
		{"barcode chinese", func(p *Printer) { p.Barcode128("处方123") }},
		{"barcode control", func(p *Printer) { p.Barcode128("A\nB") }},
		{"barcode too long", func(p *Printer) { p.Barcode128(strings.Repeat("1", 254)) }},
		{"qr empty", func(p *Printer) { p.QR("", 4, QRLevelM) }},
		{"qr 7090 bytes", func(p *Printer) { p.QR(strings.Repeat("a", 7090), 4, QRLevelM) }},
		{"qr module 0", func(p *Printer) { p.QR("x", 0, QRLevelM) }},
		{"qr module 17", func(p *Printer) { p.QR("x", 17, QRLevelM) }},
		{"qr ec 47", func(p *Printer) { p.QR("x", 4, 47) }},
		{"qr ec 52", func(p *Printer) { p.QR("x", 4, 52) }},
		{"image nil", func(p *Printer) { p.Image(nil) }},
		{"image empty", func(p *Printer) { p.Image(image.NewGray(image.Rect(0, 0, 0, 5))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			p := New(&w, Options{})
			tt.build(p)
			if p.Err() == nil {
				t.Fatal("no error recorded")
			}
			if len(p.Bytes()) != 0 {
				t.Fatalf("failing call emitted bytes: % X", p.Bytes())
			}
			if err := p.Flush(); err == nil || w.Len() != 0 {
				t.Fatalf("Flush = %v, wrote %d bytes; want error and nothing written", err, w.Len())
			}
		})
	}
}

func TestUnknownCodePage(t *testing.T) {
	if New(nil, Options{CodePage: "Big5"}).Err() == nil {
		t.Fatal("unknown code page accepted")
	}
}

func TestFirstErrorKept(t *testing.T) {
	p := New(nil, Options{})
	p.Size(0, 0)
	first := p.Err()
	p.Feed(999)
	if p.Err() != first {
		t.Fatalf("error replaced: %v", p.Err())
	}
}

const ticketText = "张三 阿莫西林胶囊 ¥12.50"

func TestChineseTextGB18030(t *testing.T) {
	p := New(nil, Options{CodePage: "GB18030"})
	p.Text(ticketText)
	want, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(ticketText))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Bytes()
	if !bytes.Equal(got, want) {
		t.Fatalf("got % X\nwant % X", got, want)
	}
	// Hand-checked from the GB2312/GB18030 tables: 张 = D5 C5, 三 = C8 FD,
	// space = 20; ¥ (U+00A5) is outside GBK and takes the GB18030
	// four-byte form 81 30 84 36.
	if !bytes.HasPrefix(got, []byte{0xD5, 0xC5, 0xC8, 0xFD, 0x20}) {
		t.Fatalf("prefix % X", got[:5])
	}
	if !bytes.HasSuffix(got, []byte{0x81, 0x30, 0x84, 0x36, '1', '2', '.', '5', '0'}) {
		t.Fatalf("suffix % X", got)
	}
	if p.Unencodable() != 0 {
		t.Fatalf("unencodable = %d", p.Unencodable())
	}
	dec, _ := simplifiedchinese.GB18030.NewDecoder().Bytes(got)
	if string(dec) != ticketText {
		t.Fatalf("round trip %q", dec)
	}
}

func TestChineseTextGBK(t *testing.T) {
	p := New(nil, Options{CodePage: "GBK"})
	p.Text("张三 💊 ¥1") // 💊 and ¥ (U+00A5) are not in GBK
	want := []byte{0xD5, 0xC5, 0xC8, 0xFD, 0x20, '?', 0x20, '?', '1'}
	if !bytes.Equal(p.Bytes(), want) {
		t.Fatalf("got % X\nwant % X", p.Bytes(), want)
	}
	if p.Unencodable() != 2 {
		t.Fatalf("unencodable = %d, want 2", p.Unencodable())
	}
	// The full-width yuan sign U+FFE5 is in GB2312 (A3 A4).
	p2 := New(nil, Options{CodePage: "GBK"})
	p2.Text("￥")
	if !bytes.Equal(p2.Bytes(), []byte{0xA3, 0xA4}) || p2.Unencodable() != 0 {
		t.Fatalf("got % X", p2.Bytes())
	}
}

func TestInvalidUTF8(t *testing.T) {
	p := New(nil, Options{})
	p.Text("a\xffb")
	if !bytes.Equal(p.Bytes(), []byte("a?b")) || p.Unencodable() != 1 {
		t.Fatalf("got % X, %d", p.Bytes(), p.Unencodable())
	}
}

func TestBarcode128(t *testing.T) {
	setup := []byte{0x1D, 0x68, 80, 0x1D, 0x77, 2, 0x1D, 0x48, 2}
	tests := []struct {
		data string
		want []byte // after the GS h / GS w / GS H setup
	}{
		{"RX2024", []byte{0x1D, 0x6B, 73, 8, '{', 'B', 'R', 'X', '2', '0', '2', '4'}},
		{"A{1", []byte{0x1D, 0x6B, 73, 6, '{', 'B', 'A', '{', '{', '1'}},
	}
	for _, tt := range tests {
		p := New(nil, Options{})
		p.Barcode128(tt.data)
		if p.Err() != nil {
			t.Fatal(p.Err())
		}
		want := append(append([]byte{}, setup...), tt.want...)
		if !bytes.Equal(p.Bytes(), want) {
			t.Fatalf("%q: got % X\nwant % X", tt.data, p.Bytes(), want)
		}
	}
	// 253 payload bytes is the maximum: n = 255.
	p := New(nil, Options{})
	p.Barcode128(strings.Repeat("7", 253))
	if p.Err() != nil || p.Bytes()[len(setup)+3] != 255 {
		t.Fatalf("max length: %v", p.Err())
	}
}

func qrPrefix(size, ec byte) []byte {
	return []byte{
		0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00,
		0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, size,
		0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, ec,
	}
}

var qrPrint = []byte{0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30}

func TestQR(t *testing.T) {
	long := strings.Repeat("x", 300) // 303 = 0x012F
	max := strings.Repeat("y", 7089) // 7092 = 0x1BB4
	tests := []struct {
		name   string
		data   string
		size   int
		ec     byte
		pL, pH byte
	}{
		{"short", "hi", 6, QRLevelM, 0x05, 0x00},
		{"255 boundary", strings.Repeat("z", 252), 4, QRLevelL, 0xFF, 0x00},
		{"256 boundary", strings.Repeat("z", 253), 4, QRLevelL, 0x00, 0x01},
		{"300 bytes", long, 3, QRLevelH, 0x2F, 0x01},
		{"7089 bytes", max, 1, QRLevelQ, 0xB4, 0x1B},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(nil, Options{})
			p.QR(tt.data, tt.size, tt.ec)
			if p.Err() != nil {
				t.Fatal(p.Err())
			}
			want := qrPrefix(byte(tt.size), tt.ec)
			want = append(want, 0x1D, 0x28, 0x6B, tt.pL, tt.pH, 0x31, 0x50, 0x30)
			want = append(want, tt.data...)
			want = append(want, qrPrint...)
			if !bytes.Equal(p.Bytes(), want) {
				t.Fatalf("got % X\nwant % X", head(p.Bytes()), head(want))
			}
		})
	}
}

func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func TestImageSmall(t *testing.T) {
	// 10x3: row 0 all black, row 1 black at x=0 and x=9, row 2 white.
	img := image.NewGray(image.Rect(0, 0, 10, 3))
	for x := 0; x < 10; x++ {
		img.SetGray(x, 0, color.Gray{Y: 0})
		img.SetGray(x, 1, color.Gray{Y: 255})
		img.SetGray(x, 2, color.Gray{Y: 255})
	}
	img.SetGray(0, 1, color.Gray{Y: 0})
	img.SetGray(9, 1, color.Gray{Y: 0})
	p := New(nil, Options{Width: Width58mm})
	p.Image(img)
	want := []byte{
		0x1D, 0x76, 0x30, 0x00, // GS v 0 m=0
		0x02, 0x00, // xL xH: 2 bytes per row
		0x03, 0x00, // yL yH: 3 rows
		0xFF, 0xC0,
		0x80, 0x40,
		0x00, 0x00,
	}
	if p.Err() != nil || !bytes.Equal(p.Bytes(), want) {
		t.Fatalf("err %v got % X\nwant % X", p.Err(), p.Bytes(), want)
	}
}

func TestImageThresholdAndAlpha(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	img.SetNRGBA(0, 0, color.NRGBA{127, 127, 127, 255}) // below 50%: black
	img.SetNRGBA(1, 0, color.NRGBA{128, 128, 128, 255}) // at/above 50%: white
	img.SetNRGBA(2, 0, color.NRGBA{0, 0, 0, 0})         // transparent: white
	img.SetNRGBA(3, 0, color.NRGBA{255, 0, 0, 255})     // red, luminance ~30%: black
	p := New(nil, Options{})
	p.Image(img)
	want := []byte{0x1D, 0x76, 0x30, 0x00, 0x01, 0x00, 0x01, 0x00, 0x90}
	if !bytes.Equal(p.Bytes(), want) {
		t.Fatalf("got % X\nwant % X", p.Bytes(), want)
	}
}

func TestImageBandsAndScaling(t *testing.T) {
	// 8x300 black: two bands, 255 + 45 rows, 1 byte per row.
	img := image.NewGray(image.Rect(0, 0, 8, 300))
	p := New(nil, Options{})
	p.Image(img)
	b := p.Bytes()
	if !bytes.Equal(b[:8], []byte{0x1D, 0x76, 0x30, 0x00, 0x01, 0x00, 0xFF, 0x00}) {
		t.Fatalf("band 1 header % X", b[:8])
	}
	off := 8 + 255
	if !bytes.Equal(b[off:off+8], []byte{0x1D, 0x76, 0x30, 0x00, 0x01, 0x00, 0x2D, 0x00}) {
		t.Fatalf("band 2 header % X", b[off:off+8])
	}
	if len(b) != off+8+45 {
		t.Fatalf("len %d", len(b))
	}
	// 1000x100 scaled into 384 dots: 48 bytes per row, 38 rows.
	wide := image.NewGray(image.Rect(0, 0, 1000, 100))
	p = New(nil, Options{Width: Width58mm})
	p.Image(wide)
	b = p.Bytes()
	if !bytes.Equal(b[:8], []byte{0x1D, 0x76, 0x30, 0x00, 48, 0x00, 38, 0x00}) || len(b) != 8+48*38 {
		t.Fatalf("scaled header % X len %d", b[:8], len(b))
	}
	// 106 mm: 832 dots = 104 bytes per row, no scaling.
	p = New(nil, Options{Width: Width106mm})
	p.Image(image.NewGray(image.Rect(0, 0, 832, 1)))
	if b = p.Bytes(); b[4] != 104 || b[6] != 1 {
		t.Fatalf("106mm header % X", b[:8])
	}
}

func TestImageNonZeroOrigin(t *testing.T) {
	img := image.NewGray(image.Rect(5, 5, 13, 6)) // 8x1, white except x=5
	for x := 5; x < 13; x++ {
		img.SetGray(x, 5, color.Gray{Y: 255})
	}
	img.SetGray(5, 5, color.Gray{})
	p := New(nil, Options{})
	p.Image(img)
	if want := []byte{0x1D, 0x76, 0x30, 0, 1, 0, 1, 0, 0x80}; !bytes.Equal(p.Bytes(), want) {
		t.Fatalf("got % X", p.Bytes())
	}
}

type countingWriter struct {
	writes int
	buf    bytes.Buffer
	err    error
	short  bool
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	if w.short {
		return len(b) - 1, nil
	}
	return w.buf.Write(b)
}

func TestFlush(t *testing.T) {
	w := &countingWriter{}
	p := New(w, Options{})
	p.Init().Line("张三").QR("https://example.invalid/inv?id=1", 4, QRLevelM).Cut(false)
	want := append([]byte{}, p.Bytes()...)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || !bytes.Equal(w.buf.Bytes(), want) || len(p.Bytes()) != 0 {
		t.Fatalf("writes %d, equal %v, left %d", w.writes, bytes.Equal(w.buf.Bytes(), want), len(p.Bytes()))
	}
	if err := p.Flush(); err != nil || w.writes != 1 {
		t.Fatalf("empty flush: %v, writes %d", err, w.writes)
	}

	boom := errors.New("offline")
	w = &countingWriter{err: boom}
	p = New(w, Options{})
	p.Line("x")
	if err := p.Flush(); !errors.Is(err, boom) || len(p.Bytes()) != 2 {
		t.Fatalf("write error: %v, kept %d", err, len(p.Bytes()))
	}
	w = &countingWriter{short: true}
	p = New(w, Options{})
	p.Line("x")
	if err := p.Flush(); !errors.Is(err, ErrShortWrite) {
		t.Fatalf("short write: %v", err)
	}
	p.Reset()
	if len(p.Bytes()) != 0 || p.Err() != nil || p.Unencodable() != 0 {
		t.Fatal("reset")
	}
}

func FuzzText(f *testing.F) {
	f.Add(ticketText, false)
	f.Add("💊\xff\xfe", true)
	f.Add("", true)
	f.Fuzz(func(t *testing.T, s string, gbk bool) {
		o := Options{}
		if gbk {
			o.CodePage = CodePageGBK
		}
		p := New(nil, o)
		p.Text(s)
		if p.Unencodable() > utf8.RuneCountInString(s) {
			t.Fatalf("unencodable %d > runes", p.Unencodable())
		}
		if !gbk && p.Unencodable() == 0 {
			dec, err := simplifiedchinese.GB18030.NewDecoder().Bytes(p.Bytes())
			if err != nil || string(dec) != s {
				t.Fatalf("round trip %q -> %q (%v)", s, dec, err)
			}
		}
	})
}

func TestPrivateUse(t *testing.T) {
	p := New(nil, Options{})
	p.Text("\ue7d2A\U000F0000")
	if !bytes.Equal(p.Bytes(), []byte("?A?")) || p.Unencodable() != 2 {
		t.Fatalf("got % X, %d", p.Bytes(), p.Unencodable())
	}
}
