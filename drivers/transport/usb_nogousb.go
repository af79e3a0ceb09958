//go:build !gousb

package transport

import (
	"context"

	"ihos"
)

const haveGousb = false

func openUSB(ctx context.Context, vid, pid uint16) (Conn, error) {
	return nil, ihos.Errorf(ihos.EInvalid, "此版本未编译 USB 直连支持（需 -tags gousb）")
}
