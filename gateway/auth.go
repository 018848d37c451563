package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/comfypod/comfypod/gateway/store"
)

// KeyPrefix starts every API key, so a leaked one is recognisable (and
// scrubbed from logs).
const KeyPrefix = "cpk_"

// NewKey makes a new API key: the secret to hand out once, and the record to
// store (which holds only the secret's hash).
func NewKey(name string, now time.Time) (secret string, k *store.Key, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("gateway: making a key: %w", err)
	}
	secret = KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, &store.Key{
		ID:        "key_" + randomID(8),
		Name:      name,
		Hash:      HashKey(secret),
		Prefix:    secret[:len(KeyPrefix)+6],
		CreatedAt: now.UTC().Truncate(time.Millisecond),
	}, nil
}

// HashKey is how a key is stored and looked up: the hex SHA-256 of the
// secret. Keys are 256 random bits, so a fast hash is as safe as a slow one.
func HashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomID returns n random bytes as lowercase base32.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return idEncoding.EncodeToString(b)
}

// newJobID makes a job id: 120 random bits, 24 lowercase letters and digits.
func newJobID() string { return randomID(15) }

// validJobID reports whether s looks like an id newJobID makes, so that
// garbage never reaches the store.
func validJobID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// caller is who made a request: the key's id, or "" for an open service.
type caller struct {
	owner string
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// authTTL is how long a key lookup is cached; a key revoked on another
// replica stops working within it (at once on the replica that revoked it).
const authTTL = 10 * time.Second

// authMaxCached bounds the lookup cache, so that random keys cannot grow it
// without end.
const authMaxCached = 10000

// authenticator checks bearer keys against the store, with a short cache.
type authenticator struct {
	st    store.Store
	open  bool
	clock func() time.Time

	mu       sync.Mutex
	cache    map[string]authEntry // by hash
	keys     int                  // active keys, for open mode
	keysAt   time.Time
	keysOK   bool
	fetching map[string]*sync.WaitGroup
}

type authEntry struct {
	key *store.Key // nil: no such key
	at  time.Time
}

func newAuthenticator(st store.Store, open bool, now func() time.Time) *authenticator {
	return &authenticator{st: st, open: open, clock: now, cache: map[string]authEntry{}, fetching: map[string]*sync.WaitGroup{}}
}

var (
	errNoKey  = errors.New("no API key")
	errBadKey = errors.New("unknown or revoked API key")
)

// check returns the caller of a request, errNoKey or errBadKey, or a store
// error.
func (a *authenticator) check(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if a.open {
			n, err := a.activeKeys(r.Context())
			if err != nil {
				return caller{}, err
			}
			if n == 0 {
				return caller{}, nil
			}
		}
		return caller{}, errNoKey
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return caller{}, errBadKey
	}
	secret = strings.TrimSpace(secret)
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) > 100 {
		return caller{}, errBadKey
	}
	k, err := a.lookup(r.Context(), HashKey(secret))
	if err != nil {
		return caller{}, err
	}
	if k == nil || !k.RevokedAt.IsZero() {
		return caller{}, errBadKey
	}
	return caller{owner: k.ID}, nil
}

// lookup finds a key by hash, from the cache when fresh. Concurrent lookups
// of one hash share a single store read.
func (a *authenticator) lookup(ctx context.Context, hash string) (*store.Key, error) {
	for {
		a.mu.Lock()
		if e, ok := a.cache[hash]; ok && a.clock().Sub(e.at) < authTTL {
			a.mu.Unlock()
			return e.key, nil
		}
		if wg, ok := a.fetching[hash]; ok {
			a.mu.Unlock()
			wg.Wait()
			continue
		}
		wg := &sync.WaitGroup{}
		wg.Add(1)
		a.fetching[hash] = wg
		a.mu.Unlock()

		k, err := a.st.KeyByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			k, err = nil, nil
		}
		a.mu.Lock()
		delete(a.fetching, hash)
		if err == nil {
			if len(a.cache) >= authMaxCached {
				clear(a.cache)
			}
			a.cache[hash] = authEntry{key: k, at: a.clock()}
		}
		a.mu.Unlock()
		wg.Done()
		return k, err
	}
}

// activeKeys counts the keys that are not revoked, cached like lookups.
func (a *authenticator) activeKeys(ctx context.Context) (int, error) {
	a.mu.Lock()
	if a.keysOK && a.clock().Sub(a.keysAt) < authTTL {
		n := a.keys
		a.mu.Unlock()
		return n, nil
	}
	a.mu.Unlock()
	n, err := a.st.CountActiveKeys(ctx)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.keys, a.keysAt, a.keysOK = n, a.clock(), true
	a.mu.Unlock()
	return n, nil
}
