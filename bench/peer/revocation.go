package main

// Revoked tokens, as Portico's verifiers ask Redis (meshkit/auth/revocation.py): one MGET of the
// token's jti mark, its user's "valid after" time and its login's mark, on every request.
// (Portico also keeps an in-process set fed from Kafka; the peer asks Redis alone.)

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"
)

type revocations struct{ rdb *redis.Client }

func (r revocations) revoked(ctx context.Context, p principal) (bool, error) {
	sid := p.sessionID
	if sid == "" {
		sid = "-"
	}
	values, err := r.rdb.MGet(ctx,
		"portico:revoked:jti:"+p.jti,
		"portico:valid_after:"+p.tenantID+":"+p.sub,
		"portico:revoked:sid:"+sid,
	).Result()
	if err != nil {
		return false, err
	}
	if values[0] != nil || (p.sessionID != "" && values[2] != nil) {
		return true, nil
	}
	if mark, ok := values[1].(string); ok {
		after, err := strconv.ParseFloat(mark, 64)
		issued := float64(p.issuedAt.UnixNano()) / 1e9
		return err != nil || issued <= after, nil
	}
	return false, nil
}
