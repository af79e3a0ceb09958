package admin

import (
	"context"
	"fmt"
	"testing"

	"ihos"
)

func TestListCacheBoundsAndGenerations(t *testing.T) {
	var c listCache
	body := make([]byte, 1000)
	const maxBytes = 64 << 10
	for i := range 200 {
		c.put(1, fmt.Sprint(i), body, maxBytes)
		if c.bytes > maxBytes {
			t.Fatalf("cache holds %d bytes, bound %d", c.bytes, maxBytes)
		}
	}
	if _, ok := c.get(1, "0"); ok {
		t.Fatal("the least recently used page was not evicted")
	}
	if _, ok := c.get(1, "199"); !ok {
		t.Fatal("the newest page is missing")
	}
	if c.put(1, "big", make([]byte, maxBytes/8), maxBytes); len(c.entries) > 0 && c.entries["big"] != nil {
		t.Fatal("a page over an eighth of the cache was kept")
	}
	// A request that read an older generation neither reads nor fills it.
	c.put(0, "old", body, maxBytes)
	if _, ok := c.get(1, "old"); ok {
		t.Fatal("a page of an older generation was stored")
	}
	// A newer generation drops everything.
	c.putCount(1, "n", 7)
	if _, ok := c.get(2, "199"); ok {
		t.Fatal("a page survived a write")
	}
	if _, ok := c.count(2, "n"); ok || c.bytes != 0 || len(c.entries) != 0 {
		t.Fatal("the cache was not emptied on a new generation")
	}
	if _, ok := c.get(1, "199"); ok {
		t.Fatal("an old generation was served after a newer one")
	}
}

func TestListKeyIsUnambiguous(t *testing.T) {
	r := &Resource{Name: "staff", Scope: "department_id"}
	ctx := func(role, dept string, scoped bool) context.Context {
		return ihos.WithActor(context.Background(), ihos.Actor{Role: role, DepartmentID: dept, Scoped: scoped})
	}
	admin := ctx("sysadmin", "", false)
	keys := map[string]string{}
	for name, k := range map[string]string{
		"a=b&c":          listKey(admin, r, Query{Filters: map[string]string{"a": "b", "c": ""}}),
		"a=b:1:c":        listKey(admin, r, Query{Filters: map[string]string{"a": "b1:c"}}),
		"q=x":            listKey(admin, r, Query{Q: "x"}),
		"sort=x":         listKey(admin, r, Query{Sort: "x"}),
		"dept d1":        listKey(ctx("dept_admin", "d1", true), r, Query{}),
		"dept d2":        listKey(ctx("dept_admin", "d2", true), r, Query{}),
		"dept none":      listKey(ctx("dept_admin", "", true), r, Query{}),
		"unscoped d1":    listKey(ctx("dept_admin", "d1", false), r, Query{}),
		"auditor":        listKey(ctx("auditor", "", false), r, Query{}),
		"page 2":         listKey(admin, r, Query{Page: 2}),
		"page size 50":   listKey(admin, r, Query{PageSize: 50}),
		"other resource": listKey(admin, &Resource{Name: "departments"}, Query{}),
	} {
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		keys[k] = name
	}
	// Spellings of one request share one.
	if listKey(admin, r, Query{Q: " x ", Page: 1, PageSize: 20}) != listKey(admin, r, Query{Q: "x"}) {
		t.Error("defaults and surrounding spaces change the key")
	}
}
