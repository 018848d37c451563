package serverless

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// lockedSource serializes calls to a rand.Source, which need not be safe for
// concurrent use.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

func newLockedSource(src rand.Source) rand.Source {
	if l, ok := src.(*lockedSource); ok {
		return l
	}
	return &lockedSource{src: src}
}

// Uint64 returns the next value of the wrapped source.
func (l *lockedSource) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.src.Uint64()
}

// unitFloat returns a value in [0, 1) from src.
func unitFloat(src rand.Source) float64 {
	return float64(src.Uint64()>>11) / (1 << 53)
}

// newUUID returns a random (version 4) UUID drawn from src.
func newUUID(src rand.Source) string {
	var b [16]byte
	hi, lo := src.Uint64(), src.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// newTransport returns an HTTP transport of the worker's own, so its
// connection pool is not shared with anything else in the process.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return t
}
