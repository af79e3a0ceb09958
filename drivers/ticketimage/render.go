// Package ticketimage draws a decoded ESC/POS ticket (escpos.Ticket) the way
// a 203 dpi thermal printer would print it, so that the printer simulator and
// the console can show what a patient gets without paper.
//
// The layout follows the printer's font A: ASCII characters are 12x24 dots,
// everything else (Chinese, full-width punctuation) 24x24, both magnified by
// GS ! width and height; emphasized text is drawn twice, one dot apart. QR
// codes are encoded again from their data with the module size and error
// correction level the ticket selected; Code128 barcodes are drawn as real
// bars with the human-readable text under them. Output is black and white,
// like thermal paper.
//
// Chinese glyphs come from a CJK font found on the system (see FontPath).
package ticketimage

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"

	"github.com/yeqown/go-qrcode/v2"

	"ihos/drivers/escpos"
)

// Layout in dots.
const (
	// lineSpacing is the default line feed of 1/6 inch at 203 dpi
	// (ESC 2) minus the 24-dot character height.
	lineSpacing = 10
	feedLine    = cellH + lineSpacing
	// margin is the blank paper before the first and after the last item.
	margin = 16
	// codeGap is the blank space above and below a QR code or barcode.
	codeGap = 8
	// cutHeight is the space a cut takes; the dashed line is in its middle.
	cutHeight = 32
	// maxWidth bounds widthDots: wider than any ticket printer.
	maxWidth = 2048
	// maxHeight bounds the image, so that a hostile stream (ESC d 255
	// repeated) cannot allocate gigabytes.
	maxHeight = 100000
)

const (
	white = 255
	black = 0
)

// Render draws a decoded ticket as a thermal printer at 203 dpi would print
// it: widthDots is the printable width (escpos.Width58mm, Width80mm or
// Width106mm) and the image is exactly that wide. Chinese text uses a CJK
// font found on the system. Elements wider than the paper are cut at the
// right edge, as the printer would; a QR code or barcode that cannot be
// encoded is replaced by a line of text saying so.
func Render(t *escpos.Ticket, widthDots int) (*image.Gray, error) {
	img, _, err := render(t, widthDots)
	return img, err
}

// PNG is Render encoded as PNG.
func PNG(t *escpos.Ticket, widthDots int) ([]byte, error) {
	img, err := Render(t, widthDots)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// block is the drawing of one item: its height and a function that draws
// it at y and returns the rectangle its content occupies.
type block struct {
	h    int
	draw func(img *image.Gray, y int) image.Rectangle
}

// render also returns, for tests, the rectangle each item was drawn in
// (parallel to t.Items).
func render(t *escpos.Ticket, width int) (*image.Gray, []image.Rectangle, error) {
	return renderWith(loadGlyphs(), t, width)
}

func renderWith(g *glyphs, t *escpos.Ticket, width int) (*image.Gray, []image.Rectangle, error) {
	if t == nil {
		return nil, nil, errors.New("ticketimage: nil ticket")
	}
	if width < 8 || width > maxWidth {
		return nil, nil, fmt.Errorf("ticketimage: width %d dots out of range 8..%d", width, maxWidth)
	}
	blocks := make([]block, len(t.Items))
	h := 2 * margin
	for i, it := range t.Items {
		blocks[i] = layout(g, it, width)
		h += blocks[i].h
		if h > maxHeight {
			return nil, nil, fmt.Errorf("ticketimage: ticket longer than %d dots", maxHeight)
		}
	}
	img := image.NewGray(image.Rect(0, 0, width, h))
	for i := range img.Pix {
		img.Pix[i] = white
	}
	rects := make([]image.Rectangle, len(blocks))
	y := margin
	for i, b := range blocks {
		rects[i] = b.draw(img, y)
		y += b.h
	}
	return img, rects, nil
}

func layout(g *glyphs, it escpos.Item, width int) block {
	switch it.Kind {
	case escpos.ItemText:
		return textBlock(g, it, width)
	case escpos.ItemFeed:
		return blankBlock(it.Lines * feedLine)
	case escpos.ItemQR:
		return qrBlock(g, it, width)
	case escpos.ItemBarcode:
		return barcodeBlock(g, it, width)
	case escpos.ItemImage:
		return imageBlock(it, width)
	case escpos.ItemCut:
		return block{h: cutHeight, draw: func(img *image.Gray, y int) image.Rectangle {
			r := image.Rect(0, y+cutHeight/2-1, width, y+cutHeight/2+1)
			for x := 0; x < width; x += 12 {
				fill(img, image.Rect(x, r.Min.Y, x+7, r.Max.Y))
			}
			return r
		}}
	}
	return blankBlock(0)
}

func blankBlock(h int) block {
	return block{h: h, draw: func(_ *image.Gray, y int) image.Rectangle {
		return image.Rect(0, y, 0, y+h)
	}}
}

// fill paints r (clipped to img) black.
func fill(img *image.Gray, r image.Rectangle) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[y*img.Stride:]
		for x := r.Min.X; x < r.Max.X; x++ {
			row[x] = black
		}
	}
}

