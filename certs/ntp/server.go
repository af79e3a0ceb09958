package ntp

import (
	"encoding/binary"
	"net"
	"time"
)

// Serve answers NTP client requests on pc with the time now gives, as a
// stratum-2 server, until pc is closed. It is the simulator of the hospital's
// time source (tests, and a demo without a real NTP server): give it a skewed
// clock to see the signing service stop.
func Serve(pc net.PacketConn, now func() time.Time) error {
	if now == nil {
		now = time.Now
	}
	buf := make([]byte, 512)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n < 48 || buf[0]&7 != 3 { // only client requests
			continue
		}
		recv := now()
		resp := make([]byte, 48)
		resp[0] = 0<<6 | 4<<3 | 4 // no leap warning, version 4, server
		resp[1] = 2
		copy(resp[24:32], buf[40:48]) // origin = the client's transmit time
		binary.BigEndian.PutUint64(resp[32:], toNTP(recv))
		binary.BigEndian.PutUint64(resp[40:], toNTP(now()))
		pc.WriteTo(resp, addr)
	}
}
