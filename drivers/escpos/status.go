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

// IsStatusByte reports whether b has the fixed bits of a DLE EOT status
// byte (bits 0 and 7 clear, bits 1 and 4 set: 0xx1xx10). The first byte of
// a process ID response, ResponseHeader (0x37 = 0011 0111), has bit 0 set,
// so a reader of the back channel can tell a response from a status answer
// by its first byte.
func IsStatusByte(b byte) bool { return b&fixedMask == fixedBits }

// Process ID responses (GS ( H function 48; see Printer.ProcessID).
const (
	// ResponseHeader starts every "header to NUL" response block a
	// printer sends; the block ends with a 00h byte.
	ResponseHeader byte = 0x37
	// processIDIdentifier is the second byte of a process ID response.
	processIDIdentifier byte = 0x22
	// ProcessIDResponseLen is the length of a process ID response:
	// 37h 22h d1 d2 d3 d4 00h.
	ProcessIDResponseLen = 7
)

// ParseProcessID parses the process ID response at the start of b
// (37h 22h d1 d2 d3 d4 00h, d1..d4 the ID given to GS ( H function 48).
// It returns the ID, n = ProcessIDResponseLen and ok for a complete
// response. When b is shorter than a response but could still become one
// (including an empty b), it returns n = 0: read more bytes. When b does
// not start with a process ID response it returns n = 1, so that a reader
// can skip the first byte and look again.
func ParseProcessID(b []byte) (id [4]byte, n int, ok bool) {
	for i, c := range b[:min(len(b), ProcessIDResponseLen)] {
		var good bool
		switch i {
		case 0:
			good = c == ResponseHeader
		case 1:
			good = c == processIDIdentifier
		case 6:
			good = c == 0
		default:
			good = validProcessIDByte(c)
		}
		if !good {
			return id, 1, false
		}
	}
	if len(b) < ProcessIDResponseLen {
		return id, 0, false
	}
	copy(id[:], b[2:6])
	return id, ProcessIDResponseLen, true
}

// validProcessIDByte reports whether c may be a byte of a process ID:
// 20h..7Eh (printable ASCII).
func validProcessIDByte(c byte) bool { return c >= 0x20 && c <= 0x7E }
