// The Go grpc-gateway peer: Portico's GET /api/v1/users/{id} path built the usual Go way, to measure
// Portico's gateway against (bench/gateway_users.py). grpc-gateway v2 handlers generated from proto/'s
// google.api.http rules; in front of them the token checks and rate limits Portico's gateway applies;
// behind them the same users backend, the bearer token forwarded as gRPC metadata.
//
//	./generate.sh && go run . -listen 127.0.0.1:8090
//
// Configured by Portico's own variables: PORTICO_USERS_TARGET, PORTICO_AUTH_TARGET (GetJwks),
// PORTICO_REDIS_URL, PORTICO_JWT_ISSUER, PORTICO_JWT_AUDIENCE, PORTICO_JWT_LEEWAY and
// PORTICO_GATEWAY_RATE_LIMIT_PER_IP / _PER_USER (or the unprefixed PORTICO_RATE_LIMIT_*).
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "portico.local/bench/peer/gen/auth/v1"
	usersv1 "portico.local/bench/peer/gen/users/v1"
)

// setting is the first of the variables that is set, else fallback.
func setting(fallback string, names ...string) string {
	for _, name := range names {
		if value, ok := os.LookupEnv(name); ok && value != "" {
			return value
		}
	}
	return fallback
}

func dial(target string) *grpc.ClientConn {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatalf("grpc client for %s: %v", target, err)
	}
	return conn
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "HTTP listen address")
	flag.Parse()
	log.SetPrefix("grpc-gateway-peer: ")

	leeway, err := strconv.ParseFloat(setting("30", "PORTICO_JWT_LEEWAY"), 64)
	if err != nil {
		log.Fatalf("PORTICO_JWT_LEEWAY: %v", err)
	}
	perIP, err := parseLimit(setting("100/minute", "PORTICO_GATEWAY_RATE_LIMIT_PER_IP", "PORTICO_RATE_LIMIT_PER_IP"))
	if err != nil {
		log.Fatal(err)
	}
	perUser, err := parseLimit(setting("1000/hour", "PORTICO_GATEWAY_RATE_LIMIT_PER_USER", "PORTICO_RATE_LIMIT_PER_USER"))
	if err != nil {
		log.Fatal(err)
	}
	redisOptions, err := redis.ParseURL(setting("redis://127.0.0.1:6379/0", "PORTICO_REDIS_URL"))
	if err != nil {
		log.Fatalf("PORTICO_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(redisOptions)
	defer rdb.Close()
	usersConn := dial(setting("127.0.0.1:50051", "PORTICO_USERS_TARGET"))
	defer usersConn.Close()
	authConn := dial(setting("127.0.0.1:50052", "PORTICO_JWKS_TARGET", "PORTICO_AUTH_TARGET"))
	defer authConn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	keys := newKeySet(authv1.NewAuthServiceClient(authConn))
	keys.refresh(ctx) // the first fetch now; /ready answers 200 once one has succeeded

	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newEnvelope()),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			return metadata.Pairs("x-request-id", r.Header.Get("X-Request-Id"))
		}),
	)
	if err := usersv1.RegisterUserServiceHandlerClient(ctx, mux, usersv1.NewUserServiceClient(usersConn)); err != nil {
		log.Fatal(err)
	}
	server := &http.Server{
		Addr: *listen,
		Handler: &edge{
			verifier:    newVerifier(keys, setting("portico-auth", "PORTICO_JWT_ISSUER"), setting("portico", "PORTICO_JWT_AUDIENCE"), time.Duration(leeway*float64(time.Second))),
			revocations: revocations{rdb},
			limits:      limits{redis_rate.NewLimiter(rdb), perIP, perUser},
			keys:        keys,
			next:        mux,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	log.Printf("listening on %s", *listen)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
