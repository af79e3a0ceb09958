package admin

import (
	"container/list"
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"

	"ihos"
)

// The list cache keeps the encoded JSON of list API responses, and List keeps the
// total of each filter (the COUNT(*) every page of it needs), so that a list page
// asked for again is served without touching the database.
//
// Correctness rests on one invariant: every write to this database goes through
// DB.Tx in this process; CLI tools talk to the service over HTTP. Tx advances the
// database's write generation (sqldb.DB.Generation) after every commit. A result
// is tagged with the generation read before its queries ran, and is served only
// while the generation is still that value, so any committed write anywhere in the
// service (admin store, auth, audit, sync apply, outbox) invalidates every cached
// list at once, and a request that starts after a write has returned never sees a
// result computed before it. When the generation moves, the whole cache is
// dropped. See docs/decisions/0005-list-cache.md.
//
// Authorization runs on every request before the cache is consulted, and the key
// carries everything a page depends on besides the database: the resource, the
// normalized query, and the actor's role and department scope. Scoped actors
// therefore never share a cached page with another scope.

// DefaultListCacheBytes bounds the list cache of a Store on SQLite.
const DefaultListCacheBytes = 32 << 20

// maxCounts bounds the cached filter totals; past it they are dropped and
// counted again.
const maxCounts = 4096

// listCache is a byte-bounded LRU of encoded list pages, all of one generation.
type listCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]*list.Element // of *cacheEntry
	lru     list.List                // most recently used at the front
	bytes   int
	counts  map[string]int // filter totals by table and condition
}

type cacheEntry struct {
	key  string
	body []byte
}

// entryOverhead approximates the bookkeeping of one entry (map slot, list
// element, headers) so a cache of tiny pages is still bounded.
const entryOverhead = 160

// sync drops everything when gen is newer than what the cache holds, and
// reports whether gen is the cache's generation (an older gen, read by a request
// that started before the last write, neither reads nor fills the cache).
func (c *listCache) sync(gen uint64) bool {
	if gen > c.gen || c.entries == nil {
		c.gen = gen
		c.entries = map[string]*list.Element{}
		c.lru.Init()
		c.bytes = 0
		c.counts = map[string]int{}
	}
	return gen == c.gen
}

func (c *listCache) get(gen uint64, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(gen) {
		return nil, false
	}
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cacheEntry).body, true
}

// put stores body under key for gen, evicting the least recently used pages to
// stay within maxBytes. A page larger than an eighth of the cache is not kept.
func (c *listCache) put(gen uint64, key string, body []byte, maxBytes int) {
	size := len(key) + len(body) + entryOverhead
	if maxBytes <= 0 || size > maxBytes/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(gen) {
		return
	}
	if e, ok := c.entries[key]; ok {
		old := e.Value.(*cacheEntry)
		c.bytes += len(body) - len(old.body)
		old.body = body
		c.lru.MoveToFront(e)
	} else {
		c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, body: body})
		c.bytes += size
	}
	for c.bytes > maxBytes {
		e := c.lru.Back()
		old := e.Value.(*cacheEntry)
		c.lru.Remove(e)
		delete(c.entries, old.key)
		c.bytes -= len(old.key) + len(old.body) + entryOverhead
	}
}

func (c *listCache) count(gen uint64, key string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(gen) {
		return 0, false
	}
	n, ok := c.counts[key]
	return n, ok
}

func (c *listCache) putCount(gen uint64, key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sync(gen) {
		return
	}
	if len(c.counts) >= maxCounts {
		c.counts = map[string]int{}
	}
	c.counts[key] = n
}

// keyBuilder builds unambiguous cache keys: every part is length-prefixed, so
// no choice of filter names or values can make two different requests collide.
type keyBuilder struct{ strings.Builder }

func (k *keyBuilder) add(s string) {
	k.WriteString(strconv.Itoa(len(s)))
	k.WriteByte(':')
	k.WriteString(s)
}

// listKey is the cache key of a list request by the actor in ctx: the resource,
// the actor's role and department scope, and the query as List normalizes it.
// Authorization must already have passed; the key does not replace it.
func listKey(ctx context.Context, r *Resource, q Query) string {
	a, _ := ihos.ActorFrom(ctx)
	var k keyBuilder
	k.add(r.Name)
	k.add(a.Role)
	k.add(scopedDept(ctx, r)) // "" unscoped, "-" scoped without a department
	q = q.normalized()
	k.add(q.Q)
	k.add(q.Sort)
	k.add(strconv.Itoa(q.Page))
	k.add(strconv.Itoa(q.PageSize))
	names := make([]string, 0, len(q.Filters))
	for name := range q.Filters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		k.add(name)
		k.add(q.Filters[name])
	}
	return k.String()
}

// countKey is the key of a filter's total: the table, the WHERE condition and
// its arguments (which carry a scoped actor's department).
func countKey(table, cond string, args []any) string {
	var k keyBuilder
	k.add(table)
	k.add(cond)
	for _, a := range args {
		switch v := a.(type) {
		case string:
			k.add("s" + v)
		case int:
			k.add("i" + strconv.Itoa(v))
		case int64:
			k.add("i" + strconv.FormatInt(v, 10))
		case bool:
			k.add("b" + strconv.FormatBool(v))
		default:
			return "" // not cached: an argument type the key cannot spell
		}
	}
	return k.String()
}

// normalized returns q with List's defaults and bounds applied, as far as they
// change nothing but the spelling of the same request.
func (q Query) normalized() Query {
	q.Q = strings.TrimSpace(q.Q)
	if q.Page == 0 {
		q.Page = 1
	}
	if q.PageSize == 0 {
		q.PageSize = 20
	}
	if q.Page > 1_000_000 {
		q.Page = 1_000_000
	}
	return q
}
