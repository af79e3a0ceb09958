package ticketimage

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ihos/drivers/escpos"
)

const (
	testQR      = "https://ihos.example/r?id=20240601-0042"
	testBarcode = "RX2024{0601"
)

// logo is a 40x40 ring, standing in for a hospital logo.
func logo() image.Image {
	img := image.NewGray(image.Rect(0, 0, 40, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 40; x++ {
			dx, dy := x-20, y-20
			d := dx*dx + dy*dy
			v := uint8(255)
			if d < 400 && d > 200 {
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	return img
}

// receipt is a registration ticket as the tickets package would produce it.
func receipt(t testing.TB) *escpos.Ticket {
	t.Helper()
	p := escpos.New(nil, escpos.Options{})
	p.Init().
		Align(escpos.Center).Image(logo()).
		Bold(true).Size(2, 2).Line("门诊挂号凭条").Size(1, 1).Bold(false).
		Line("仁心医院 · Internet Hospital").
		Align(escpos.Left).
		Line("--------------------------------").
		Line("姓名：张三        性别：男").
		Line("科室：心血管内科  诊室：3 诊室").
		Line("医生：李医生（主任医师）").
		Line("就诊时间：2024-06-01 09:30").
		Bold(true).Line("挂号费：￥12.50").Bold(false).
		Align(escpos.Right).Line("第 0042 号").
		Align(escpos.Center).
		Barcode128(testBarcode).
		QR(testQR, 6, escpos.QRLevelM).
		Line("请扫码查看电子凭条").
		Feed(2).
		Cut(false)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	tk, err := escpos.Decode(p.Bytes(), "")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// needFont fails in CI and skips elsewhere when no CJK font is installed.
func needFont(t *testing.T) {
	t.Helper()
	if FontPath() != "" {
		return
	}
	msg := "no CJK font found: install fonts-wqy-microhei (scripts/install-chromium does) or set IHOS_TICKET_FONT"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// savePNG writes img to $BROWSERTEST_SHOTS (or the test's temp dir) to look at.
func savePNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	dir := os.Getenv("BROWSERTEST_SHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
}

func itemIndex(t *testing.T, tk *escpos.Ticket, kind escpos.ItemKind, text string) int {
	t.Helper()
	for i, it := range tk.Items {
		if it.Kind == kind && (text == "" || it.Text == text) {
			return i
		}
	}
	t.Fatalf("no %v item %q", kind, text)
	return -1
}

// inkBounds returns the bounding box of the black pixels of img inside r.
func inkBounds(img *image.Gray, r image.Rectangle) image.Rectangle {
	var ink image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if img.GrayAt(x, y).Y < 128 {
				ink = ink.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return ink
}

func TestRenderReceipt(t *testing.T) {
	tk := receipt(t)
	for _, width := range []int{escpos.Width58mm, escpos.Width80mm, escpos.Width106mm} {
		img, rects, err := render(tk, width)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds().Dx() != width {
			t.Fatalf("width %d, want %d", img.Bounds().Dx(), width)
		}
		if len(rects) != len(tk.Items) {
			t.Fatalf("%d rects for %d items", len(rects), len(tk.Items))
		}
		if width == escpos.Width80mm {
			savePNG(t, "ticketimage-receipt-80mm.png", img)
		}
		if width == escpos.Width58mm {
			savePNG(t, "ticketimage-receipt-58mm.png", img)
		}
	}
	img, rects, err := render(tk, escpos.Width80mm)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("qr", func(t *testing.T) {
		i := itemIndex(t, tk, escpos.ItemQR, "")
		bits, err := qrMatrix(testQR, escpos.QRLevelM)
		if err != nil {
			t.Fatal(err)
		}
		n, m := len(bits), 6
		r := rects[i]
		if r.Dx() != n*m || r.Dy() != n*m {
			t.Fatalf("QR drawn %v, want %d modules of %d dots", r, n, m)
		}
		if c := r.Min.X + r.Dx()/2; c < escpos.Width80mm/2-m || c > escpos.Width80mm/2+m {
			t.Errorf("QR not centred: %v", r)
		}
		// Every pixel of every module has the module's colour.
		for y := 0; y < n*m; y++ {
			for x := 0; x < n*m; x++ {
				dark := img.GrayAt(r.Min.X+x, r.Min.Y+y).Y == black
				if dark != bits[y/m][x/m] {
					t.Fatalf("module (%d,%d) pixel (%d,%d) dark=%v", x/m, y/m, x, y, dark)
				}
			}
		}
		// A QR symbol is 21 + 4k modules with finder patterns at three corners.
		if n < 21 || (n-21)%4 != 0 || !bits[0][0] || !bits[0][n-1] || !bits[n-1][0] {
			t.Errorf("matrix %d modules does not look like a QR code", n)
		}
	})

	t.Run("barcode", func(t *testing.T) {
		i := itemIndex(t, tk, escpos.ItemBarcode, "")
		mods, err := code128Modules(testBarcode)
		if err != nil {
			t.Fatal(err)
		}
		r := rects[i]
		m := tk.Items[i].BarModule
		if r.Dx() != len(mods)*m || r.Dy() != tk.Items[i].BarHeight {
			t.Fatalf("barcode drawn %v, want %d modules of %d dots, %d high", r, len(mods), m, tk.Items[i].BarHeight)
		}
		for k, bar := range mods {
			for _, y := range []int{r.Min.Y, r.Max.Y - 1} {
				if dark := img.GrayAt(r.Min.X+k*m, y).Y == black; dark != bar {
					t.Fatalf("module %d dark=%v", k, dark)
				}
			}
		}
		// HRI text under the bars.
		below := inkBounds(img, image.Rect(r.Min.X, r.Max.Y+1, r.Max.X, r.Max.Y+cellH+2))
		if below.Empty() {
			t.Error("no HRI text under the barcode")
		}
	})

	t.Run("chinese", func(t *testing.T) {
		needFont(t)
		i := itemIndex(t, tk, escpos.ItemText, "姓名：张三        性别：男")
		r := rects[i]
		// 姓, left aligned, is the cell at x 0..24 of the line's first row.
		ink := inkBounds(img, image.Rect(0, r.Min.Y, cjkW, r.Min.Y+cellH))
		if ink.Dx() < 16 || ink.Dy() < 16 {
			t.Errorf("姓 drawn with ink %v, want a full glyph", ink)
		}
		// It is a real glyph, not the hollow box drawn without a font.
		box := hollowBox()
		same := true
		for y := 0; y < cellH; y++ {
			for x := 0; x < cjkW; x++ {
				dark := img.GrayAt(x, r.Min.Y+y).Y == black
				if dark != (box.bits[y*cjkW+x] == 1) {
					same = false
				}
			}
		}
		if same {
			t.Error("姓 drawn as a hollow box")
		}
		// Double size title: twice as high.
		title := rects[itemIndex(t, tk, escpos.ItemText, "门诊挂号凭条")]
		if ink := inkBounds(img, title); ink.Dy() < 2*cellH-12 {
			t.Errorf("double-height title ink %v", ink)
		}
	})

	t.Run("centred", func(t *testing.T) {
		r := rects[itemIndex(t, tk, escpos.ItemText, "请扫码查看电子凭条")]
		ink := inkBounds(img, r)
		left, right := ink.Min.X, escpos.Width80mm-ink.Max.X
		if d := left - right; d < -asciiW || d > asciiW {
			t.Errorf("centred line has margins %d and %d", left, right)
		}
		r = rects[itemIndex(t, tk, escpos.ItemText, "第 0042 号")]
		if ink := inkBounds(img, r); escpos.Width80mm-ink.Max.X > asciiW {
			t.Errorf("right-aligned line ends at %d", ink.Max.X)
		}
	})

	t.Run("image", func(t *testing.T) {
		r := rects[itemIndex(t, tk, escpos.ItemImage, "")]
		if r.Dx() != 40 || r.Dy() != 40 {
			t.Fatalf("image drawn %v", r)
		}
		src := logo().(*image.Gray)
		for y := 0; y < 40; y++ {
			for x := 0; x < 40; x++ {
				if img.GrayAt(r.Min.X+x, r.Min.Y+y).Y != src.GrayAt(x, y).Y {
					t.Fatalf("image pixel (%d,%d) differs", x, y)
				}
			}
		}
	})

	t.Run("cut", func(t *testing.T) {
		r := rects[itemIndex(t, tk, escpos.ItemCut, "")]
		ink := inkBounds(img, r)
		if ink.Dx() < escpos.Width80mm-12 {
			t.Errorf("cut line %v", ink)
		}
	})
}

func TestRenderWithoutFont(t *testing.T) {
	g := newGlyphs([]string{"/nonexistent/font.ttc", "render_test.go"})
	if g.path != "" || g.cjk != nil {
		t.Fatalf("font %q loaded from nothing", g.path)
	}
	tk := &escpos.Ticket{Items: []escpos.Item{{Kind: escpos.ItemText, Text: "中A", Width: 1, Height: 1}}}
	img, rects, err := renderWith(g, tk, escpos.Width58mm)
	if err != nil {
		t.Fatal(err)
	}
	y := rects[0].Min.Y
	box := hollowBox()
	for gy := 0; gy < cellH; gy++ {
		for gx := 0; gx < cjkW; gx++ {
			if dark := img.GrayAt(gx, y+gy).Y == black; dark != (box.bits[gy*cjkW+gx] == 1) {
				t.Fatalf("中 without a font is not a hollow box at (%d,%d)", gx, gy)
			}
		}
	}
	if ink := inkBounds(img, image.Rect(cjkW, y, cjkW+asciiW, y+cellH)); ink.Dx() < 4 || ink.Dy() < 6 {
		t.Errorf("A drawn with basicfont: ink %v", ink)
	}
	savePNG(t, "ticketimage-nofont.png", img)
}

func TestPNG(t *testing.T) {
	b, err := PNG(receipt(t), escpos.Width58mm)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != escpos.Width58mm {
		t.Fatalf("PNG width %d", img.Bounds().Dx())
	}
}

func TestRenderEdgeCases(t *testing.T) {
	if _, err := Render(nil, escpos.Width80mm); err == nil {
		t.Error("nil ticket rendered")
	}
	if _, err := Render(&escpos.Ticket{}, 0); err == nil {
		t.Error("zero width rendered")
	}
	img, err := Render(&escpos.Ticket{}, escpos.Width80mm)
	if err != nil || img.Bounds().Dx() != escpos.Width80mm {
		t.Fatalf("empty ticket: %v %v", img, err)
	}
	// Too long for one row: wraps instead of running off the paper.
	long := strings.Repeat("长", 30) // 720 dots at 1x
	tk := &escpos.Ticket{Items: []escpos.Item{{Kind: escpos.ItemText, Text: long, Width: 1, Height: 1}}}
	_, rects, err := render(tk, escpos.Width80mm)
	if err != nil {
		t.Fatal(err)
	}
	if rects[0].Dy() != 2*(cellH+lineSpacing) {
		t.Errorf("30 wide characters on 576 dots: %d dots high, want two rows", rects[0].Dy())
	}
	// Undrawable codes become a note, not an error.
	tk = &escpos.Ticket{Items: []escpos.Item{
		{Kind: escpos.ItemQR, Data: strings.Repeat("x", 8000)},
		{Kind: escpos.ItemBarcode, Data: "中"},
		{Kind: escpos.ItemFeed, Lines: 3},
	}}
	if _, err := Render(tk, escpos.Width58mm); err != nil {
		t.Fatal(err)
	}
	// A hostile stream cannot make a huge image.
	tk = &escpos.Ticket{Items: []escpos.Item{{Kind: escpos.ItemFeed, Lines: 1 << 20}}}
	if _, err := Render(tk, escpos.Width58mm); err == nil {
		t.Error("million-line feed rendered")
	}
}

func TestCode128(t *testing.T) {
	seen := map[string]bool{}
	for v, p := range code128Patterns {
		sum := 0
		for _, c := range p {
			sum += int(c - '0')
		}
		want := 11
		if v == code128Stop {
			want = 13
		}
		if sum != want || seen[p] {
			t.Errorf("pattern %d %q: %d modules, duplicate %v", v, p, sum, seen[p])
		}
		seen[p] = true
	}
	// "Wikipedia" in code set B: check symbol (104 + Σ value·position) mod 103.
	syms, err := code128B("Wikipedia")
	if err != nil {
		t.Fatal(err)
	}
	// W=55 i=73 k=75 i=73 p=80 e=69 d=68 i=73 a=65
	sum := 104 + 55*1 + 73*2 + 75*3 + 73*4 + 80*5 + 69*6 + 68*7 + 73*8 + 65*9
	if syms[0] != 104 || syms[len(syms)-2] != sum%103 || syms[len(syms)-1] != 106 || len(syms) != 12 {
		t.Fatalf("symbols %v", syms)
	}
	mods, err := code128Modules("Wikipedia")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 11*12+2 || !mods[0] || !mods[len(mods)-1] {
		t.Fatalf("%d modules", len(mods))
	}
	// Decode the bars back: widths of 6 elements per symbol.
	var got []int
	for i := 0; i+11 <= len(mods)-13; i += 11 {
		var p []byte
		run := 1
		for k := 1; k <= 11; k++ {
			if k == 11 || mods[i+k] != mods[i+k-1] {
				p = append(p, byte('0'+run))
				run = 1
				continue
			}
			run++
		}
		for v, q := range code128Patterns {
			if q == string(p) {
				got = append(got, v)
			}
		}
	}
	var text []byte
	for _, v := range got[1 : len(got)-1] {
		text = append(text, byte(v+32))
	}
	if string(text) != "Wikipedia" {
		t.Fatalf("bars decode to %q", text)
	}
	if _, err := code128B("é"); err == nil {
		t.Error("non-ASCII accepted")
	}
}

func BenchmarkRenderReceipt(b *testing.B) {
	tk := receipt(b)
	if _, err := Render(tk, escpos.Width80mm); err != nil { // warm the glyph cache
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Render(tk, escpos.Width80mm); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPNGReceipt(b *testing.B) {
	tk := receipt(b)
	for b.Loop() {
		if _, err := PNG(tk, escpos.Width80mm); err != nil {
			b.Fatal(err)
		}
	}
}
