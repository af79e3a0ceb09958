package transport

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"ihos/drivers/escpos"
)

const haveUSBLP = true

const (
	// pollSlice is the longest single poll, so a cancelled context is
	// noticed within it.
	pollSlice = 250 * time.Millisecond
	// usblpFlushTimeout bounds waiting for the last write to reach the
	// printer on Close when the job's context has no deadline.
	usblpFlushTimeout = 30 * time.Second

	// lpGetStatus is LPGETSTATUS (_IO('\x06', 0x0b) in linux/lp.h): usblp
	// answers it with the USB printer class GET_PORT_STATUS byte, laid out
	// like the parallel port status register.
	lpGetStatus = 0x060b
	// Bits of that byte (USB printer class 1.1, section 4.2.2).
	lpPaperEmpty = 0x20 // 1: paper empty
	lpSelect     = 0x10 // 1: selected (online)
	lpNotError   = 0x08 // 0: error
)

// usblpConn is an open /dev/usb/lpN of the Linux usblp driver.
//
// The file is opened non-blocking and every write and read waits with
// poll(2), so the job's context deadline and cancellation work even when
// the printer stops accepting data (paper out, cover open), where a
// blocking write would hang forever.
type usblpConn struct {
	ctx  context.Context
	path string
	fd   int
	back *backChannel
}

func openUSBLP(ctx context.Context, path string) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err, "打印超时或已取消")
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return nil, unavailable(err, "USB 打印机 %s 不存在（请检查打印机是否连接并开机）", path)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return nil, unavailable(err, "没有权限打开 USB 打印机 %s（服务用户需属于 lp 组）", path)
		case errors.Is(err, unix.EBUSY):
			return nil, unavailable(err, "USB 打印机 %s 正被其他程序占用", path)
		}
		return nil, unavailable(err, "无法打开 USB 打印机 %s", path)
	}
	c := &usblpConn{ctx: ctx, path: path, fd: fd}
	c.back = &backChannel{read: c.read}
	return c, nil
}

// wait polls for events until deadline (zero: no deadline) or the job's
// context ends. It reports whether the events arrived.
func (c *usblpConn) wait(events int16, deadline time.Time) (bool, error) {
	for {
		if err := c.ctx.Err(); err != nil {
			return false, unavailable(err, "打印超时或已取消")
		}
		slice := pollSlice
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return false, nil
			}
			slice = min(slice, left)
		}
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
		n, err := unix.Poll(fds, int(slice.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, unavailable(err, "等待 USB 打印机 %s 失败", c.path)
		}
		if n > 0 {
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && fds[0].Revents&events == 0 {
				return false, unavailable(nil, "USB 打印机 %s 已断开", c.path)
			}
			return true, nil
		}
	}
}

func (c *usblpConn) deadline() time.Time {
	dl, _ := c.ctx.Deadline()
	return dl
}

func (c *usblpConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := unix.Write(c.fd, p)
		if n > 0 {
			written += n
			p = p[n:]
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			ok, werr := c.wait(unix.POLLOUT, c.deadline())
			if werr != nil {
				return written, werr
			}
			if !ok {
				// The job's deadline passed (ctx may not have noticed yet).
				return written, unavailable(context.DeadlineExceeded, "打印超时：打印机长时间未接收数据（可能缺纸或开盖）")
			}
		case errors.Is(err, unix.ENOSPC):
			return written, unavailable(err, "USB 打印机 %s 缺纸", c.path)
		case errors.Is(err, unix.ENODEV), errors.Is(err, unix.EIO):
			return written, unavailable(err, "USB 打印机 %s 已断开", c.path)
		default:
			return written, unavailable(err, "向 USB 打印机 %s 发送数据失败", c.path)
		}
	}
	return written, nil
}

// errNoRead reports a unidirectional printer: usblp refuses read(2) with
// EINVAL when the printer interface has no bulk IN endpoint.
var errNoRead = errors.New("usblp: printer is not bidirectional")

// Status asks DLE EOT 1, 2, 4 when the printer can answer; otherwise it
// reports the printer class port status (LPGETSTATUS): Online from the
// select bit, PaperOut from paper empty, Error from not-error, with Raw
// left zero because no DLE EOT byte was received. If neither works it
// returns ErrNoStatus.
func (c *usblpConn) Status(ctx context.Context) (escpos.Status, error) {
	s, err := c.back.status(ctx, c)
	if !errors.Is(err, errNoRead) {
		return s, err
	}
	st, ierr := unix.IoctlGetInt(c.fd, lpGetStatus)
	if ierr != nil {
		return escpos.Status{}, ErrNoStatus
	}
	return escpos.Status{
		Online:   st&lpSelect != 0,
		PaperOut: st&lpPaperEmpty != 0,
		Error:    st&lpNotError == 0,
	}, nil
}

// WaitProcessed implements Confirmer; a unidirectional printer gives
// ErrNoStatus.
func (c *usblpConn) WaitProcessed(ctx context.Context, id [4]byte) error {
	err := c.back.waitProcessed(ctx, id)
	if errors.Is(err, errNoRead) {
		return ErrNoStatus
	}
	return err
}

// read is the back channel's readFunc.
func (c *usblpConn) read(p []byte, deadline time.Time) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EINVAL):
			return 0, errNoRead
		case !errors.Is(err, unix.EAGAIN):
			return 0, unavailable(err, "读取 USB 打印机 %s 失败", c.path)
		}
		ok, werr := c.wait(unix.POLLIN, deadline)
		if werr != nil || !ok {
			return 0, werr
		}
	}
}

// Close waits (bounded by the job's deadline, or usblpFlushTimeout) until
// the last write has reached the printer, then closes: usblp cancels a
// write still in flight on close, which would lose the end of a ticket
// (typically the cut).
func (c *usblpConn) Close() error {
	dl := c.deadline()
	if dl.IsZero() {
		dl = time.Now().Add(usblpFlushTimeout)
	}
	ok, werr := c.wait(unix.POLLOUT, dl)
	err := unix.Close(c.fd)
	if werr != nil {
		return werr
	}
	if !ok {
		return unavailable(context.DeadlineExceeded, "打印超时：USB 打印机 %s 未接收完数据", c.path)
	}
	if err != nil {
		return unavailable(err, "关闭 USB 打印机 %s 失败", c.path)
	}
	return nil
}
