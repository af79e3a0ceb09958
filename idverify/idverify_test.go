package idverify_test

import (
	"context"
	"testing"

	"ihos"
	"ihos/his/hissim"
	"ihos/idverify"
	"ihos/idverify/idsim"
	"ihos/internal/simulate"
)

func TestVerify(t *testing.T) {
	sim, err := idsim.Start(context.Background(), idsim.Config{AppCode: "demo", People: []idsim.Person{{Name: "李小明", IDNumber: "110101202201010014"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c := &idverify.Client{URL: sim.URL(), AppCode: "demo"}
	ctx := context.Background()
	p := hissim.DemoPatients[0]
	if r, err := c.Verify(ctx, p.Name, p.IDNumber); err != nil || !r.Match {
		t.Fatalf("demo patient: %+v %v", r, err)
	}
	if r, err := c.Verify(ctx, "李小明", "110101202201010014"); err != nil || !r.Match {
		t.Fatalf("added person: %+v %v", r, err)
	}
	if r, err := c.Verify(ctx, "王五", p.IDNumber); err != nil || r.Match || r.Reason != "姓名与身份证号不一致，请核对后重新输入" {
		t.Fatalf("wrong name: %+v %v", r, err)
	}
	// A valid number that is not on the list.
	other := "11010119900307" + "451"
	other += string(ihos.IDCheckDigit(other))
	if r, err := c.Verify(ctx, "张三", other); err != nil || r.Match || r.Reason != "身份证号码不存在，请核对后重新输入" {
		t.Fatalf("unknown number: %+v %v", r, err)
	}
	bad := &idverify.Client{URL: sim.URL(), AppCode: "wrong"}
	if _, err := bad.Verify(ctx, p.Name, p.IDNumber); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("wrong appcode: %v", err)
	}
	sim.SetMode(simulate.Mode{Name: simulate.Down})
	if _, err := c.Verify(ctx, p.Name, p.IDNumber); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("down: %v", err)
	}
}
