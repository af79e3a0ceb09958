package transport

import (
	"context"
	"errors"
	"io/fs"
	"sort"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"

	"ihos"
	"ihos/drivers/escpos"
)

// serialChunk is how much is written to a serial port between checks of the
// job's context. A blocking serial write cannot be interrupted, so writing
// in chunks is what makes a deadline or a cancellation take effect (at
// 9600 baud 1 KiB takes about a second once the kernel buffer is full).
const serialChunk = 1024

// serialConn is an open serial port.
type serialConn struct {
	ctx  context.Context
	name string
	port serial.Port
	back *backChannel
}

func openSerial(ctx context.Context, cfg serialConfig) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err, "打印超时或已取消")
	}
	mode := &serial.Mode{BaudRate: cfg.Baud, DataBits: cfg.DataBits, StopBits: serial.OneStopBit}
	if cfg.StopBits == 2 {
		mode.StopBits = serial.TwoStopBits
	}
	switch cfg.Parity {
	case 'E':
		mode.Parity = serial.EvenParity
	case 'O':
		mode.Parity = serial.OddParity
	case 'M':
		mode.Parity = serial.MarkParity
	case 'S':
		mode.Parity = serial.SpaceParity
	}
	p, err := serial.Open(cfg.Device, mode)
	if err != nil {
		return nil, serialOpenError(cfg.Device, err)
	}
	c := &serialConn{ctx: ctx, name: cfg.Device, port: p}
	c.back = &backChannel{read: c.read}
	return c, nil
}

func serialOpenError(name string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortNotFound:
			return unavailable(err, "串口 %s 不存在（请检查 USB 转串口线是否插好）", name)
		case serial.PortBusy:
			return unavailable(err, "串口 %s 正被其他程序占用", name)
		case serial.PermissionDenied:
			return unavailable(err, "没有权限打开串口 %s（Linux 上服务用户需属于 dialout 组）", name)
		case serial.InvalidSpeed, serial.InvalidDataBits, serial.InvalidParity, serial.InvalidStopBits:
			e := ihos.Errorf(ihos.EInvalid, "串口 %s 不支持所设置的波特率或数据格式", name)
			e.Err = err
			return e
		case serial.InvalidSerialPort:
			e := ihos.Errorf(ihos.EInvalid, "%s 不是串口设备", name)
			e.Err = err
			return e
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return unavailable(err, "串口 %s 不存在（请检查 USB 转串口线是否插好）", name)
	}
	return unavailable(err, "无法打开串口 %s", name)
}

// Write writes p in chunks, checking the job's context between them; a
// chunk already handed to the kernel cannot be taken back.
func (c *serialConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if err := c.ctx.Err(); err != nil {
			return written, unavailable(err, "打印超时或已取消")
		}
		chunk := p[:min(len(p), serialChunk)]
		n, err := c.port.Write(chunk)
		written += n
		if err != nil {
			return written, unavailable(err, "向串口 %s 发送数据失败", c.name)
		}
		p = p[n:]
	}
	return written, nil
}

func (c *serialConn) Status(ctx context.Context) (escpos.Status, error) {
	if err := c.ctx.Err(); err != nil {
		return escpos.Status{}, unavailable(err, "打印超时或已取消")
	}
	return c.back.status(ctx, c)
}

// WaitProcessed implements Confirmer.
func (c *serialConn) WaitProcessed(ctx context.Context, id [4]byte) error {
	if err := c.ctx.Err(); err != nil {
		return unavailable(err, "打印超时或已取消")
	}
	return c.back.waitProcessed(ctx, id)
}

// read is the back channel's readFunc.
func (c *serialConn) read(p []byte, deadline time.Time) (int, error) {
	wait := time.Until(deadline)
	if wait <= 0 {
		return 0, nil
	}
	if err := c.port.SetReadTimeout(wait); err != nil {
		return 0, unavailable(err, "无法读取串口 %s", c.name)
	}
	n, err := c.port.Read(p) // 0, nil on timeout
	if err != nil {
		return n, unavailable(err, "读取串口 %s 失败", c.name)
	}
	return n, nil
}

// Close closes the port. The kernel still sends what it has buffered (on
// real UARTs closing waits for that, up to the driver's closing_wait).
func (c *serialConn) Close() error {
	if err := c.port.Close(); err != nil {
		return unavailable(err, "关闭串口 %s 失败", c.name)
	}
	return nil
}

// PortInfo describes a serial port, for the console's port picker.
type PortInfo struct {
	// Name is the serial address without settings: "/dev/ttyUSB0", "COM3".
	Name string
	// USB reports a USB-serial adapter (or a printer with a built-in one);
	// VID, PID (4 hex digits) and SerialNumber are then filled when the
	// system tells them.
	USB          bool
	VID, PID     string
	SerialNumber string
}

// SerialPorts lists the serial ports of this system, sorted by name, with
// USB details where available (Linux reads them from sysfs, Windows from
// the device registry; no device is probed).
func SerialPorts() ([]PortInfo, error) {
	names, err := serial.GetPortsList()
	if err != nil {
		return nil, unavailable(err, "无法列出本机串口")
	}
	byName := map[string]*enumerator.PortDetails{}
	if details, err := enumerator.GetDetailedPortsList(); err == nil {
		for _, d := range details {
			byName[d.Name] = d
		}
	}
	ports := make([]PortInfo, 0, len(names))
	for _, n := range names {
		p := PortInfo{Name: n}
		if d := byName[n]; d != nil && d.IsUSB {
			p.USB, p.VID, p.PID, p.SerialNumber = true, d.VID, d.PID, d.SerialNumber
		}
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
	return ports, nil
}
