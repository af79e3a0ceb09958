package ticketimage

import (
	"image"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Character cells of the printer's font A at 203 dpi.
const (
	cellH     = 24 // both halves
	asciiW    = 12 // half-width (ASCII) character
	cjkW      = 24 // full-width character (everything sent as two bytes)
	baselineY = 20 // baseline inside the 24-dot cell
)

// fontCandidates are the CJK fonts tried in order after IHOS_TICKET_FONT:
// the Debian packages fonts-wqy-microhei, fonts-wqy-zenhei,
// fonts-noto-cjk and fonts-arphic-uming, then Windows' SimSun and YaHei.
var fontCandidates = []string{
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/arphic/uming.ttc",
	`C:\Windows\Fonts\simsun.ttc`,
	`C:\Windows\Fonts\msyh.ttc`,
}

// glyphs draws characters into 1-bit cell bitmaps and caches them. A
// font.Face is not safe for concurrent use, so everything goes through mu.
type glyphs struct {
	mu     sync.Mutex
	path   string    // CJK font file, "" when none was found
	cjk    font.Face // full-width characters; nil without a CJK font
	ascii  font.Face // half-width characters
	cache  map[glyphKey]*glyph
	canvas *image.Alpha
}

type glyphKey struct {
	r    rune
	wide bool
}

// glyph is one character cell, w x cellH dots; bits[y*w+x] is 1 for black.
type glyph struct {
	w    int
	bits []byte
}

// maxCached bounds the glyph cache; GB18030 has far fewer printable
// characters in practice, so this only guards against garbage input.
const maxCached = 30000

var (
	fontOnce   sync.Once
	fontGlyphs *glyphs
)

// loadGlyphs finds and parses the font once per process.
func loadGlyphs() *glyphs {
	fontOnce.Do(func() {
		paths := fontCandidates
		if p := os.Getenv("IHOS_TICKET_FONT"); p != "" {
			if _, _, err := openFont(p); err != nil {
				slog.Warn("ticketimage: IHOS_TICKET_FONT unusable, trying the usual places", "path", p, "err", err)
			}
			paths = append([]string{p}, paths...)
		}
		fontGlyphs = newGlyphs(paths)
	})
	return fontGlyphs
}

// newGlyphs uses the first usable CJK font of paths, or basicfont and
// hollow boxes if there is none.
func newGlyphs(paths []string) *glyphs {
	g := &glyphs{cache: map[glyphKey]*glyph{}, canvas: image.NewAlpha(image.Rect(0, 0, 64, cellH))}
	for _, p := range paths {
		cjk, ascii, err := openFont(p)
		if err != nil {
			continue
		}
		g.path, g.cjk, g.ascii = p, cjk, ascii
		break
	}
	if g.ascii == nil {
		g.ascii = basicfont.Face7x13
	}
	return g
}

type errNoCJK struct{}

func (errNoCJK) Error() string { return "font has no glyph for 中" }

// openFont parses the first font of a TTF, OTF, TTC or OTC file and returns
// a face for full-width and one for half-width characters. A font without
// Chinese glyphs is refused.
func openFont(path string) (cjk, ascii font.Face, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	coll, err := opentype.ParseCollection(data) // also accepts a single font
	if err != nil {
		return nil, nil, err
	}
	f, err := coll.Font(0)
	if err != nil {
		return nil, nil, err
	}
	if i, err := f.GlyphIndex(nil, '中'); err != nil || i == 0 {
		return nil, nil, errNoCJK{}
	}
	cjk, err = opentype.NewFace(f, &opentype.FaceOptions{Size: 23, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, nil, err
	}
	ascii, err = opentype.NewFace(f, &opentype.FaceOptions{Size: 22, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, nil, err
	}
	return cjk, ascii, nil
}

// FontPath returns the CJK font file tickets are drawn with, or "" when
// none was found: Chinese characters are then drawn as hollow boxes, and
// callers should warn (install fonts-wqy-microhei or set IHOS_TICKET_FONT).
func FontPath() string { return loadGlyphs().path }

// get returns the cell bitmap of r: 24 dots wide for wide characters
// (anything but ASCII), 12 for ASCII.
func (g *glyphs) get(r rune, wide bool) *glyph {
	k := glyphKey{r, wide}
	g.mu.Lock()
	defer g.mu.Unlock()
	if gl, ok := g.cache[k]; ok {
		return gl
	}
	var gl *glyph
	switch {
	case wide && g.cjk == nil:
		gl = hollowBox()
	case wide:
		gl = g.draw(g.cjk, r, cjkW)
	default:
		gl = g.draw(g.ascii, r, asciiW)
	}
	if len(g.cache) < maxCached {
		g.cache[k] = gl
	}
	return gl
}

// hollowBox stands in for a character no font can draw.
func hollowBox() *glyph {
	gl := &glyph{w: cjkW, bits: make([]byte, cjkW*cellH)}
	for i := 2; i < cjkW-2; i++ {
		gl.bits[2*cjkW+i] = 1
		gl.bits[(cellH-3)*cjkW+i] = 1
		gl.bits[i*cjkW+2] = 1
		gl.bits[i*cjkW+cjkW-3] = 1
	}
	return gl
}

// draw renders r with face into a cell w dots wide: the glyph is drawn on
// the baseline, cut to its inked columns, narrowed if wider than the cell
// (proportional Latin letters such as W in a 12-dot cell) and centred, as
// a printer's fixed-pitch font would place it. Pixels at least half
// covered print black.
func (g *glyphs) draw(face font.Face, r rune, w int) *glyph {
	gl := &glyph{w: w, bits: make([]byte, w*cellH)}
	c := g.canvas
	clear(c.Pix)
	const originX = 16
	d := font.Drawer{Dst: c, Src: image.Opaque, Face: face, Dot: fixed.P(originX, baselineY)}
	if face == basicfont.Face7x13 {
		d.Dot = fixed.P(originX, 17)
	}
	d.DrawString(string(r))
	cw := c.Bounds().Dx()
	minX, maxX := cw, -1
	for y := 0; y < cellH; y++ {
		for x := 0; x < cw; x++ {
			if c.Pix[y*c.Stride+x] >= 0x80 {
				minX = min(minX, x)
				maxX = max(maxX, x)
			}
		}
	}
	if maxX < 0 {
		return gl // blank (space)
	}
	inkW := maxX - minX + 1
	limit := w - 1 // leave one dot between characters
	if w == cjkW {
		limit = w
	}
	dw := min(inkW, limit)
	x0 := (w - dw) / 2
	for y := 0; y < cellH; y++ {
		for x := 0; x < dw; x++ {
			sx := minX + x*inkW/dw
			if c.Pix[y*c.Stride+sx] >= 0x80 {
				gl.bits[y*w+x0+x] = 1
			}
		}
	}
	return gl
}
