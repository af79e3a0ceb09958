//go:build gousb

package transport

import (
	"context"
	"testing"

	"ihos"
)

// TestUSBMissing needs no hardware: no device has this VID:PID (0xffff is
// reserved). Without a USB subsystem libusb fails to initialise, which is
// EUnavailable as well.
func TestUSBMissing(t *testing.T) {
	_, err := Open(context.Background(), USB, "ffff:fffe")
	checkError(t, err, ihos.EUnavailable, "USB")
	t.Log(err)
}
