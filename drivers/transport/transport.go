// Package transport carries ESC/POS bytes to ticket printers and asks them
// for their real-time status.
//
// A printer is reached by a kind and an address:
//
//   - TCP ("tcp", "192.168.1.50:9100"): the raw "port 9100" protocol of
//     network printers. Bidirectional: Status works.
//   - Serial ("serial", "/dev/ttyUSB0,9600,8N1" or "COM3,115200"): RS-232
//     and USB-serial adapters, through go.bug.st/serial. The default is
//     9600 baud 8N1. Status works if the printer's TX line is wired.
//   - USB printer class device ("usblp", "/dev/usb/lp0"): the Linux usblp
//     kernel driver. Status works for bidirectional printers (DLE EOT over
//     the bulk IN endpoint); for unidirectional ones it falls back to the
//     USB printer class port status (paper out, offline, error), or
//     ErrNoStatus if that is not available either. Linux only.
//   - Windows print spooler ("spooler", the printer name as Windows shows
//     it): raw printing through winspool.drv, bypassing the driver's
//     rendering. One-way: Status returns ErrNoStatus. Windows only.
//   - Raw USB ("usb", "0416:5011" VID:PID in hex): libusb through
//     github.com/google/gousb, for systems without a usable kernel printer
//     driver. Needs cgo and libusb, so it is compiled only with -tags gousb;
//     the default CGO_ENABLED=0 build returns EInvalid for it. Status works
//     when the printer interface has a bulk IN endpoint.
//
// # Back channel
//
// Bidirectional printers send two kinds of data back, on the same byte
// stream: one-byte answers to DLE EOT status requests (bit pattern
// 0xx1xx10) and "header to NUL" response blocks, of which the transports
// parse the process ID response 37h 22h d1 d2 d3 d4 00h, the answer to
// GS ( H function 48 (escpos.ProcessID) that a printer sends once it has
// processed, printing included, everything received before that command.
// The header 37h (0011 0111) has bit 0 set, so it is never mistaken for a
// status byte, and the bytes of a block are never taken for status bytes
// either. Each connection reads its back channel through one parser
// (backChannel): a process ID that arrives while Status waits for a
// status byte is remembered for WaitProcessed, and status bytes that
// arrive while WaitProcessed waits are stale answers and are dropped.
// TCP, serial, usblp and usb connections implement Confirmer.
//
// Transports never retry: the print queue decides what to do with an
// error. Errors are *ihos.Error: EInvalid for a bad address (or a kind not
// available in this binary), EUnavailable when the printer cannot be
// reached; their messages are Simplified Chinese, for the console.
//
// A Conn is not safe for concurrent use: one goroutine writes a job and may
// ask for the status, or wait for a process ID, before or after it.
package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/drivers/escpos"
)

// Transport kinds, as stored in the printer configuration.
const (
	TCP     = "tcp"
	Serial  = "serial"
	USBLP   = "usblp"
	Spooler = "spooler"
	USB     = "usb"
)

// DefaultTCPPort is the raw printing port of network printers.
const DefaultTCPPort = "9100"

// Kinds lists the transports compiled into this binary, in the order a
// console should offer them: usblp only on Linux, spooler only on Windows,
// usb only with -tags gousb.
func Kinds() []string {
	kinds := []string{TCP, Serial}
	if haveUSBLP {
		kinds = append(kinds, USBLP)
	}
	if haveSpooler {
		kinds = append(kinds, Spooler)
	}
	if haveGousb {
		kinds = append(kinds, USB)
	}
	return kinds
}

// Conn is an open connection to one printer.
type Conn interface {
	io.Writer
	// Status asks the printer for DLE EOT 1, 2 and 4 and returns the merged
	// status. One-way transports (the Windows spooler) return ErrNoStatus.
	Status(ctx context.Context) (escpos.Status, error)
	Close() error
}

// Confirmer is implemented by connections that can read process ID
// responses (see escpos.ProcessID): the print queue ends each ticket with
// GS ( H function 48 and waits for the answer to know that the ticket has
// come out.
type Confirmer interface {
	// WaitProcessed returns nil once the printer has sent the process ID
	// response for id on this connection, now or earlier (responses
	// that arrived meanwhile, during Status for example, are
	// remembered until asked for, the last few dozen of them). When ctx
	// ends first it returns an EUnavailable error wrapping ctx.Err(),
	// so errors.Is(err, context.DeadlineExceeded) tells "no answer yet"
	// from a broken connection. It returns ErrNoStatus when this
	// connection cannot read from the printer (a unidirectional usblp
	// printer).
	WaitProcessed(ctx context.Context, id [4]byte) error
}

