package transport

import (
	"bytes"
	"context"
	"unsafe"

	"golang.org/x/sys/windows"

	"ihos"
	"ihos/drivers/escpos"
)

const haveSpooler = true

// Raw printing API of winspool.drv (x/sys/windows does not wrap it).
var (
	winspool             = windows.NewLazySystemDLL("winspool.drv")
	procOpenPrinterW     = winspool.NewProc("OpenPrinterW")
	procClosePrinter     = winspool.NewProc("ClosePrinter")
	procStartDocPrinterW = winspool.NewProc("StartDocPrinterW")
	procEndDocPrinter    = winspool.NewProc("EndDocPrinter")
	procAbortPrinter     = winspool.NewProc("AbortPrinter")
	procStartPagePrinter = winspool.NewProc("StartPagePrinter")
	procEndPagePrinter   = winspool.NewProc("EndPagePrinter")
	procWritePrinter     = winspool.NewProc("WritePrinter")
)

// docInfo1 is DOC_INFO_1W.
type docInfo1 struct {
	DocName    *uint16
	OutputFile *uint16
	Datatype   *uint16
}

// spoolDocName is the document name shown in the Windows print queue.
const spoolDocName = "ihos 小票"

// spoolerConn prints through the Windows print spooler with the "RAW"
// datatype: the bytes go to the printer unchanged, the driver renders
// nothing. Writes are buffered and Close submits them as one spool
// document, so one Conn is one print job in the Windows queue and a job is
// never split or interleaved with other applications' jobs. The spooler is
// one-way: Status returns ErrNoStatus, and Close succeeding means Windows
// accepted the job, not that it was printed.
type spoolerConn struct {
	ctx    context.Context
	name   string
	h      windows.Handle
	buf    bytes.Buffer
	closed bool
}

func openSpooler(ctx context.Context, name string) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, unavailable(err, "打印超时或已取消")
	}
	if err := procOpenPrinterW.Find(); err != nil {
		return nil, unavailable(err, "无法使用 Windows 打印队列（winspool.drv 不可用）")
	}
	n, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "Windows 打印机名称无效")
	}
	var h windows.Handle
	r, _, e := procOpenPrinterW.Call(uintptr(unsafe.Pointer(n)), uintptr(unsafe.Pointer(&h)), 0)
	if r == 0 {
		return nil, unavailable(e, "找不到 Windows 打印机“%s”（名称应与“打印机和扫描仪”中一致）", name)
	}
	return &spoolerConn{ctx: ctx, name: name, h: h}, nil
}

// Write buffers p; nothing reaches the spooler before Close.
func (c *spoolerConn) Write(p []byte) (int, error) {
	if c.closed {
		return 0, ihos.Errorf(ihos.EInternal, "打印连接已关闭")
	}
	return c.buf.Write(p)
}

func (c *spoolerConn) Status(ctx context.Context) (escpos.Status, error) {
	return escpos.Status{}, ErrNoStatus
}

// Close submits the buffered bytes as one RAW document (nothing when no
// byte was written) and closes the printer handle. If the job's context
// has ended by then, nothing is submitted.
func (c *spoolerConn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	defer procClosePrinter.Call(uintptr(c.h))
	if c.buf.Len() == 0 {
		return nil
	}
	if err := c.ctx.Err(); err != nil {
		return unavailable(err, "打印超时或已取消，未提交到 Windows 打印队列")
	}
	return c.submit(c.buf.Bytes())
}

func (c *spoolerConn) submit(data []byte) error {
	docName, _ := windows.UTF16PtrFromString(spoolDocName)
	datatype, _ := windows.UTF16PtrFromString("RAW")
	doc := docInfo1{DocName: docName, Datatype: datatype}
	job, _, e := procStartDocPrinterW.Call(uintptr(c.h), 1, uintptr(unsafe.Pointer(&doc)))
	if job == 0 {
		return unavailable(e, "无法在 Windows 打印机“%s”上开始打印任务", c.name)
	}
	if r, _, e := procStartPagePrinter.Call(uintptr(c.h)); r == 0 {
		procAbortPrinter.Call(uintptr(c.h))
		return unavailable(e, "无法在 Windows 打印机“%s”上开始打印任务", c.name)
	}
	for len(data) > 0 {
		var written uint32
		r, _, e := procWritePrinter.Call(uintptr(c.h), uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&written)))
		if r == 0 || written == 0 {
			procAbortPrinter.Call(uintptr(c.h))
			return unavailable(e, "向 Windows 打印机“%s”发送数据失败", c.name)
		}
		data = data[written:]
	}
	if r, _, e := procEndPagePrinter.Call(uintptr(c.h)); r == 0 {
		procAbortPrinter.Call(uintptr(c.h))
		return unavailable(e, "向 Windows 打印机“%s”发送数据失败", c.name)
	}
	if r, _, e := procEndDocPrinter.Call(uintptr(c.h)); r == 0 {
		return unavailable(e, "Windows 打印队列未接受打印任务（打印机“%s”）", c.name)
	}
	return nil
}
