//go:build !linux

package transport

import (
	"context"

	"ihos"
)

const haveUSBLP = false

func openUSBLP(ctx context.Context, path string) (Conn, error) {
	return nil, ihos.Errorf(ihos.EInvalid, "此系统不支持 USB 打印机设备文件")
}
