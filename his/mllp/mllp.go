// Package mllp carries HL7 v2 messages over TCP with the Minimal Lower Layer Protocol:
// each message is framed as a start block (0x0B), the message, an end block (0x1C) and a
// carriage return (0x0D).
//
// The hospital's HIS and its integration engine talk to the appliance this way in both
// directions, and no Go library for it is available to this project, so this package
// is our own. It provides the framing (Reader, WriteMessage), a Server that answers
// every message with a handler's reply on the same connection, in order, and a Client
// that sends one message at a time over a persistent connection and waits for its
// reply. Acknowledgements follow HL7 original mode: the reply to a message is its ACK
// (or a query's response); enhanced-mode accept acknowledgements (MSH-15) are not sent.
//
// The server is written for input it cannot trust: frames are limited in size
// (MaxSize), a connection that starts no frame is closed after IdleTimeout, a frame must
// arrive within FrameTimeout once begun (so a peer sending a byte a second cannot hold
// a connection), a message that does not parse is answered with an AR acknowledgement
// carrying the HL7 error code, and a handler that panics gets an AE reply while the
// connection stays up.
package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// The MLLP frame bytes.
const (
	StartBlock     = 0x0B
	EndBlock       = 0x1C
	CarriageReturn = 0x0D
)

// DefaultMaxSize is the default limit on a message (without its framing): 4 MiB is
// far above any order or result the platform exchanges, and the EMR documents it sends
// as base64 in OBX-5 stay well below it.
const DefaultMaxSize = 4 << 20

// maxPrefix bounds what ReadMessage returns of a frame that is too large: enough for
// the MSH segment, from which a NAK can quote the control id.
const maxPrefix = 64 << 10

var (
	// ErrTooLarge is returned by ReadMessage for a frame larger than the size limit.
	ErrTooLarge = errors.New("mllp: message larger than the size limit")
	// ErrFrameByte is returned by WriteMessage for a message holding a start or end
	// block byte, which would break the framing. hl7.Message.Encode never writes one.
	ErrFrameByte = errors.New("mllp: message holds an MLLP start or end block byte")
)

// Reader reads MLLP frames from a stream.
type Reader struct {
	br  *bufio.Reader
	max int

	// frameStarted, when set, is called as a frame's start block is read. The server
	// uses it to replace the idle deadline with the frame deadline.
	frameStarted func()
}

// NewReader returns a Reader of r that accepts messages of up to maxSize bytes
// (DefaultMaxSize when maxSize <= 0).
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), max: maxSize}
}

// ReadMessage returns the next message, without its framing, in a new slice.
//
// Bytes before a start block are skipped (senders leave line ends between frames). A
// start block inside a frame abandons the frame so far: the sender gave up on it and
// began another. The carriage return after the end block is consumed when it has
// arrived with it; when missing or late it is skipped as junk before the next frame.
//
// It returns io.EOF when the stream ends outside a frame, io.ErrUnexpectedEOF when it
// ends inside one, and the stream's own error (such as a deadline) otherwise. For a frame
// larger than the limit it reads on to the frame's end, so that the stream stays in
// step, and returns the frame's first bytes (at most 64 KiB, for a NAK to quote the
// header) with ErrTooLarge; a server should then answer and close the connection,
// because a sender of oversized frames tends to send more.
func (r *Reader) ReadMessage() ([]byte, error) {
	for {
		_, err := r.br.ReadSlice(StartBlock)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	if r.frameStarted != nil {
		r.frameStarted()
	}
	var msg []byte
	size, tooLarge := 0, false
	for {
		chunk, err := r.br.ReadSlice(EndBlock)
		data := chunk
		if err == nil {
			data = chunk[:len(chunk)-1]
		}
		if i := bytes.LastIndexByte(data, StartBlock); i >= 0 {
			msg, size, tooLarge = msg[:0], 0, false
			data = data[i+1:]
		}
		size += len(data)
		if size > r.max && !tooLarge {
			tooLarge = true
			msg = msg[:min(len(msg), maxPrefix, r.max)]
		}
		if tooLarge {
			if room := min(maxPrefix, r.max) - len(msg); room > 0 {
				msg = append(msg, data[:min(room, len(data))]...)
			}
		} else {
			msg = append(msg, data...)
		}
		switch {
		case err == nil:
			if r.br.Buffered() > 0 {
				if b, _ := r.br.Peek(1); b[0] == CarriageReturn {
					r.br.Discard(1)
				}
			}
			if tooLarge {
				return msg, ErrTooLarge
			}
			if msg == nil {
				msg = []byte{}
			}
			return msg, nil
		case err == bufio.ErrBufferFull:
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// WriteMessage writes msg framed, in a single Write call so that concurrent writers on
// a connection (which this package never has) could not interleave, and so that the
// frame usually leaves in one TCP segment.
func WriteMessage(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, StartBlock) >= 0 || bytes.IndexByte(msg, EndBlock) >= 0 {
		return ErrFrameByte
	}
	frame := make([]byte, len(msg)+3)
	frame[0] = StartBlock
	copy(frame[1:], msg)
	frame[len(frame)-2] = EndBlock
	frame[len(frame)-1] = CarriageReturn
	_, err := w.Write(frame)
	return err
}
