package main

// What runs before grpc-gateway's mux, as in Portico's gateway: a request id, the bearer token verified
// and checked against revocations, the rate limits charged, then the call under the route's deadline.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

const callDeadline = 3 * time.Second // GetUser's deadline_ms in users.proto

type edge struct {
	verifier    *verifier
	revocations revocations
	limits      limits
	keys        *keySet
	next        http.Handler
}

func (e *edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		w.WriteHeader(http.StatusOK)
		return
	case "/ready": // keys fetched: a token can be verified
		if e.keys.ready() {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" || len(requestID) > 128 {
		requestID = newRequestID()
		r.Header.Set("X-Request-Id", requestID)
	}
	w.Header().Set("X-Request-ID", requestID)

	authorizations := r.Header.Values("Authorization")
	if len(authorizations) != 1 {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing bearer token", requestID)
		return
	}
	scheme, token, _ := strings.Cut(authorizations[0], " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "bearer") || token == "" {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing bearer token", requestID)
		return
	}
	ctx := r.Context()
	p, err := e.verifier.verify(ctx, token)
	if errors.Is(err, errKeysUnavailable) {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "Cannot verify tokens right now", requestID)
		return
	} else if err != nil {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or expired token", requestID)
		return
	}
	revoked, err := e.revocations.revoked(ctx, p)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "Token revocations cannot be checked", requestID)
		return
	} else if revoked {
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Token has been revoked", requestID)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	result, err := e.limits.allow(ctx, ip, p)
	if err != nil {
		log.Printf("rate limit unavailable, request let through: %v", err) // Portico fails open too
	} else {
		limitHeaders(w.Header(), result)
		if result.Allowed == 0 {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(result.RetryAfter.Seconds()+0.999))))
			writeError(w, http.StatusTooManyRequests, "RATE_LIMIT_EXCEEDED", "Too many requests", requestID)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, callDeadline)
	defer cancel()
	e.next.ServeHTTP(w, r.WithContext(ctx))
}

func limitHeaders(h http.Header, result *redis_rate.Result) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(result.Limit.Burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(result.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(result.ResetAfter).Unix()+1, 10))
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		StatusCode int    `json:"status_code"`
		RequestID  string `json:"request_id"`
	} `json:"error"`
}

// writeError answers in Portico's error shape.
func writeError(w http.ResponseWriter, status int, code, message, requestID string) {
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.StatusCode, body.Error.RequestID = code, message, status, requestID
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
