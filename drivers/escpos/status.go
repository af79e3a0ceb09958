package escpos

import "fmt"

// Real-time status request kinds (the n of DLE EOT n).
const (
	StatusPrinter byte = 1 // printer status
	StatusOffline byte = 2 // offline cause
	StatusError   byte = 3 // error cause
	StatusPaper   byte = 4 // paper roll sensor
)

// StatusRequest returns DLE EOT n (10 04 n). n must be 1..4; other values are
// returned as given and the printer will ignore or misinterpret them.
func StatusRequest(n byte) []byte { return []byte{dle, eot, n} }

// Status is the decoded answer to one or more DLE EOT requests.
type Status struct {
	Online       bool // n=1 bit 3 clear; false when no n=1 byte was seen
	CoverOpen    bool // n=2 bit 2
	PaperNearEnd bool // n=4 bits 2-3
	PaperOut     bool // n=2 bit 5 (stopped on paper end) or n=4 bits 5-6
	Error        bool // n=2 bit 6, or n=3 bits 3 (autocutter), 5 (unrecoverable), 6 (auto-recoverable)
	// Raw holds the status byte for n at Raw[n-1]; 0 means not received
	// (a valid status byte always has bits 1 and 4 set, so it is never 0).
	Raw [4]byte
}

// fixedMask and fixedBits are the bits every DLE EOT status byte carries:
// bits 0 and 7 are 0, bits 1 and 4 are 1.
const (
	fixedMask = 0x93
	fixedBits = 0x12
)

// ParseStatus decodes the byte b returned for DLE EOT n.
func ParseStatus(n byte, b byte) (Status, error) {
	if n < 1 || n > 4 {
		return Status{}, fmt.Errorf("escpos: invalid DLE EOT request %d", n)
	}
	if b&fixedMask != fixedBits {
		return Status{}, fmt.Errorf("escpos: 0x%02X is not a DLE EOT %d status byte", b, n)
	}
	var s Status
	s.Raw[n-1] = b
	s.decode()
	return s, nil
}

// decode derives the flags from Raw.
func (s *Status) decode() {
	s.Online, s.CoverOpen, s.PaperNearEnd, s.PaperOut, s.Error = false, false, false, false, false
	if b := s.Raw[0]; b != 0 {
		s.Online = b&0x08 == 0
	}
	if b := s.Raw[1]; b != 0 {
		s.CoverOpen = b&0x04 != 0
		s.PaperOut = s.PaperOut || b&0x20 != 0
		s.Error = s.Error || b&0x40 != 0
	}
	if b := s.Raw[2]; b != 0 {
		s.Error = s.Error || b&0x68 != 0
	}
	if b := s.Raw[3]; b != 0 {
		s.PaperNearEnd = b&0x0C != 0
		s.PaperOut = s.PaperOut || b&0x60 != 0
	}
}

// Merge combines statuses from separate DLE EOT answers. For each request
// kind the last part that received a byte wins; flags are then recomputed,
// so Online comes only from an n=1 byte.
func Merge(parts ...Status) Status {
	var m Status
	for _, p := range parts {
		for i, b := range p.Raw {
			if b != 0 {
				m.Raw[i] = b
			}
		}
	}
	m.decode()
	return m
}
