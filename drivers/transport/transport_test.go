package transport

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"ihos"
	"ihos/drivers/escpos"
)

// ticket builds a small text ticket (no raster or QR data, so the bytes
// contain no accidental DLE EOT).
func ticket(t *testing.T, name string) []byte {
	t.Helper()
	var b bytes.Buffer
	p := escpos.New(&b, escpos.Options{Width: escpos.Width80mm, CodePage: escpos.CodePageGB18030})
	p.Init().Align(escpos.Center).Bold(true).Line("挂号凭条").Bold(false).
		Align(escpos.Left).Line(name).Line("诊室：内科 3 诊室").Feed(3).Cut(false)
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkError fails unless err is an *ihos.Error with code and a message
// containing Chinese text (and want, if not empty).
func checkError(t *testing.T, err error, code, want string) {
	t.Helper()
	var e *ihos.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *ihos.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, err, code)
	}
	if !strings.ContainsFunc(e.Message, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		t.Errorf("message %q is not Chinese", e.Message)
	}
	if want != "" && !strings.Contains(e.Message, want) {
		t.Errorf("message = %q, want it to contain %q", e.Message, want)
	}
}

func TestParseTCPAddr(t *testing.T) {
	good := map[string]string{
		"192.168.1.50:9100":  "192.168.1.50:9100",
		"192.168.1.50":       "192.168.1.50:9100",
		"printer-1.lan":      "printer-1.lan:9100",
		"printer-1.lan:9101": "printer-1.lan:9101",
		"[fe80::1]:9100":     "[fe80::1]:9100",
		"[fe80::1]":          "[fe80::1]:9100",
		"fe80::1":            "[fe80::1]:9100",
		"10.0.0.2:09100":     "10.0.0.2:9100",
	}
	for in, want := range good {
		got, err := parseTCPAddr(in)
		if err != nil || got != want {
			t.Errorf("parseTCPAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{":9100", "host:0", "host:65536", "host:abc", "a b:9100", "fe80::zz", "/dev/usb/lp0", "a,b"} {
		_, err := parseTCPAddr(in)
		if err == nil {
			t.Errorf("parseTCPAddr(%q) succeeded", in)
			continue
		}
		checkError(t, err, ihos.EInvalid, "")
	}
}

func TestParseSerialAddr(t *testing.T) {
	good := []struct {
		in   string
		want serialConfig
	}{
		{"/dev/ttyUSB0", serialConfig{"/dev/ttyUSB0", 9600, 8, 'N', 1}},
		{"/dev/ttyUSB0,115200", serialConfig{"/dev/ttyUSB0", 115200, 8, 'N', 1}},
		{"/dev/ttyS1, 19200 , 7e2", serialConfig{"/dev/ttyS1", 19200, 7, 'E', 2}},
		{"COM3", serialConfig{"COM3", 9600, 8, 'N', 1}},
		{"com12,38400,8N1", serialConfig{"com12", 38400, 8, 'N', 1}},
		{"COM3,8O1", serialConfig{"COM3", 9600, 8, 'O', 1}},
		{"COM3,8N1,4800", serialConfig{"COM3", 4800, 8, 'N', 1}},
		{`\\.\COM10,9600`, serialConfig{`\\.\COM10`, 9600, 8, 'N', 1}},
		{"/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", serialConfig{"/dev/serial/by-id/usb-1a86_USB_Serial-if00-port0", 9600, 8, 'N', 1}},
	}
	for _, tt := range good {
		got, err := parseSerialAddr(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseSerialAddr(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	bad := map[string]string{
		"ttyUSB0":               "串口地址应为",
		"/dev/ttyS0,9600,8N1,x": "参数过多",
		"COM3,fast":             "串口参数无效",
		"COM3,9600,9600":        "串口参数无效",
		"COM3,10":               "波特率无效",
		"COM3,9N1":              "串口参数无效",
		"COM0":                  "串口地址应为",
		"LPT1":                  "串口地址应为",
	}
	for in, want := range bad {
		_, err := parseSerialAddr(in)
		if err == nil {
			t.Errorf("parseSerialAddr(%q) succeeded", in)
			continue
		}
		checkError(t, err, ihos.EInvalid, want)
	}
}

func TestParseUSBAddr(t *testing.T) {
	good := map[string][2]uint16{
		"0416:5011":     {0x0416, 0x5011},
		"0x04b8:0x0202": {0x04b8, 0x0202},
		"1A86:7584":     {0x1a86, 0x7584},
		"28e9:289":      {0x28e9, 0x0289},
	}
	for in, want := range good {
		vid, pid, err := parseUSBAddr(in)
		if err != nil || [2]uint16{vid, pid} != want {
			t.Errorf("parseUSBAddr(%q) = %04x:%04x, %v; want %04x:%04x", in, vid, pid, err, want[0], want[1])
		}
	}
	for _, in := range []string{"0416", "0416:", ":5011", "0416:50110", "g416:5011", "0000:0001", "0416-5011"} {
		_, _, err := parseUSBAddr(in)
		if err == nil {
			t.Errorf("parseUSBAddr(%q) succeeded", in)
			continue
		}
		checkError(t, err, ihos.EInvalid, "VID:PID")
	}
}

func TestCheckAddress(t *testing.T) {
	good := [][2]string{
		{TCP, "10.1.2.3"}, {Serial, "COM1"}, {USBLP, "/dev/usb/lp0"}, {USBLP, "/dev/usb/lp12"},
		{Spooler, "EPSON TM-T82III Receipt"}, {Spooler, "收费处小票打印机"}, {USB, "0416:5011"},
	}
	for _, g := range good {
		if err := CheckAddress(g[0], g[1]); err != nil {
			t.Errorf("CheckAddress(%q, %q) = %v", g[0], g[1], err)
		}
	}
	bad := [][2]string{
		{TCP, " "}, {USBLP, "/dev/usb/lp"}, {USBLP, "/etc/passwd"}, {USBLP, "/dev/usb/lp0/../../sda"},
		{USBLP, "/dev/ttyUSB0"}, {Spooler, "a\nb"}, {"bluetooth", "00:11:22:33:44:55"}, {"", "x"},
	}
	for _, b := range bad {
		err := CheckAddress(b[0], b[1])
		if err == nil {
			t.Errorf("CheckAddress(%q, %q) succeeded", b[0], b[1])
			continue
		}
		checkError(t, err, ihos.EInvalid, "")
	}
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "bluetooth", "x")
	checkError(t, err, ihos.EInvalid, "未知的打印机连接方式")
	_, err = Open(ctx, TCP, "")
	checkError(t, err, ihos.EInvalid, "地址不能为空")
	_, err = Open(ctx, USBLP, "/tmp/lp0")
	checkError(t, err, ihos.EInvalid, "/dev/usb/lp0")
	if !haveGousb {
		_, err = Open(ctx, USB, "0416:5011")
		checkError(t, err, ihos.EInvalid, "-tags gousb")
	}
	if !haveSpooler {
		_, err = Open(ctx, Spooler, "POS-80")
		checkError(t, err, ihos.EInvalid, "仅在 Windows 上可用")
	}
}

func TestKinds(t *testing.T) {
	k := Kinds()
	if !slices.Contains(k, TCP) || !slices.Contains(k, Serial) {
		t.Fatalf("Kinds() = %v, want tcp and serial", k)
	}
	if slices.Contains(k, USB) != haveGousb || slices.Contains(k, USBLP) != haveUSBLP || slices.Contains(k, Spooler) != haveSpooler {
		t.Fatalf("Kinds() = %v does not match the build", k)
	}
}

// fakeIO is a printer for askStatus: it answers each request with the
// bytes in answers (nil: silence).
type fakeIO struct {
	answers map[byte][]byte
	pending []byte
	asked   []byte
}

func (f *fakeIO) Write(p []byte) (int, error) {
	f.asked = append(f.asked, p[2])
	f.pending = append(f.pending, f.answers[p[2]]...)
	return len(p), nil
}

func (f *fakeIO) read(p []byte, deadline time.Time) (int, error) {
	if len(f.pending) == 0 {
		time.Sleep(time.Until(deadline))
		return 0, nil
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

func TestAskStatus(t *testing.T) {
	ctx := context.Background()

	// Garbage before the answer is skipped; all three requests are asked.
	f := &fakeIO{answers: map[byte][]byte{1: {0xFF, 0x00, 0x1A}, 2: {0x32}, 4: {0x7E}}}
	s, err := askStatus(ctx, f, f.read)
	if err != nil {
		t.Fatal(err)
	}
	if s.Online || !s.PaperOut || !s.PaperNearEnd || s.Raw != [4]byte{0x1A, 0x32, 0, 0x7E} {
		t.Errorf("status = %+v", s)
	}
	if !bytes.Equal(f.asked, []byte{1, 2, 4}) {
		t.Errorf("asked %v", f.asked)
	}

	// A printer that answers only n=1: the first silence ends the query.
	f = &fakeIO{answers: map[byte][]byte{1: {0x12}}}
	s, err = askStatus(ctx, f, f.read)
	if err != nil || !s.Online || s.Raw != [4]byte{0x12} || !bytes.Equal(f.asked, []byte{1, 2}) {
		t.Errorf("partial: status = %+v, err = %v, asked %v", s, err, f.asked)
	}

	// Silence.
	f = &fakeIO{}
	_, err = askStatus(ctx, f, f.read)
	checkError(t, err, ihos.EUnavailable, "打印机无响应")

	// A context that is over.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = askStatus(cctx, f, f.read)
	checkError(t, err, ihos.EUnavailable, "")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled inside", err)
	}
}
