//go:build !linux

package printersim

import "ihos"

// ServeSerial serves the printer on a pseudo-terminal; only Linux has one
// the simulator can open.
func (s *Sim) ServeSerial() (path string, err error) {
	return "", ihos.Errorf(ihos.EUnavailable, "模拟串口仅支持 Linux")
}