// ErrNoStatus is returned by Status on transports that cannot read from the
// printer.
var ErrNoStatus = errors.New("transport: status not available on this transport")

// Open connects to a printer. The address depends on kind:
//
//	tcp      "host:port"; the port defaults to 9100
//	serial   "/dev/ttyUSB0" or "COM3", optionally followed by ",9600" (baud)
//	         and ",8N1" (data bits, parity N/E/O/M/S, stop bits 1 or 2);
//	         default 9600 8N1
//	usblp    "/dev/usb/lp0"
//	spooler  the Windows printer name
//	usb      "VID:PID" in hex, for example "0416:5011"
//
// ctx governs the whole connection, not only the dial: open the connection
// with the context of the print job. When it ends, writes stop: at once for
// tcp (socket deadlines), usblp (non-blocking writes with poll) and usb
// (cancelled transfers); between 1 KiB chunks for serial, whose blocking
// writes cannot be interrupted; and the spooler does not submit its
// buffered document on Close.
func Open(ctx context.Context, kind, address string) (Conn, error) {
	address = strings.TrimSpace(address)
	if address == "" {
		return nil, ihos.Errorf(ihos.EInvalid, "打印机地址不能为空")
	}
	switch kind {
	case TCP:
		addr, err := parseTCPAddr(address)
		if err != nil {
			return nil, err
		}
		return openTCP(ctx, addr)
	case Serial:
		cfg, err := parseSerialAddr(address)
		if err != nil {
			return nil, err
		}
		return openSerial(ctx, cfg)
	case USBLP:
		if err := checkUSBLPAddr(address); err != nil {
			return nil, err
		}
		return openUSBLP(ctx, address)
	case Spooler:
		if err := checkSpoolerName(address); err != nil {
			return nil, err
		}
		return openSpooler(ctx, address)
	case USB:
		vid, pid, err := parseUSBAddr(address)
		if err != nil {
			return nil, err
		}
		return openUSB(ctx, vid, pid)
	}
	return nil, ihos.Errorf(ihos.EInvalid, "未知的打印机连接方式：%s", kind)
}

// CheckAddress validates an address without connecting, for forms that
// store a printer configuration. It accepts kinds not compiled into this
// binary, so a configuration can be prepared on another system.
func CheckAddress(kind, address string) error {
	address = strings.TrimSpace(address)
	if address == "" {
		return ihos.Errorf(ihos.EInvalid, "打印机地址不能为空")
	}
	var err error
	switch kind {
	case TCP:
		_, err = parseTCPAddr(address)
	case Serial:
		_, err = parseSerialAddr(address)
	case USBLP:
		err = checkUSBLPAddr(address)
	case Spooler:
		err = checkSpoolerName(address)
	case USB:
		_, _, err = parseUSBAddr(address)
	default:
		err = ihos.Errorf(ihos.EInvalid, "未知的打印机连接方式：%s", kind)
	}
	return err
}

