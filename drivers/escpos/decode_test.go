package escpos

import (
	"errors"
	"image"
	"image/color"
	"reflect"
	"strings"
	"testing"
)

// receiptImage is 10x3: row 0 all black, row 1 black at x=0 and x=9,
// row 2 white.
func receiptImage() *image.Gray {
	img := image.NewGray(image.Rect(0, 0, 10, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 10; x++ {
			v := uint8(255)
			if y == 0 || (y == 1 && (x == 0 || x == 9)) {
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	return img
}

const receiptQR = "https://example.invalid/reg?id=20240601-0042&h=a{b"

func receipt(t testing.TB, codePage string) []byte {
	p := New(nil, Options{CodePage: codePage})
	p.Raw(StatusRequest(StatusPaper))
	p.Init().
		Align(Center).Bold(true).Size(2, 2).Line("挂号凭条").
		Size(1, 1).Bold(false).Align(Left).
		Line("姓名：张三").
		Text("科室：内科").Raw([]byte("\r\n")).
		Raw([]byte{esc, '!', 0x08}).Text("挂号费：").Raw([]byte{esc, '!', 0, esc, '-', 1}).Line("￥12.50").
		Raw([]byte{esc, '-', 0}).
		Feed(1).
		Barcode128("RX{2024").
		Align(Center).QR(receiptQR, 4, QRLevelM).
		Image(receiptImage()).
		Feed(3).
		Cut(false)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return append([]byte{}, p.Bytes()...)
}

func TestDecodeReceipt(t *testing.T) {
	for _, cp := range []string{CodePageGB18030, CodePageGBK} {
		t.Run(cp, func(t *testing.T) {
			tk, err := Decode(receipt(t, cp), cp)
			if err != nil {
				t.Fatal(err)
			}
			wantLines := []string{"挂号凭条", "姓名：张三", "科室：内科", "挂号费：￥12.50", "", "", "", ""}
			if !reflect.DeepEqual(tk.Lines, wantLines) {
				t.Fatalf("lines %q\nwant  %q", tk.Lines, wantLines)
			}
			wantBold := []bool{true, false, false, true, false, false, false, false}
			if !reflect.DeepEqual(tk.Bold, wantBold) {
				t.Fatalf("bold %v", tk.Bold)
			}
			wantAlign := []Alignment{Center, Left, Left, Left, Left, Center, Center, Center}
			if !reflect.DeepEqual(tk.Align, wantAlign) {
				t.Fatalf("align %v", tk.Align)
			}
			if !reflect.DeepEqual(tk.Barcodes, []string{"RX{2024"}) {
				t.Fatalf("barcodes %q", tk.Barcodes)
			}
			if !reflect.DeepEqual(tk.QRCodes, []string{receiptQR}) {
				t.Fatalf("qr %q", tk.QRCodes)
			}
			if tk.Cuts != 1 {
				t.Fatalf("cuts %d", tk.Cuts)
			}
			if len(tk.Images) != 1 {
				t.Fatalf("%d images", len(tk.Images))
			}
			got, ok := tk.Images[0].(*image.Gray)
			if !ok || got.Bounds() != image.Rect(0, 0, 16, 3) {
				t.Fatalf("image %T %v", tk.Images[0], tk.Images[0].Bounds())
			}
			src := receiptImage()
			for y := 0; y < 3; y++ {
				for x := 0; x < 16; x++ {
					want := uint8(255) // padding columns are white
					if x < 10 {
						want = src.GrayAt(x, y).Y
					}
					if g := got.GrayAt(x, y).Y; g != want {
						t.Fatalf("pixel (%d,%d) = %d, want %d", x, y, g, want)
					}
				}
			}
		})
	}
}

func TestDecodeItems(t *testing.T) {
	tk, err := Decode(receipt(t, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	// Image is compared separately; the rest field by field.
	want := []Item{
		{Kind: ItemText, Text: "挂号凭条", Align: Center, Bold: true, Width: 2, Height: 2},
		{Kind: ItemText, Text: "姓名：张三", Width: 1, Height: 1},
		{Kind: ItemText, Text: "科室：内科", Width: 1, Height: 1},
		// ESC ! 0x08 sets bold and resets the size to 1x1.
		{Kind: ItemText, Text: "挂号费：￥12.50", Bold: true, Width: 1, Height: 1},
		{Kind: ItemFeed, Width: 1, Height: 1, Lines: 1},
		{Kind: ItemBarcode, Data: "RX{2024", BarHeight: 80, BarModule: 2, HRI: HRIBelow},
		{Kind: ItemQR, Data: receiptQR, Align: Center, QRModule: 4, QRLevel: QRLevelM},
		{Kind: ItemImage, Align: Center},
		{Kind: ItemFeed, Align: Center, Width: 1, Height: 1, Lines: 3},
		{Kind: ItemCut, Align: Center},
	}
	if len(tk.Items) != len(want) {
		t.Fatalf("%d items, want %d: %+v", len(tk.Items), len(want), tk.Items)
	}
	for i, it := range tk.Items {
		if it.Kind == ItemImage {
			if it.Image != tk.Images[0] {
				t.Errorf("item %d: image is not Images[0]", i)
			}
			it.Image = nil
		}
		if !reflect.DeepEqual(it, want[i]) {
			t.Errorf("item %d = %+v\nwant     %+v", i, it, want[i])
		}
	}
}

func TestDecodeItemStyles(t *testing.T) {
	b := []byte{
		esc, '!', 0x30, 'A', lf, // ESC ! double width and height
		gs, '!', 0x72, 'B', gs, '!', 0, 'b', lf, // 8x3, changed mid-line: the line keeps 8x3
		esc, '@', 'C', lf, // ESC @ resets the size
		gs, '(', 'k', 4, 0, 49, 80, 48, 'Q', gs, '(', 'k', 3, 0, 49, 81, 48, // QR defaults: module 3, level L
		gs, 'k', 73, 3, '{', 'B', 'x', // barcode defaults: 162 dots, module 3, no HRI
	}
	tk, err := Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{Kind: ItemText, Text: "A", Width: 2, Height: 2},
		{Kind: ItemText, Text: "Bb", Width: 8, Height: 3},
		{Kind: ItemText, Text: "C", Width: 1, Height: 1},
		{Kind: ItemQR, Data: "Q", QRModule: 3, QRLevel: QRLevelL},
		{Kind: ItemBarcode, Data: "x", BarHeight: 162, BarModule: 3, HRI: HRINone},
	}
	if !reflect.DeepEqual(tk.Items, want) {
		t.Fatalf("items %+v\nwant  %+v", tk.Items, want)
	}
}

func TestDecodeFeedAndPending(t *testing.T) {
	// ESC d with pending text prints it as the first of the n lines;
	// unterminated text at the end is still a line; ESC @ drops pending text.
	b := []byte("A\x1bd\x02B\x1bd\x00dropped\x1b@C")
	tk, err := Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A", "", "B", "C"}; !reflect.DeepEqual(tk.Lines, want) {
		t.Fatalf("lines %q", tk.Lines)
	}
}

func TestDecodeErrors(t *testing.T) {
	qrStore := []byte{gs, '(', 'k', 3, 0, 49, 80, 48}
	tests := []struct {
		name string
		in   []byte
		off  int
	}{
		{"unknown ESC", []byte("ab\x1b\x01"), 2},
		{"unknown GS", []byte("\x1d\x01"), 0},
		{"unknown FS", []byte("x\x1c\x01"), 1},
		{"DLE not EOT", []byte{dle, 5, 1}, 0},
		{"control byte", []byte("a\x07"), 1},
		{"chinese before FS &", []byte{'a', 0xD5, 0xC5}, 1},
		{"chinese after ESC @", []byte{fs, '&', esc, '@', 0xD5, 0xC5}, 4},
		{"bad align", []byte{esc, 'a', 3}, 0},
		{"barcode type", []byte{gs, 'k', 4, 'A', 0}, 0},
		{"barcode no {B", []byte{gs, 'k', 73, 2, '{', 'A'}, 0},
		{"barcode empty", []byte{gs, 'k', 73, 2, '{', 'B'}, 0},
		{"barcode code set change", []byte{gs, 'k', 73, 5, '{', 'B', 'x', '{', 'C'}, 7},
		{"qr print without data", qrPrint, 0},
		{"qr store empty", qrStore, 0},
		{"qr size", []byte{gs, '(', 'k', 3, 0, 49, 67, 17}, 0},
		{"raster empty", []byte{gs, 'v', '0', 0, 0, 0, 1, 0}, 0},
		{"raster mode", []byte{gs, 'v', '0', 9, 1, 0, 1, 0, 0}, 0},
		{"cut mode", []byte{gs, 'V', 7}, 0},
		{"truncated raster", []byte{'x', gs, 'v', '0', 0, 2, 0, 2, 0, 1, 2, 3}, 1},
		{"truncated QR", []byte{gs, '(', 'k', 10, 0, 49, 80, 48, 'a'}, 0},
		{"truncated ESC", []byte{esc}, 0},
		{"truncated cut", []byte{gs, 'V', 65}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := Decode(tt.in, "")
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if de.Offset != tt.off {
				t.Fatalf("offset %d, want %d (%v)", de.Offset, tt.off, err)
			}
			if tk == nil {
				t.Fatal("nil ticket")
			}
		})
	}
	if _, err := Decode(nil, "Big5"); err == nil {
		t.Fatal("unknown code page accepted")
	}
}

func TestDecodeSkipsKnownLengthCommands(t *testing.T) {
	b := []byte{esc, '@', esc, 'p', 0, 25, 250, gs, 'B', 1, gs, '(', 'L', 2, 0, 48, 69, fs, '!', 0, 'o', 'k', lf}
	tk, err := Decode(b, "")
	if err != nil || !reflect.DeepEqual(tk.Lines, []string{"ok"}) {
		t.Fatalf("%q, %v", tk.Lines, err)
	}
}

func TestDecodeTruncated(t *testing.T) {
	full := receipt(t, "")
	want, err := Decode(full, "")
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= len(full); n++ {
		tk, err := Decode(full[:n], "")
		if tk == nil {
			t.Fatalf("len %d: nil ticket", n)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset >= n {
				t.Fatalf("len %d: %v", n, err)
			}
			if !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("len %d: %v", n, err)
			}
		}
		if tk.Cuts > 0 && n < len(full) {
			t.Fatalf("len %d: cut decoded from a truncated stream", n)
		}
		if len(tk.Lines) > len(want.Lines) || len(tk.QRCodes) > 1 || len(tk.Barcodes) > 1 || len(tk.Images) > 1 {
			t.Fatalf("len %d: more decoded than in the full stream: %+v", n, tk)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(receipt(f, ""), false)
	f.Add(receipt(f, CodePageGBK), true)
	f.Add([]byte{gs, 'v', '0', 0, 0xFF, 0xFF, 0xFF, 0xFF}, false)
	f.Add([]byte{gs, '(', 'k', 0xFF, 0xFF, 49, 80}, false)
	f.Fuzz(func(t *testing.T, b []byte, gbk bool) {
		cp := CodePageGB18030
		if gbk {
			cp = CodePageGBK
		}
		tk, err := Decode(b, cp)
		if tk == nil {
			t.Fatal("nil ticket")
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset >= len(b) {
				t.Fatalf("bad error %v", err)
			}
		}
		if len(tk.Align) != len(tk.Lines) || len(tk.Bold) != len(tk.Lines) {
			t.Fatal("style slices out of step with lines")
		}
		var lines, qrs, bars, imgs, cuts int
		for _, it := range tk.Items {
			switch it.Kind {
			case ItemText:
				if it.Text != tk.Lines[lines] {
					t.Fatalf("item text %q, line %d is %q", it.Text, lines, tk.Lines[lines])
				}
				lines++
			case ItemFeed:
				lines += it.Lines
			case ItemQR:
				qrs++
			case ItemBarcode:
				bars++
			case ItemImage:
				imgs++
			case ItemCut:
				cuts++
			}
		}
		if lines != len(tk.Lines) || qrs != len(tk.QRCodes) || bars != len(tk.Barcodes) || imgs != len(tk.Images) || cuts != tk.Cuts {
			t.Fatalf("items out of step: %d lines %d qr %d bars %d images %d cuts; ticket %+v", lines, qrs, bars, imgs, cuts, tk)
		}
		for _, img := range tk.Images {
			r := img.Bounds()
			if r.Dx()*r.Dy() > 8*len(b) {
				t.Fatalf("image %v larger than input", r)
			}
		}
	})
}
