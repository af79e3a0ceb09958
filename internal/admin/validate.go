package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	mobileRE   = regexp.MustCompile(`^1[3-9]\d{9}$`)
	landlineRE = regexp.MustCompile(`^0\d{2,3}-?\d{7,8}(-\d{1,6})?$`)
)

// normalize converts one input value to the field's Go type and checks it.
// It returns the value (string, int64 or bool) or a Chinese message.
func normalize(f *Field, v any) (any, string) {
	switch f.Type {
	case Int, Money:
		n, ok := toInt(v)
		if !ok {
			if f.Type == Money {
				return nil, "请输入以分为单位的整数金额"
			}
			return nil, "请输入整数"
		}
		if n < int64(f.Min) {
			return nil, fmt.Sprintf("不能小于 %d", f.Min)
		}
		if f.Max != 0 && n > int64(f.Max) {
			return nil, fmt.Sprintf("不能大于 %d", f.Max)
		}
		return n, ""
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, ""
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true", "1", "on", "yes", "是":
				return true, ""
			case "false", "0", "off", "no", "否", "":
				return false, ""
			}
		case json.Number:
			if x == "1" || x == "0" {
				return x == "1", ""
			}
		}
		return nil, "请选择是或否"
	}
	s, ok := v.(string)
	if !ok {
		if v == nil {
			s = ""
		} else {
			return nil, "应为文本"
		}
	}
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return nil, "包含无效字符"
	}
	if strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && (f.Type != LongText || (r != '\n' && r != '\r' && r != '\t'))
	}) {
		return nil, "包含控制字符"
	}
	max := f.Max
	if max == 0 {
		max = 100
		if f.Type == LongText {
			max = 2000
		}
	}
	if f.Type != Password && utf8.RuneCountInString(s) > max {
		return nil, fmt.Sprintf("不能超过 %d 个字", max)
	}
	if s == "" {
		return "", ""
	}
	switch f.Type {
	case Enum:
		for _, o := range f.Options {
			if o.Value == s {
				return s, ""
			}
		}
		return nil, "请从列表中选择"
	case Phone:
		s = strings.ReplaceAll(s, " ", "")
		if !mobileRE.MatchString(s) && !landlineRE.MatchString(s) {
			return nil, "电话号码格式不正确（手机号 11 位，座机如 010-12345678）"
		}
	case IDNumber:
		s = strings.ToUpper(s)
		if msg := checkIDNumber(s); msg != "" {
			return nil, msg
		}
	}
	return s, ""
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// checkIDNumber validates an 18-digit resident identity number (GB 11643-1999):
// digits, a real birth date not in the future, and the ISO 7064 MOD 11-2 check
// character.
func checkIDNumber(s string) string {
	if len(s) != 18 {
		return "身份证号应为 18 位"
	}
	for i := 0; i < 17; i++ {
		if s[i] < '0' || s[i] > '9' {
			return "身份证号格式不正确"
		}
	}
	birth, err := time.Parse("20060102", s[6:14])
	if err != nil || birth.Year() < 1900 || birth.After(time.Now()) {
		return "身份证号中的出生日期无效"
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(s[i]-'0') * w
	}
	if "10X98765432"[sum%11] != s[17] {
		return "身份证号校验位不正确"
	}
	return ""
}
