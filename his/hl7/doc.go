// Package hl7 reads and writes HL7 version 2.x messages in the standard pipe-and-hat
// ("ER7") encoding.
//
// The hospital information systems the appliance talks to speak HL7 v2 over MLLP, and no
// HL7 library for Go is available to this project, so this package is our own. It is a
// codec, not a data-type model: a Message is a list of segments, each a list of fields,
// repetitions, components and sub-components holding decoded text. Callers address values
// with terser-style paths ("PID-3(2)-1", "OBX(3)-5") and give them meaning themselves;
// the interface profile in docs/his-interface.md says which fields carry what.
//
// What the package covers of the standard (chapter 2, "Control"):
//
//   - Delimiters are read from MSH-1 and MSH-2 of each message, including MSH-2 shorter
//     than four characters (the missing delimiters then do not exist) and the fifth,
//     truncation character of v2.7 (kept, and decoded in \P\; data is never truncated).
//   - Segments may end in CR, LF or CR LF; blank lines, a leading byte-order mark and
//     leading white space are ignored. Encode always separates segments with a single CR
//     and writes no terminator after the last segment.
//   - Escape sequences \F\ \S\ \T\ \R\ \E\ are decoded to the delimiter they stand for,
//     \P\ to the truncation character, \Xhh..\ to the bytes it spells (in the message's
//     character set) and \.br\ to a line feed. The highlighting commands \H\ and \N\ are
//     dropped: the platform shows plain text. Every other sequence (\.sp\, \Cxxyy\,
//     \Zxx\ ...) is kept literally, escape characters included. Encode escapes the five
//     delimiters, writes a line feed as \.br\, a carriage return as \X0D\ and any other
//     control character except tab as \Xhh\, so a decoded value always survives
//     Encode and Parse unchanged, and an MLLP frame byte can never appear in a message.
//     (A message whose MSH-2 declares no escape character cannot carry delimiters or
//     line breaks in its values; Encode refuses them and writes other control
//     characters as they are.) Encode(Parse(x)) == x byte for byte when x escapes what
//     Encode escapes, the way Encode does, and separates its segments with single CRs.
//   - Character sets from MSH-18: ASCII, UTF-8 ("UNICODE UTF-8", "UTF-8", "UNICODE" or
//     empty), GB 18030 (also accepted as "GB18030", "GBK", "GB2312" or "CHINESE",
//     matched ignoring case, spaces, hyphens and underscores) and ISO 8859-1 ("8859/1").
//     Parse decodes the message to UTF-8 once, so the rest of the package only sees
//     UTF-8; Encode converts back. Values handed to Encode must be valid UTF-8. A message
//     declaring (or defaulting to) UTF-8 that is not valid UTF-8 is rejected rather than
//     guessed at: that is what GB 18030 sent without MSH-18 looks like.
//   - Parse checks the envelope only: the message starts with MSH, MSH-9 and MSH-10 are
//     present, every segment name is three characters [A-Z][A-Z0-9][A-Z0-9] (so
//     Z-segments pass), and no batch or file header or trailer (BHS, BTS, FHS, FTS) or
//     second MSH appears inside the message. Which segments a message type must carry is
//     the caller's business. Errors are *ParseError with a code from HL7 table 0357, so a
//     receiver can put it straight into an ACK (see Ack and Nak).
//
// Parse keeps allocation low: the input is copied once into a string that all values
// slice into, the containers of a message are cut from a few arrays sized by counting
// delimiters first, and a value is copied only when it holds an escape sequence.
package hl7
