package escpos

import (
	"errors"
	"image"
)

// Image appends img as raster bit images (GS v 0 m xL xH yL yH d1..dk, m = 0
// normal density). Pixels darker than 50% luminance print black; transparent
// pixels are treated as white (the image is composed over white paper).
// Images wider than the printer width (Options.Width, and never more than
// 1024 dots, the GS v 0 limit of 128 bytes per row) are scaled down with
// nearest-neighbour sampling, keeping the aspect ratio. Each GS v 0 command
// carries at most MaxBandRows rows; taller images are split into bands.
// xL xH is the number of bytes per row, ceil(width/8); unused low bits of
// the last byte of each row are 0 (white).
func (p *Printer) Image(img image.Image) *Printer {
	if img == nil {
		p.fail(errors.New("escpos: nil image"))
		return p
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if sw <= 0 || sh <= 0 {
		p.fail(errors.New("escpos: empty image"))
		return p
	}
	maxW := p.width
	if maxW > maxRasterBytesPerRow*8 {
		maxW = maxRasterBytesPerRow * 8
	}
	dw, dh := sw, sh
	if sw > maxW {
		dw = maxW
		dh = (sh*maxW + sw/2) / sw
		if dh < 1 {
			dh = 1
		}
	}
	rowBytes := (dw + 7) / 8
	for y0 := 0; y0 < dh; y0 += MaxBandRows {
		rows := dh - y0
		if rows > MaxBandRows {
			rows = MaxBandRows
		}
		p.buf = append(p.buf, gs, 'v', '0', 0,
			byte(rowBytes), byte(rowBytes>>8), byte(rows), byte(rows>>8))
		for y := y0; y < y0+rows; y++ {
			sy := b.Min.Y + y*sh/dh
			start := len(p.buf)
			p.buf = append(p.buf, make([]byte, rowBytes)...)
			row := p.buf[start:]
			for x := 0; x < dw; x++ {
				sx := b.Min.X + x*sw/dw
				if dark(img, sx, sy) {
					row[x>>3] |= 0x80 >> uint(x&7)
				}
			}
		}
	}
	return p
}

// dark reports whether the pixel, composed over white, has luminance below
// 50%. Luminance uses the same ITU-R BT.601 weights as image/color.GrayModel.
func dark(img image.Image, x, y int) bool {
	r, g, b, a := img.At(x, y).RGBA() // premultiplied, 0..0xffff
	white := 0xffff - a
	r += white
	g += white
	b += white
	lum := (19595*r + 38470*g + 7471*b + 1<<15) >> 16 // 0..0xffff
	return lum < 0x8000
}
