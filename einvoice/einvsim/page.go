package einvsim

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/yeqown/go-qrcode/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"ihos"
	"ihos/drivers/ticketimage"
	"ihos/einvoice"
)

// matrixWriter receives the module matrix from go-qrcode.
type matrixWriter struct{ bits [][]bool }

func (w *matrixWriter) Write(m qrcode.Matrix) error {
	w.bits = m.Bitmap()
	return nil
}

func (w *matrixWriter) Close() error { return nil }

// qrModules encodes text as a QR code (error correction M): bits[y][x] is
// true for a dark module, no quiet zone.
func qrModules(text string) [][]bool {
	q, err := qrcode.NewWith(text, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil
	}
	var w matrixWriter
	if err := q.Save(&w); err != nil {
		return nil
	}
	return w.bits
}

// drawQR draws the modules at (x, y), scale dots per module.
func drawQR(img draw.Image, bits [][]bool, x, y, scale int) {
	for r, row := range bits {
		for c, dark := range row {
			if dark {
				draw.Draw(img, image.Rect(x+c*scale, y+r*scale, x+(c+1)*scale, y+(r+1)*scale), image.Black, image.Point{}, draw.Src)
			}
		}
	}
}

// qrPNG is the billQRCode picture: the QR code of text, 4 dots a module
// with a 4-module quiet zone, as PNG.
func qrPNG(text string) []byte {
	bits := qrModules(text)
	if bits == nil {
		return nil
	}
	const scale, quiet = 4, 4
	n := len(bits)
	img := image.NewGray(image.Rect(0, 0, (n+2*quiet)*scale, (n+2*quiet)*scale))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	drawQR(img, bits, quiet*scale, quiet*scale, scale)
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// lookup finds a bill by batch code and number (an original or its red
// bill) and tells whether the number is the red bill's.
func (s *Sim) lookup(code, no string) (Bill, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.byNumber[code+"/"+no]
	if !ok {
		return Bill{}, false, false
	}
	c := *b
	if b.Red != nil {
		r := *b.Red
		c.Red = &r
	}
	red := b.No != no
	return c, red, true
}

var checkTmpl = template.Must(template.New("check").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>电子票据查验</title>
<style>
body{font-family:sans-serif;margin:1.5em auto;max-width:46em;color:#222;padding:0 1em}
h1{font-size:1.3em;color:#b00;text-align:center}
table{border-collapse:collapse;width:100%;margin:.8em 0}
td,th{border:1px solid #caa;padding:.35em .5em;text-align:left}
th{background:#fbeeee;font-weight:normal;white-space:nowrap}
.red{color:#c00;font-weight:bold}.ok{color:#080;font-weight:bold}
.note{color:#666;font-size:.85em}
</style></head><body>
{{if .Missing}}
<h1>电子票据查验</h1>
<p class="red">未查到该电子票据，请核对票据代码、票据号码和校验码。</p>
{{else}}
<h1>{{.Title}}</h1>
<p>查验结果：{{if .IsRed}}<span class="red">电子红票（冲红原票据 {{.Bill.BatchCode}} {{.Bill.No}}）</span>{{else if .Bill.Red}}<span class="red">已冲红</span>（红票号码 {{.Bill.Red.No}}，{{.RedTime}}，原因：{{.Bill.Red.Reason}}）{{else}}<span class="ok">正常</span>{{end}}</p>
<table>
<tr><th>票据代码</th><td>{{.Code}}</td><th>票据号码</th><td>{{.No}}</td></tr>
<tr><th>校验码</th><td>{{.Random}}</td><th>开票日期</th><td>{{.Date}}</td></tr>
<tr><th>交款人</th><td>{{.Bill.Request.Payer}}</td><th>业务流水号</th><td>{{.Bill.BusNo}}</td></tr>
<tr><th>收款单位</th><td colspan="3">{{.Payee}}</td></tr>
</table>
<table><tr><th>项目名称</th><th>数量</th><th>金额（元）</th></tr>
{{range .Bill.Request.ChargeDetail}}<tr><td>{{.ChargeName}}</td><td>{{.Number}}</td><td>{{if $.IsRed}}-{{end}}{{.Amt.Yuan}}</td></tr>
{{end}}<tr><th>合计</th><td></td><td><b>{{if .IsRed}}-{{end}}{{.Bill.Request.TotalAmt.Yuan}}</b></td></tr></table>
<table>
<tr><th>医保统筹基金支付</th><td>{{.Bill.Request.FundPay.Yuan}}</td><th>个人账户支付</th><td>{{.Bill.Request.AccountPay.Yuan}}</td></tr>
<tr><th>个人现金支付</th><td>{{.Bill.Request.SelfCashPay.Yuan}}</td><th>自费</th><td>{{.Bill.Request.OwnPay.Yuan}}</td></tr>
<tr><th>收款人</th><td>{{.Bill.Request.Payee}}</td><th>开票人</th><td>{{.Bill.Request.Author}}</td></tr>
</table>
<p><img src="{{.Picture}}" alt="票据图片" style="max-width:100%;border:1px solid #ccc"></p>
<p><img src="data:image/png;base64,{{.QR}}" alt="票据二维码"></p>
{{end}}
<p class="note">本页面由财政电子票据平台模拟器生成，仅用于测试和演示，不是真实票据。</p>
</body></html>
`))

// checkPage shows a bill as the finance bureau's check page does:
// GET /check?code=..&no=..&random=.. (the random must match).
func (s *Sim) checkPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code, no, random := q.Get("code"), q.Get("no"), q.Get("random")
	b, isRed, ok := s.lookup(code, no)
	data := map[string]any{"Missing": true}
	status := http.StatusNotFound
	if ok {
		rnd, created, qr := b.Random, b.CreatedAt, b.qrPNG
		if isRed {
			rnd, created, qr = b.Red.Random, b.Red.CreatedAt, b.Red.qrPNG
		}
		if rnd == random {
			status = http.StatusOK
			title := billTypeOutpatient
			if b.Service == einvoice.ServiceRegistration {
				title = billTypeReg
			}
			data = map[string]any{
				"Title": title, "Bill": b, "IsRed": isRed, "Code": code, "No": no, "Random": rnd,
				"Date": created.In(ihos.Shanghai).Format("2006-01-02 15:04:05"), "Payee": s.cfg.Payee,
				"QR":      base64.StdEncoding.EncodeToString(qr),
				"Picture": "/bills/" + code + "/" + no + ".png",
			}
			if b.Red != nil {
				data["RedTime"] = b.Red.CreatedAt.In(ihos.Shanghai).Format("2006-01-02 15:04:05")
			}
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	checkTmpl.Execute(w, data)
}

// billPicture draws a bill: GET /bills/{code}/{no}.png.
func (s *Sim) billPicture(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	no, isPNG := strings.CutSuffix(r.PathValue("file"), ".png")
	b, isRed, ok := s.lookup(code, no)
	if !isPNG || !ok {
		http.Error(w, "未查到该电子票据", http.StatusNotFound)
		return
	}
	img := s.drawBill(b, isRed, code, no)
	w.Header().Set("Content-Type", "image/png")
	png.Encode(w, img)
}

var (
	faceOnce sync.Once
	faceBig  font.Face
	faceText font.Face
)

// faces loads the CJK font ticketimage uses, or basicfont (no Chinese
// glyphs) when the system has none.
func faces() (big, text font.Face) {
	faceOnce.Do(func() {
		faceBig, faceText = basicfont.Face7x13, basicfont.Face7x13
		p := ticketimage.FontPath()
		if p == "" {
			return
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return
		}
		coll, err := opentype.ParseCollection(data)
		if err != nil {
			return
		}
		f, err := coll.Font(0)
		if err != nil {
			return
		}
		if bf, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 28, DPI: 72, Hinting: font.HintingFull}); err == nil {
			faceBig = bf
		}
		if tf, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 18, DPI: 72, Hinting: font.HintingFull}); err == nil {
			faceText = tf
		}
	})
	return faceBig, faceText
}

// drawMu serialises drawing: font faces are not safe for concurrent use.
var drawMu sync.Mutex

var (
	inkRed  = image.NewUniform(color.RGBA{0xb0, 0x10, 0x10, 0xff})
	inkText = image.NewUniform(color.RGBA{0x20, 0x20, 0x20, 0xff})
)

// drawBill lays out a plain e-invoice: title, numbers, charge lines, pay
// split, QR code.
func (s *Sim) drawBill(b Bill, isRed bool, code, no string) image.Image {
	drawMu.Lock()
	defer drawMu.Unlock()
	big, text := faces()
	const W, H = 900, 600
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	put := func(face font.Face, ink image.Image, x, y int, str string) {
		d := font.Drawer{Dst: img, Src: ink, Face: face, Dot: fixed.P(x, y)}
		d.DrawString(str)
	}
	frame := func(r image.Rectangle) {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.Set(x, r.Min.Y, inkRed.C)
			img.Set(x, r.Max.Y-1, inkRed.C)
		}
		for y := r.Min.Y; y < r.Max.Y; y++ {
			img.Set(r.Min.X, y, inkRed.C)
			img.Set(r.Max.X-1, y, inkRed.C)
		}
	}
	title := billTypeOutpatient
	if b.Service == einvoice.ServiceRegistration {
		title = billTypeReg
	}
	if isRed {
		title += "（红票）"
	}
	put(big, inkRed, 220, 50, title)
	rnd, created := b.Random, b.CreatedAt
	if isRed {
		rnd, created = b.Red.Random, b.Red.CreatedAt
	}
	put(text, inkText, 30, 95, "票据代码："+code)
	put(text, inkText, 30, 122, "票据号码："+no)
	put(text, inkText, 30, 149, "校验码："+rnd)
	put(text, inkText, 30, 176, "开票日期："+created.In(ihos.Shanghai).Format("2006年01月02日"))
	put(text, inkText, 30, 203, "交款人："+b.Request.Payer)
	frame(image.Rect(20, 220, W-20, 500))
	put(text, inkRed, 40, 250, "项目名称")
	put(text, inkRed, 420, 250, "数量")
	put(text, inkRed, 560, 250, "金额（元）")
	sign := ""
	if isRed {
		sign = "-"
	}
	y := 280
	for i, c := range b.Request.ChargeDetail {
		if i == 6 {
			put(text, inkText, 40, y, "……")
			break
		}
		put(text, inkText, 40, y, c.ChargeName)
		put(text, inkText, 420, y, string(c.Number))
		put(text, inkText, 560, y, sign+c.Amt.Yuan())
		y += 26
	}
	put(text, inkText, 40, 480, "合计（元）："+sign+b.Request.TotalAmt.Yuan()+"   医保统筹："+b.Request.FundPay.Yuan()+
		"   个人账户："+b.Request.AccountPay.Yuan()+"   个人现金："+b.Request.SelfCashPay.Yuan())
	put(text, inkText, 30, 540, "收款单位："+s.cfg.Payee)
	put(text, inkText, 420, 540, "开票人："+b.Request.Author)
	put(text, inkText, 620, 540, "收款人："+b.Request.Payee)
	if bits := qrModules(s.checkURL(s.cfg.PublicURL, code, no, rnd)); bits != nil {
		scale := max(1, 150/len(bits))
		drawQR(img, bits, W-30-len(bits)*scale, 70, scale)
	}
	put(text, inkText, 30, 580, "模拟器生成，非真实票据  "+time.Now().In(ihos.Shanghai).Format("2006-01-02 15:04"))
	return img
}