// alignX returns where content w dots wide starts on a line of width.
func alignX(a escpos.Alignment, w, width int) int {
	switch a {
	case escpos.Center:
		return max(0, (width-w)/2)
	case escpos.Right:
		return max(0, width-w)
	}
	return 0
}

// cell is one character placed on a row.
type cell struct {
	g *glyph
	x int
}

// textBlock lays out a line, wrapping it where the next character would
// not fit (the printer does the same), each row aligned on its own.
func textBlock(g *glyphs, it escpos.Item, width int) block {
	return textBlockAt(g, it, 0, width)
}

// textBlockAt is textBlock on the part of the line from left to
// left+width.
func textBlockAt(g *glyphs, it escpos.Item, left, width int) block {
	mw, mh := clamp(it.Width, 1, 8), clamp(it.Height, 1, 8)
	var rows [][]cell
	var rowW []int
	var cur []cell
	x := 0
	for _, r := range it.Text {
		wide := r >= 0x80
		gl := g.get(r, wide)
		w := gl.w * mw
		if x+w > width && len(cur) > 0 {
			rows, rowW = append(rows, cur), append(rowW, x)
			cur, x = nil, 0
		}
		cur = append(cur, cell{gl, x})
		x += w
	}
	if len(cur) > 0 || len(rows) == 0 {
		rows, rowW = append(rows, cur), append(rowW, x)
	}
	rowH := cellH*mh + lineSpacing
	return block{h: len(rows) * rowH, draw: func(img *image.Gray, y int) image.Rectangle {
		for i, row := range rows {
			x0 := left + alignX(it.Align, rowW[i], width)
			for _, c := range row {
				drawGlyph(img, c.g, x0+c.x, y+i*rowH, mw, mh, it.Bold)
			}
		}
		return image.Rect(left, y, left+width, y+len(rows)*rowH)
	}}
}

// drawGlyph draws gl with its top left corner at (x, y), each dot
// magnified mw x mh; bold draws it again one dot to the right.
func drawGlyph(img *image.Gray, gl *glyph, x, y, mw, mh int, bold bool) {
	for gy := 0; gy < cellH; gy++ {
		for gx := 0; gx < gl.w; gx++ {
			if gl.bits[gy*gl.w+gx] == 0 {
				continue
			}
			r := image.Rect(x+gx*mw, y+gy*mh, x+(gx+1)*mw, y+(gy+1)*mh)
			if bold {
				r.Max.X++
			}
			fill(img, r)
		}
	}
}

func clamp(v, lo, hi int) int {
	return min(max(v, lo), hi)
}

// noteBlock is a line of text standing in for something that cannot be
// drawn.
func noteBlock(g *glyphs, msg string, a escpos.Alignment, width int) block {
	return textBlock(g, escpos.Item{Kind: escpos.ItemText, Text: msg, Align: a, Width: 1, Height: 1}, width)
}

// matrixWriter receives the module matrix from go-qrcode: its Writer
// interface is how the library hands out a finished symbol.
type matrixWriter struct{ bits [][]bool }

func (w *matrixWriter) Write(m qrcode.Matrix) error {
	w.bits = m.Bitmap()
	return nil
}

func (w *matrixWriter) Close() error { return nil }

