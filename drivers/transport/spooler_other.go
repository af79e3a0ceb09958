//go:build !windows

package transport

import (
	"context"

	"ihos"
)

const haveSpooler = false

func openSpooler(ctx context.Context, name string) (Conn, error) {
	return nil, ihos.Errorf(ihos.EInvalid, "Windows 打印队列仅在 Windows 上可用")
}
