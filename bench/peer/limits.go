package main

// Rate limits per client IP and per user: GCRA in Redis with go-redis/redis_rate, whose limits allow a
// burst of N and then one request every period/N, like Portico's (gateway/ratelimit). redis_rate takes
// one key per call, so the two limits cost two round trips where Portico's Lua script makes one, and
// the first is charged even when the second refuses.

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

var limitSpec = regexp.MustCompile(`^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$`)

var periods = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour,
}

// parseLimit reads Portico's N/second|minute|hour|day.
func parseLimit(spec string) (redis_rate.Limit, error) {
	m := limitSpec.FindStringSubmatch(spec)
	if m == nil {
		return redis_rate.Limit{}, fmt.Errorf("rate limit %q: expected N/second|minute|hour|day", spec)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return redis_rate.Limit{}, fmt.Errorf("rate limit %q: N must be at least 1", spec)
	}
	return redis_rate.Limit{Rate: n, Burst: n, Period: periods[m[2]]}, nil
}

type limits struct {
	limiter *redis_rate.Limiter
	perIP   redis_rate.Limit
	perUser redis_rate.Limit
}

// allow charges the request to its IP, then to its user; the result of the one closest to refusing.
func (l limits) allow(ctx context.Context, ip string, p principal) (*redis_rate.Result, error) {
	byIP, err := l.limiter.Allow(ctx, "ip:"+ip, l.perIP)
	if err != nil || byIP.Allowed == 0 {
		return byIP, err
	}
	byUser, err := l.limiter.Allow(ctx, "user:"+p.tenantID+":"+p.sub, l.perUser)
	if err != nil || byUser.Allowed == 0 || byUser.Remaining < byIP.Remaining {
		return byUser, err
	}
	return byIP, nil
}
