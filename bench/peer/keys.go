package main

// The auth backend's token-signing keys, fetched over gRPC (auth.v1.AuthService/GetJwks) as Portico's
// gateway fetches them (meshkit/auth/keys.py): cached, refetched when stale or on an unknown kid, at
// most one fetch at a time and one per cool-down, so forged kids cannot turn into a flood of fetches.

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	authv1 "portico.local/bench/peer/gen/auth/v1"
)

// errKeysUnavailable: the kid is not known and the last fetch failed, so the token may be valid (503).
var errKeysUnavailable = errors.New("the token-signing keys are unavailable")

type verificationKey struct {
	alg string // "EdDSA" or "ES256": the only algorithm a token signed by this key may name
	key any    // ed25519.PublicKey or *ecdsa.PublicKey, as golang-jwt wants them
}

// jwkKey converts one JWK; only the asymmetric algorithms Portico signs with are accepted.
func jwkKey(jwk *authv1.Jwk) (verificationKey, error) {
	if use := jwk.GetUse(); use != "" && use != "sig" {
		return verificationKey{}, fmt.Errorf("use %q", use)
	}
	x, err := base64.RawURLEncoding.DecodeString(jwk.GetX())
	if err != nil {
		return verificationKey{}, fmt.Errorf("x: %w", err)
	}
	switch {
	case jwk.GetAlg() == "EdDSA" && jwk.GetKty() == "OKP" && jwk.GetCrv() == "Ed25519":
		if len(x) != ed25519.PublicKeySize {
			return verificationKey{}, fmt.Errorf("Ed25519 key of %d bytes", len(x))
		}
		return verificationKey{"EdDSA", ed25519.PublicKey(x)}, nil
	case jwk.GetAlg() == "ES256" && jwk.GetKty() == "EC" && jwk.GetCrv() == "P-256":
		y, err := base64.RawURLEncoding.DecodeString(jwk.GetY())
		if err != nil || len(x) != 32 || len(y) != 32 {
			return verificationKey{}, errors.New("P-256 coordinates")
		}
		// Checks that the point is on the curve.
		key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verificationKey{}, err
		}
		return verificationKey{"ES256", key}, nil
	}
	return verificationKey{}, fmt.Errorf("alg %q kty %q crv %q", jwk.GetAlg(), jwk.GetKty(), jwk.GetCrv())
}

// parseJwks keeps the usable keys; a malformed one is skipped, the others still work.
func parseJwks(reply *authv1.GetJwksResponse) map[string]verificationKey {
	keys := make(map[string]verificationKey, len(reply.GetKeys()))
	for _, jwk := range reply.GetKeys() {
		if jwk.GetKid() == "" {
			continue
		}
		key, err := jwkKey(jwk)
		if err != nil {
			log.Printf("skipping JWK %q: %v", jwk.GetKid(), err)
			continue
		}
		keys[jwk.GetKid()] = key
	}
	return keys
}

type keySet struct {
	client   authv1.AuthServiceClient
	cacheFor time.Duration
	cooldown time.Duration
	timeout  time.Duration

	fetching sync.Mutex // single flight

	mu          sync.RWMutex
	keys        map[string]verificationKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch started, whatever its outcome
}

func newKeySet(client authv1.AuthServiceClient) *keySet {
	return &keySet{client: client, cacheFor: 300 * time.Second, cooldown: 10 * time.Second, timeout: 3 * time.Second}
}

// key returns the key named kid; found is false when a fetched key set lacks it (the token is invalid).
func (s *keySet) key(ctx context.Context, kid string) (key verificationKey, found bool, err error) {
	s.mu.RLock()
	key, found = s.keys[kid]
	fresh := time.Since(s.fetchedAt) <= s.cacheFor
	s.mu.RUnlock()
	if found && fresh {
		return key, true, nil
	}
	s.refresh(ctx)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if key, found = s.keys[kid]; found {
		return key, true, nil // possibly stale: the last set we know beats no answer
	}
	if !s.fetchedAt.Before(s.attemptedAt) {
		return verificationKey{}, false, nil // the latest fetch succeeded and lacks it: unknown
	}
	return verificationKey{}, false, errKeysUnavailable
}

// refresh fetches unless another caller did within the cool-down.
func (s *keySet) refresh(ctx context.Context) {
	s.fetching.Lock()
	defer s.fetching.Unlock()
	s.mu.RLock()
	recent := time.Since(s.attemptedAt) < s.cooldown
	s.mu.RUnlock()
	if recent {
		return
	}
	started := time.Now()
	s.mu.Lock()
	s.attemptedAt = started
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	reply, err := s.client.GetJwks(ctx, &authv1.GetJwksRequest{})
	if err != nil {
		log.Printf("JWKS fetch failed: %v", err)
		return
	}
	keys := parseJwks(reply)
	s.mu.Lock()
	s.keys, s.fetchedAt = keys, started
	s.mu.Unlock()
}

// ready: a key set has been fetched at least once.
func (s *keySet) ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return !s.fetchedAt.IsZero()
}
