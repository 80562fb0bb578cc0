package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	authv1 "portico.local/bench/peer/gen/auth/v1"
)

// jwksServer answers GetJwks with fixed keys, or fails.
type jwksServer struct {
	authv1.AuthServiceClient
	keys []*authv1.Jwk
	err  error
}

func (s *jwksServer) GetJwks(context.Context, *authv1.GetJwksRequest, ...grpc.CallOption) (*authv1.GetJwksResponse, error) {
	return &authv1.GetJwksResponse{Keys: s.keys}, s.err
}

func testKey(t *testing.T) (ed25519.PrivateKey, *authv1.Jwk) {
	t.Helper()
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return private, &authv1.Jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(public), Kid: "k1", Alg: "EdDSA", Use: "sig"}
}

func claims(change func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now().Unix()
	c := jwt.MapClaims{
		"sub": "u1", "tenant_id": "t1", "roles": []string{"user"}, "jti": "j1", "iat": now, "exp": now + 600,
		"iss": "portico-auth", "aud": "portico", "email": "a@example.com",
	}
	if change != nil {
		change(c)
	}
	return c
}

func sign(t *testing.T, key ed25519.PrivateKey, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	token := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	token.Header["typ"], token.Header["kid"] = "at+jwt", "k1"
	for k, v := range header {
		token.Header[k] = v
	}
	signed, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestVerifierAcceptsAPorticoAccessToken(t *testing.T) {
	private, jwk := testKey(t)
	v := newVerifier(newKeySet(&jwksServer{keys: []*authv1.Jwk{jwk}}), "portico-auth", "portico", 30*time.Second)
	p, err := v.verify(context.Background(), sign(t, private, claims(nil), nil))
	if err != nil || p.sub != "u1" || p.tenantID != "t1" || p.jti != "j1" {
		t.Fatalf("got %+v, %v", p, err)
	}
}

func TestVerifierRefusesWhatPorticoRefuses(t *testing.T) {
	private, jwk := testKey(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	cases := map[string]string{
		"wrong issuer":   sign(t, private, claims(func(c jwt.MapClaims) { c["iss"] = "elsewhere" }), nil),
		"wrong audience": sign(t, private, claims(func(c jwt.MapClaims) { c["aud"] = "other" }), nil),
		"expired":        sign(t, private, claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Unix() - 60 }), nil),
		"no exp":         sign(t, private, claims(func(c jwt.MapClaims) { delete(c, "exp") }), nil),
		"no tenant":      sign(t, private, claims(func(c jwt.MapClaims) { delete(c, "tenant_id") }), nil),
		"no roles":       sign(t, private, claims(func(c jwt.MapClaims) { delete(c, "roles") }), nil),
		"exp a string":   sign(t, private, claims(func(c jwt.MapClaims) { c["exp"] = "9999999999" }), nil),
		"not at+jwt":     sign(t, private, claims(nil), map[string]any{"typ": "JWT"}),
		"unknown kid":    sign(t, private, claims(nil), map[string]any{"kid": "k2"}),
		"other key":      sign(t, other, claims(nil), nil),
		"alg none":       unsigned(t, claims(nil)),
	}
	for name, token := range cases {
		v := newVerifier(newKeySet(&jwksServer{keys: []*authv1.Jwk{jwk}}), "portico-auth", "portico", 30*time.Second)
		if _, err := v.verify(context.Background(), token); !errors.Is(err, errInvalidToken) {
			t.Errorf("%s: got %v, want errInvalidToken", name, err)
		}
	}
}

func unsigned(t *testing.T, c jwt.MapClaims) string {
	token := jwt.NewWithClaims(jwt.SigningMethodNone, c)
	token.Header["typ"], token.Header["kid"] = "at+jwt", "k1"
	signed, err := token.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestAnUnknownKidWhileAuthIsDownIsUnavailableNotInvalid(t *testing.T) {
	private, _ := testKey(t)
	v := newVerifier(newKeySet(&jwksServer{err: errors.New("down")}), "portico-auth", "portico", 30*time.Second)
	if _, err := v.verify(context.Background(), sign(t, private, claims(nil), nil)); !errors.Is(err, errKeysUnavailable) {
		t.Fatalf("got %v, want errKeysUnavailable", err)
	}
}

func TestLimitsParsePorticosSpelling(t *testing.T) {
	limit, err := parseLimit("100/minute")
	if err != nil || limit.Rate != 100 || limit.Burst != 100 || limit.Period != time.Minute {
		t.Fatalf("got %+v, %v", limit, err)
	}
	for _, bad := range []string{"0/minute", "100/week", "100", ""} {
		if _, err := parseLimit(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
