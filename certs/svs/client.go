package svs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/internal/web"
)

// Client calls the signing/verification API of one or more servers: both
// hospital servers, or a hardware signing server with the same API shape (the
// "hardware adapter" is this client pointed at the box's URL with the token the
// box issued, chosen by configuration).
//
// Calls are spread round-robin over URLs. A server that cannot be reached or
// answers 5xx is marked down for DownFor and the call is retried on the next
// one, so a call succeeds while any server is up. Every call of the API is safe
// to repeat: signing the same data twice only makes a second valid signature
// (and a second log entry), verifying changes nothing. 4xx answers are the
// caller's error and are returned at once as *ihos.Error with the server's
// code and message.
type Client struct {
	URLs       []string // base URLs, e.g. "https://10.0.0.5:8443"
	Token      string
	HTTPClient *http.Client // nil: a client with a 30 s timeout
	// DownFor is how long a failed server is skipped; default 5 s.
	DownFor time.Duration

	next atomic.Uint32
	mu   sync.Mutex
	down map[string]time.Time
}

var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

func (c *Client) isDown(u string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Before(c.down[u])
}

func (c *Client) markDown(u string) {
	d := c.DownFor
	if d <= 0 {
		d = 5 * time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down == nil {
		c.down = map[string]time.Time{}
	}
	c.down[u] = time.Now().Add(d)
}

func (c *Client) markUp(u string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.down, u)
}

// do sends body to path on the servers in turn and returns the answer of the
// first that gives a non-5xx one.
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, []byte, error) {
	n := len(c.URLs)
	if n == 0 {
		return nil, nil, ihos.Errorf(ihos.EUnavailable, "未配置签名验签服务器地址")
	}
	start := int(c.next.Add(1)-1) % n
	now := time.Now()
	// Servers that are up first, in round-robin order; those marked down
	// last, as a final chance when every server seems down.
	order := make([]string, 0, n)
	var later []string
	for i := range n {
		u := strings.TrimRight(c.URLs[(start+i)%n], "/")
		if c.isDown(u, now) {
			later = append(later, u)
		} else {
			order = append(order, u)
		}
	}
	order = append(order, later...)
	var lastErr error
	for _, u := range order {
		if err := ctx.Err(); err != nil {
			return nil, nil, &ihos.Error{Code: ihos.EUnavailable, Message: "签名验签请求已取消", Err: err}
		}
		req, err := http.NewRequestWithContext(ctx, method, u+path, bytes.NewReader(body))
		if err != nil {
			return nil, nil, ihos.Errorf(ihos.EInvalid, "签名验签服务器地址无效：%s", u)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := c.httpClient().Do(req)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", u, err)
			c.markDown(u)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", u, err)
			c.markDown(u)
			continue
		}
		if resp.StatusCode >= 500 {
			lastErr = fmt.Errorf("%s: HTTP %d: %s", u, resp.StatusCode, errorMessage(b))
			c.markDown(u)
			continue
		}
		c.markUp(u)
		if resp.StatusCode >= 400 {
			return nil, nil, clientError(resp.StatusCode, b)
		}
		return resp, b, nil
	}
	msg := "签名验签服务器均不可用"
	if lastErr != nil {
		var e *ihos.Error
		if errors.As(lastErr, &e) {
			msg += "：" + e.Message
		}
	}
	return nil, nil, &ihos.Error{Code: ihos.EUnavailable, Message: msg, Err: lastErr}
}

// errorMessage extracts the message of an error body, for logs.
func errorMessage(b []byte) string {
	var eb web.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Message != "" {
		return eb.Message
	}
	return ihos.Truncate(string(b), 200)
}

// clientError turns a 4xx answer into the *ihos.Error the server meant.
func clientError(status int, b []byte) error {
	var eb web.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Code != "" {
		return &ihos.Error{Code: eb.Code, Message: eb.Message, Fields: eb.Fields}
	}
	code := ihos.EInvalid
	switch status {
	case http.StatusUnauthorized:
		code = ihos.EUnauthorized
	case http.StatusForbidden:
		code = ihos.EForbidden
	case http.StatusNotFound:
		code = ihos.ENotFound
	}
	return ihos.Errorf(code, "签名验签服务器拒绝了请求（HTTP %d）", status)
}

func (c *Client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return ihos.Internal(err)
	}
	_, b, err := c.do(ctx, http.MethodPost, path, "application/json", body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "签名验签服务器的应答无法解析", Err: err}
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Sign signs data (SM2 with SM3, default user id) with the application's key
// and returns the DER signature and the signer's certificate (PEM).
func (c *Client) Sign(ctx context.Context, data []byte) ([]byte, string, error) {
	var out signResponse
	if err := c.call(ctx, "/api/svs/sign", map[string]string{"data": b64(data)}, &out); err != nil {
		return nil, "", err
	}
	sig, err := base64.StdEncoding.DecodeString(out.Signature)
	if err != nil || len(sig) == 0 {
		return nil, "", ihos.Errorf(ihos.EUnavailable, "签名验签服务器返回的签名值无效")
	}
	return sig, out.Cert, nil
}

// Verify verifies sig over data with the certificate at level 0, 1 or 2 and
// returns the verdict and, when invalid, the reason.
func (c *Client) Verify(ctx context.Context, data, sig []byte, certPEM string, level int) (bool, string, error) {
	var out VerifyResult
	in := map[string]any{"data": b64(data), "signature": b64(sig), "cert": certPEM, "level": level}
	if err := c.call(ctx, "/api/svs/verify", in, &out); err != nil {
		return false, "", err
	}
	return out.Valid, out.Reason, nil
}

// SignMessage signs data as PKCS#7 SignedData (attached, or detached) and
// returns its DER.
func (c *Client) SignMessage(ctx context.Context, data []byte, detached bool) ([]byte, error) {
	var out signMessageResponse
	if err := c.call(ctx, "/api/svs/sign-message", map[string]any{"data": b64(data), "detached": detached}, &out); err != nil {
		return nil, err
	}
	p7, err := base64.StdEncoding.DecodeString(out.P7)
	if err != nil || len(p7) == 0 {
		return nil, ihos.Errorf(ihos.EUnavailable, "签名验签服务器返回的签名数据无效")
	}
	return p7, nil
}

// VerifyMessage verifies a PKCS#7 SignedData; data is the content of a
// detached signature (nil for an attached one).
func (c *Client) VerifyMessage(ctx context.Context, p7, data []byte, level int) (*MessageResult, error) {
	in := map[string]any{"p7": b64(p7), "level": level}
	if data != nil {
		in["data"] = b64(data)
	}
	var out MessageResult
	if err := c.call(ctx, "/api/svs/verify-message", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ValidateCert checks a certificate (PEM) at level 1 or 2.
func (c *Client) ValidateCert(ctx context.Context, certPEM string, level int) (bool, string, error) {
	var out VerifyResult
	if err := c.call(ctx, "/api/svs/cert/validate", map[string]any{"cert": certPEM, "level": level}, &out); err != nil {
		return false, "", err
	}
	return out.Valid, out.Reason, nil
}

// Timestamp sends a DER TimeStampReq and returns the DER TimeStampResp.
func (c *Client) Timestamp(ctx context.Context, query []byte) ([]byte, error) {
	_, b, err := c.do(ctx, http.MethodPost, "/api/svs/timestamp", "application/timestamp-query", query)
	return b, err
}
