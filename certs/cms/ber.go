package cms

import "errors"

// berToDER rewrites BER lengths as DER ones: indefinite lengths become
// definite, long forms become minimal. Tags and contents are kept; constructed
// OCTET STRINGs stay constructed (octets joins them). Only encodings that the
// strict parser refused come here (Java and streaming OpenSSL output).
func berToDER(in []byte) ([]byte, error) {
	out, rest, err := berElement(in, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, errBER
	}
	return out, nil
}

const maxBERDepth = 48

var errBER = errors.New("cms: malformed BER")

// berElement converts the first element of in and returns it and what follows.
func berElement(in []byte, depth int) (out, rest []byte, err error) {
	if depth > maxBERDepth || len(in) < 2 {
		return nil, nil, errBER
	}
	// Identifier octets.
	n := 1
	if in[0]&0x1f == 0x1f {
		for {
			if n >= len(in) || n > 5 {
				return nil, nil, errBER
			}
			b := in[n]
			n++
			if b&0x80 == 0 {
				break
			}
		}
	}
	tag := in[:n]
	constructed := in[0]&0x20 != 0
	if n >= len(in) {
		return nil, nil, errBER
	}
	// Length octets.
	l := int(in[n])
	n++
	var body []byte
	switch {
	case l == 0x80: // indefinite: children up to the end-of-contents octets
		if !constructed {
			return nil, nil, errBER
		}
		rest = in[n:]
		for {
			if len(rest) < 2 {
				return nil, nil, errBER
			}
			if rest[0] == 0 && rest[1] == 0 {
				rest = rest[2:]
				break
			}
			var child []byte
			if child, rest, err = berElement(rest, depth+1); err != nil {
				return nil, nil, err
			}
			body = append(body, child...)
		}
		return appendHeader(tag, body), rest, nil
	case l > 0x80:
		k := l & 0x7f
		if k > 4 || n+k > len(in) {
			return nil, nil, errBER
		}
		l = 0
		for _, b := range in[n : n+k] {
			l = l<<8 | int(b)
		}
		n += k
	}
	if l < 0 || l > len(in)-n {
		return nil, nil, errBER
	}
	content, rest := in[n:n+l], in[n+l:]
	if !constructed {
		return appendHeader(tag, content), rest, nil
	}
	for len(content) > 0 {
		var child []byte
		if child, content, err = berElement(content, depth+1); err != nil {
			return nil, nil, err
		}
		body = append(body, child...)
	}
	return appendHeader(tag, body), rest, nil
}

// appendHeader returns tag, the DER length of body, and body.
func appendHeader(tag, body []byte) []byte {
	out := make([]byte, 0, len(tag)+5+len(body))
	out = append(out, tag...)
	switch l := len(body); {
	case l < 0x80:
		out = append(out, byte(l))
	case l < 1<<8:
		out = append(out, 0x81, byte(l))
	case l < 1<<16:
		out = append(out, 0x82, byte(l>>8), byte(l))
	case l < 1<<24:
		out = append(out, 0x83, byte(l>>16), byte(l>>8), byte(l))
	default:
		out = append(out, 0x84, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	}
	return append(out, body...)
}