// parseTCPAddr returns host:port, adding the default port when missing.
func parseTCPAddr(s string) (string, error) {
	bad := ihos.Errorf(ihos.EInvalid, "网络打印机地址应为“主机:端口”，例如 192.168.1.50:9100")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a host name, an IPv4 address, "[v6]" or a bare IPv6.
		host, port = s, DefaultTCPPort
		if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
		}
		if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			return "", bad
		}
	}
	if host == "" || strings.ContainsAny(host, " /\\,[]") {
		return "", bad
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", ihos.Errorf(ihos.EInvalid, "网络打印机端口号无效：%s（应为 1–65535，通常是 9100）", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// serialConfig is a parsed serial address.
type serialConfig struct {
	Device   string
	Baud     int
	DataBits int  // 5..8
	Parity   byte // 'N', 'E', 'O', 'M' or 'S'
	StopBits int  // 1 or 2
}

var (
	serialSettingsRE = regexp.MustCompile(`^([5-8])([NEOMS])([12])$`)
	comPortRE        = regexp.MustCompile(`^(?i)(\\\\\.\\)?COM[1-9][0-9]{0,2}$`)
)

// parseSerialAddr parses "device[,baud][,settings]"; baud and settings may
// come in either order.
func parseSerialAddr(s string) (serialConfig, error) {
	cfg := serialConfig{Baud: 9600, DataBits: 8, Parity: 'N', StopBits: 1}
	parts := strings.Split(s, ",")
	cfg.Device = strings.TrimSpace(parts[0])
	if !strings.HasPrefix(cfg.Device, "/dev/") && !comPortRE.MatchString(cfg.Device) {
		return cfg, ihos.Errorf(ihos.EInvalid, "串口地址应为“设备[,波特率][,8N1]”，例如 /dev/ttyUSB0,9600 或 COM3,115200,8N1")
	}
	if len(parts) > 3 {
		return cfg, ihos.Errorf(ihos.EInvalid, "串口地址参数过多：%s（应为“设备[,波特率][,8N1]”）", s)
	}
	var haveBaud, haveSettings bool
	for _, p := range parts[1:] {
		p = strings.ToUpper(strings.TrimSpace(p))
		if m := serialSettingsRE.FindStringSubmatch(p); m != nil && !haveSettings {
			haveSettings = true
			cfg.DataBits = int(m[1][0] - '0')
			cfg.Parity = m[2][0]
			cfg.StopBits = int(m[3][0] - '0')
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || haveBaud {
			return cfg, ihos.Errorf(ihos.EInvalid, "串口参数无效：%s（波特率如 9600，格式如 8N1）", p)
		}
		if n < 50 || n > 4000000 {
			return cfg, ihos.Errorf(ihos.EInvalid, "波特率无效：%d（常用 9600、19200、38400、115200）", n)
		}
		haveBaud = true
		cfg.Baud = n
	}
	return cfg, nil
}

var usblpRE = regexp.MustCompile(`^/dev/usb/lp[0-9]{1,3}$`)

// checkUSBLPAddr accepts only usblp device files, so a printer address can
// never name an ordinary file.
func checkUSBLPAddr(s string) error {
	if !usblpRE.MatchString(s) {
		return ihos.Errorf(ihos.EInvalid, "USB 打印机设备文件应为 /dev/usb/lp0 这样的路径")
	}
	return nil
}

func checkSpoolerName(s string) error {
	if len([]rune(s)) > 220 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return ihos.Errorf(ihos.EInvalid, "Windows 打印机名称无效：应与“打印机和扫描仪”中显示的名称一致")
	}
	return nil
}

// parseUSBAddr parses "VID:PID" (hex, with or without 0x).
func parseUSBAddr(s string) (vid, pid uint16, err error) {
	bad := ihos.Errorf(ihos.EInvalid, "USB 设备地址应为十六进制“VID:PID”，例如 0416:5011")
	v, p, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, bad
	}
	hex := func(x string) (uint16, bool) {
		x = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(x), "0x"), "0X")
		if x == "" || len(x) > 4 {
			return 0, false
		}
		n, err := strconv.ParseUint(x, 16, 16)
		return uint16(n), err == nil
	}
	vid, ok1 := hex(v)
	pid, ok2 := hex(p)
	if !ok1 || !ok2 || vid == 0 {
		return 0, 0, bad
	}
	return vid, pid, nil
}

// unavailable returns an EUnavailable error with a Chinese message and its
// cause (kept for the log, and for errors.Is on context errors).
func unavailable(cause error, format string, args ...any) *ihos.Error {
	e := ihos.Errorf(ihos.EUnavailable, format, args...)
	e.Err = cause
	return e
}

// statusTimeout is how long to wait for the answer to one DLE EOT request.
// Printers answer real-time requests within milliseconds, even while busy
// or out of paper, so a longer silence means nobody is listening.
const statusTimeout = 500 * time.Millisecond

// readFunc reads into p, waiting until deadline; it returns 0, nil when
// nothing arrived in time.
type readFunc func(p []byte, deadline time.Time) (int, error)

// askStatus sends DLE EOT 1, 2 and 4 and merges the answers, reading them
// with read (see backChannel.status).
func askStatus(ctx context.Context, w io.Writer, read readFunc) (escpos.Status, error) {
	return (&backChannel{read: read}).status(ctx, w)
}
