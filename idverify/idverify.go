// Package idverify checks a person's name against their resident ID number
// (实名认证, "二要素核验") through an identity-verification service, and
// package idsim simulates that service.
//
// The wire format is modelled on the ID-card two-factor APIs sold on Chinese
// API marketplaces (the 身份证实名认证 products on Aliyun's API market,
// backed by the public-security citizen database):
//
//   - POST {url}/idcard/verify with a JSON body {"name": "张三",
//     "idCardNo": "110101199003074514"} and the header
//     "Authorization: APPCODE <appcode>" (the marketplace's simple
//     authentication; an unknown appcode is HTTP 401).
//   - The answer is JSON {"code": "0", "message": "成功", "result":
//     {"res": "1"|"2"|"3", "description": …, "sex", "birthday"}} where res 1
//     means name and number match (一致), 2 that they do not (不一致) and 3
//     that the number is not in the database (无此身份证号码). A code other
//     than "0" is a refused request ("400" bad parameters).
//
// Callers check the GB 11643 checksum (ihos.ValidIDNumber) first, so a
// mistyped number costs no paid call and gets its own message.
package idverify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"ihos"
)

// Result is a verification's outcome.
type Result struct {
	Match bool
	// Reason says why not, for the person (Chinese); "" on a match.
	Reason string
}

// Verifier checks a name against an ID number.
type Verifier interface {
	Verify(ctx context.Context, name, idNumber string) (Result, error)
}

// Result codes of the answer's "res".
const (
	ResMatch    = "1"
	ResMismatch = "2"
	ResNoRecord = "3"
)

// Request and Answer are the wire JSON.
type Request struct {
	Name     string `json:"name"`
	IDCardNo string `json:"idCardNo"`
}

// Answer is the service's JSON answer.
type Answer struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Result  *Detail `json:"result,omitempty"`
}

// Detail is the verification result inside an Answer.
type Detail struct {
	Res         string `json:"res"`
	Description string `json:"description"`
	Sex         string `json:"sex,omitempty"`
	Birthday    string `json:"birthday,omitempty"`
}

// Path is where the service listens, below the base URL.
const Path = "/idcard/verify"

// Client is the HTTP adapter.
type Client struct {
	URL     string // base URL; Path is appended
	AppCode string
	HTTP    *http.Client
}

// Verify asks the service whether name and idNumber belong together.
func (c *Client) Verify(ctx context.Context, name, idNumber string) (Result, error) {
	body, _ := json.Marshal(Request{Name: name, IDCardNo: strings.ToUpper(idNumber)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+Path, bytes.NewReader(body))
	if err != nil {
		return Result{}, ihos.Internal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "APPCODE "+c.AppCode)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	unavailable := func(err error) error {
		return &ihos.Error{Code: ihos.EUnavailable, Message: "实名认证服务暂时无法使用，请稍后再试", Err: err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{}, unavailable(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var a Answer
	if err := json.Unmarshal(raw, &a); err != nil || resp.StatusCode != http.StatusOK || a.Code != "0" || a.Result == nil {
		return Result{}, unavailable(fmt.Errorf("idverify: HTTP %d: %.200s", resp.StatusCode, raw))
	}
	switch a.Result.Res {
	case ResMatch:
		return Result{Match: true}, nil
	case ResMismatch:
		return Result{Reason: "姓名与身份证号不一致，请核对后重新输入"}, nil
	case ResNoRecord:
		return Result{Reason: "身份证号码不存在，请核对后重新输入"}, nil
	}
	return Result{}, unavailable(fmt.Errorf("idverify: unknown res %q", a.Result.Res))
}
