package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"ihos/drivers/escpos"
)

const (
	// dialTimeout bounds connecting when ctx has no earlier deadline.
	dialTimeout = 5 * time.Second
	// closeTimeout bounds waiting for the printer to close its side after
	// we closed ours (see tcpConn.Close).
	closeTimeout = 2 * time.Second
)

// tcpConn is a raw "port 9100" connection.
type tcpConn struct {
	ctx  context.Context
	c    *net.TCPConn
	stop func() bool // stops the ctx cancellation hook
	back *backChannel
}

func openTCP(ctx context.Context, addr string) (Conn, error) {
	d := net.Dialer{
		Timeout: dialTimeout,
		// Keepalive notices a printer that was switched off while we wait
		// for it (a write blocked on a full send buffer, a status read).
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, unavailable(err, "无法连接网络打印机 %s（请检查打印机电源、网线和 IP 地址）", addr)
	}
	c := &tcpConn{ctx: ctx, c: nc.(*net.TCPConn)}
	c.back = &backChannel{read: c.read}
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetWriteDeadline(dl)
	}
	// Cancelling ctx interrupts any blocked read or write at once.
	c.stop = context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Unix(1, 0)) })
	return c, nil
}

func (c *tcpConn) Write(p []byte) (int, error) {
	n, err := c.c.Write(p)
	if err != nil {
		return n, c.ioError(err)
	}
	return n, nil
}

func (c *tcpConn) ioError(err error) error {
	if cerr := c.ctx.Err(); cerr != nil {
		return unavailable(cerr, "打印超时或已取消")
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return unavailable(context.DeadlineExceeded, "打印超时：打印机长时间未接收数据（可能缺纸或开盖）")
	}
	return unavailable(err, "与网络打印机的连接中断")
}

func (c *tcpConn) Status(ctx context.Context) (escpos.Status, error) {
	if err := c.ctx.Err(); err != nil {
		return escpos.Status{}, unavailable(err, "打印超时或已取消")
	}
	// The requests get the status deadline, then writes get the job's back.
	deadline := time.Now().Add(3 * statusTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.c.SetWriteDeadline(deadline)
	defer func() {
		dl, _ := c.ctx.Deadline() // zero: no deadline
		c.c.SetWriteDeadline(dl)
	}()
	return c.back.status(ctx, c)
}

// WaitProcessed implements Confirmer.
func (c *tcpConn) WaitProcessed(ctx context.Context, id [4]byte) error {
	if err := c.ctx.Err(); err != nil {
		return unavailable(err, "打印超时或已取消")
	}
	return c.back.waitProcessed(ctx, id)
}

// read is the back channel's readFunc.
func (c *tcpConn) read(p []byte, deadline time.Time) (int, error) {
	c.c.SetReadDeadline(deadline)
	n, err := c.c.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) && c.ctx.Err() == nil {
		return n, nil
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return n, unavailable(err, "网络打印机关闭了连接")
		}
		return n, c.ioError(err)
	}
	return n, nil
}

// Close sends what remains and closes the connection gracefully: it shuts
// down the sending side, then reads until the printer closes its side. A
// plain close with unread bytes in the receive queue (a late status answer,
// automatic status back) makes the kernel reset the connection and discard
// data not yet sent, which could cut the end of a ticket.
//
// When the job's context has ended the job is abandoned: the connection is
// closed at once.
func (c *tcpConn) Close() error {
	c.stop()
	if c.ctx.Err() != nil {
		c.c.Close()
		return nil
	}
	if err := c.c.CloseWrite(); err != nil {
		c.c.Close()
		return c.ioError(err)
	}
	deadline := time.Now().Add(closeTimeout)
	if d, ok := c.ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.c.SetReadDeadline(deadline)
	io.Copy(io.Discard, c.c)
	return c.c.Close()
}