// qrMatrix encodes data as a QR code with the error correction of the
// GS ( k fn 69 level (48..51; anything else is L), model 2 as the encoder
// selects it. bits[y][x] is true for a dark module; there is no quiet zone.
// ASCII data gets the most compact mode for the whole payload; anything else
// is encoded as bytes, as the printer does with what it receives.
func qrMatrix(data string, level byte) ([][]bool, error) {
	ec := qrcode.ErrorCorrectionLow
	switch level {
	case escpos.QRLevelM:
		ec = qrcode.ErrorCorrectionMedium
	case escpos.QRLevelQ:
		ec = qrcode.ErrorCorrectionQuart
	case escpos.QRLevelH:
		ec = qrcode.ErrorCorrectionHighest
	}
	opts := []qrcode.EncodeOption{qrcode.WithErrorCorrectionLevel(ec)}
	for i := 0; i < len(data); i++ {
		if data[i] >= 0x80 {
			opts = append(opts, qrcode.WithEncodingMode(qrcode.EncModeByte))
			break
		}
	}
	q, err := qrcode.NewWith(data, opts...)
	if err != nil {
		return nil, err
	}
	var w matrixWriter
	if err := q.Save(&w); err != nil {
		return nil, err
	}
	if len(w.bits) == 0 {
		return nil, errors.New("ticketimage: empty QR matrix")
	}
	return w.bits, nil
}

// qrBlock draws a QR code with its module size (GS ( k fn 67, 3 if unset),
// made smaller if the symbol would not fit the paper.
func qrBlock(g *glyphs, it escpos.Item, width int) block {
	bits, err := qrMatrix(it.Data, it.QRLevel)
	if err != nil {
		return noteBlock(g, "[二维码无法生成]", it.Align, width)
	}
	n := len(bits)
	m := it.QRModule
	if m <= 0 {
		m = 3
	}
	m = clamp(m, 1, 16)
	for m > 1 && n*m > width {
		m--
	}
	size := n * m
	return block{h: size + 2*codeGap, draw: func(img *image.Gray, y int) image.Rectangle {
		x0 := alignX(it.Align, size, width)
		y0 := y + codeGap
		for r, row := range bits {
			for c, dark := range row {
				if dark {
					fill(img, image.Rect(x0+c*m, y0+r*m, x0+(c+1)*m, y0+(r+1)*m))
				}
			}
		}
		return image.Rect(x0, y0, x0+size, y0+size)
	}}
}

// barcodeBlock draws a Code128 symbol with a 10-module quiet zone each side,
// its bar height (GS h) and module width (GS w, narrowed if the symbol would
// not fit), and the HRI text where GS H puts it.
func barcodeBlock(g *glyphs, it escpos.Item, width int) block {
	mods, err := code128Modules(it.Data)
	if err != nil {
		return noteBlock(g, "[条码无法生成]", it.Align, width)
	}
	m := it.BarModule
	if m <= 0 {
		m = 2
	}
	m = clamp(m, 1, 6)
	for m > 1 && (len(mods)+20)*m > width {
		m--
	}
	barH := it.BarHeight
	if barH <= 0 {
		barH = 80
	}
	barW := len(mods) * m
	x0 := alignX(it.Align, barW, width)
	above := it.HRI == escpos.HRIAbove || it.HRI == escpos.HRIBoth
	below := it.HRI == escpos.HRIBelow || it.HRI == escpos.HRIBoth
	// The HRI text is centred on the bars (font A, 1x1), wrapped to the
	// paper if longer than the barcode.
	hriItem := escpos.Item{Kind: escpos.ItemText, Text: it.Data, Align: escpos.Center, Width: 1, Height: 1}
	hri := textBlockAt(g, hriItem, x0, min(barW, width-x0))
	if len(it.Data)*asciiW > barW {
		hri = textBlock(g, hriItem, width)
	}
	h := barH + 2*codeGap
	if above {
		h += hri.h
	}
	if below {
		h += hri.h
	}
	return block{h: h, draw: func(img *image.Gray, y int) image.Rectangle {
		y += codeGap
		if above {
			hri.draw(img, y)
			y += hri.h
		}
		for i, bar := range mods {
			if bar {
				fill(img, image.Rect(x0+i*m, y, x0+(i+1)*m, y+barH))
			}
		}
		r := image.Rect(x0, y, x0+barW, y+barH)
		if below {
			hri.draw(img, y+barH+2)
		}
		return r
	}}
}

// imageBlock blits a raster, cut at the right edge of the paper.
func imageBlock(it escpos.Item, width int) block {
	if it.Image == nil {
		return blankBlock(0)
	}
	b := it.Image.Bounds()
	return block{h: b.Dy(), draw: func(img *image.Gray, y int) image.Rectangle {
		x0 := alignX(it.Align, b.Dx(), width)
		r := image.Rect(x0, y, x0+b.Dx(), y+b.Dy())
		draw.Draw(img, r, it.Image, b.Min, draw.Src)
		return r.Intersect(img.Rect)
	}}
}
