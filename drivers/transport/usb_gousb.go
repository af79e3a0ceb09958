//go:build gousb

package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/gousb"

	"ihos/drivers/escpos"
)

const haveGousb = true

// usbChunk is the size of one bulk OUT transfer; smaller transfers let a
// cancelled context stop a large raster sooner.
const usbChunk = 16 << 10

// usbConn talks to the printer interface (class 7) of a USB device through
// libusb. A kernel driver bound to it (usblp) is detached while the Conn is
// open and reattached on Close.
type usbConn struct {
	ctx  context.Context
	addr string
	uctx *gousb.Context
	dev  *gousb.Device
	cfg  *gousb.Config
	intf *gousb.Interface
	out  *gousb.OutEndpoint
	in   *gousb.InEndpoint // nil: unidirectional printer

	pending []byte // bytes of the last IN transfer not yet consumed
	back    *backChannel
}

func openUSB(ctx context.Context, vid, pid uint16) (_ Conn, err error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err, "打印超时或已取消")
	}
	c := &usbConn{ctx: ctx, addr: gousb.ID(vid).String() + ":" + gousb.ID(pid).String()}
	c.back = &backChannel{read: c.read}
	if c.uctx, err = newUSBContext(); err != nil {
		return nil, unavailable(err, "无法初始化 USB（libusb）")
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.dev, err = c.uctx.OpenDeviceWithVIDPID(gousb.ID(vid), gousb.ID(pid))
	if c.dev == nil {
		if err != nil {
			return nil, unavailable(err, "无法打开 USB 打印机 %s（权限不足或设备被占用）", c.addr)
		}
		return nil, unavailable(nil, "未找到 USB 打印机 %s（请检查打印机是否连接并开机）", c.addr)
	}
	if err = c.dev.SetAutoDetach(true); err != nil {
		return nil, unavailable(err, "无法接管 USB 打印机 %s", c.addr)
	}
	num, err := c.dev.ActiveConfigNum()
	if err != nil {
		return nil, unavailable(err, "无法读取 USB 打印机 %s 的配置", c.addr)
	}
	if c.cfg, err = c.dev.Config(num); err != nil {
		return nil, unavailable(err, "无法接管 USB 打印机 %s", c.addr)
	}
	setting, outEP, inEP, ok := printerInterface(c.cfg.Desc)
	if !ok {
		return nil, unavailable(nil, "USB 设备 %s 不是打印机（没有打印机接口）", c.addr)
	}
	if c.intf, err = c.cfg.Interface(setting.Number, setting.Alternate); err != nil {
		return nil, unavailable(err, "无法占用 USB 打印机 %s 的接口（是否被其他程序占用？）", c.addr)
	}
	if c.out, err = c.intf.OutEndpoint(outEP); err != nil {
		return nil, unavailable(err, "无法打开 USB 打印机 %s 的数据端点", c.addr)
	}
	if inEP > 0 {
		if c.in, err = c.intf.InEndpoint(inEP); err != nil {
			return nil, unavailable(err, "无法打开 USB 打印机 %s 的数据端点", c.addr)
		}
	}
	return c, nil
}

// newUSBContext is gousb.NewContext, which panics when libusb cannot be
// initialised (no USB subsystem, for example in a container).
func newUSBContext() (c *gousb.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gousb: %v", r)
		}
	}()
	return gousb.NewContext(), nil
}

// printerInterface finds the first printer class interface setting with a
// bulk OUT endpoint, and its bulk IN endpoint number (0 if none).
func printerInterface(cfg gousb.ConfigDesc) (s gousb.InterfaceSetting, out, in int, ok bool) {
	for _, intf := range cfg.Interfaces {
		for _, alt := range intf.AltSettings {
			if alt.Class != gousb.ClassPrinter {
				continue
			}
			out, in = 0, 0
			for _, ep := range alt.Endpoints {
				if ep.TransferType != gousb.TransferTypeBulk {
					continue
				}
				if ep.Direction == gousb.EndpointDirectionIn {
					in = ep.Number
				} else {
					out = ep.Number
				}
			}
			if out > 0 {
				return alt, out, in, true
			}
		}
	}
	return s, 0, 0, false
}

func (c *usbConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := c.out.WriteContext(c.ctx, p[:min(len(p), usbChunk)])
		written += n
		p = p[n:]
		if err != nil {
			if cerr := c.ctx.Err(); cerr != nil {
				return written, unavailable(cerr, "打印超时或已取消")
			}
			return written, unavailable(err, "向 USB 打印机 %s 发送数据失败", c.addr)
		}
	}
	return written, nil
}

func (c *usbConn) Status(ctx context.Context) (escpos.Status, error) {
	if c.in == nil {
		return escpos.Status{}, ErrNoStatus
	}
	return c.back.status(ctx, c)
}

// WaitProcessed implements Confirmer; a printer without a bulk IN endpoint
// gives ErrNoStatus.
func (c *usbConn) WaitProcessed(ctx context.Context, id [4]byte) error {
	if c.in == nil {
		return ErrNoStatus
	}
	return c.back.waitProcessed(ctx, id)
}

// read is the back channel's readFunc.
func (c *usbConn) read(p []byte, deadline time.Time) (int, error) {
	if len(c.pending) == 0 {
		rctx, cancel := context.WithDeadline(c.ctx, deadline)
		// A whole packet, so a longer answer cannot overflow the buffer.
		buf := make([]byte, c.in.Desc.MaxPacketSize)
		n, err := c.in.ReadContext(rctx, buf)
		cancel()
		c.pending = buf[:n]
		if err != nil && n == 0 {
			if rctx.Err() != nil && c.ctx.Err() == nil {
				return 0, nil // timeout
			}
			if errors.Is(err, gousb.TransferCancelled) && c.ctx.Err() != nil {
				return 0, unavailable(c.ctx.Err(), "打印超时或已取消")
			}
			return 0, unavailable(err, "读取 USB 打印机 %s 失败", c.addr)
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *usbConn) Close() error {
	c.close()
	return nil
}

// close releases whatever open got, in reverse order; the kernel driver
// is reattached when the interface is released.
func (c *usbConn) close() {
	if c.intf != nil {
		c.intf.Close()
	}
	if c.cfg != nil {
		c.cfg.Close()
	}
	if c.dev != nil {
		c.dev.Close()
	}
	if c.uctx != nil {
		c.uctx.Close()
	}
}
