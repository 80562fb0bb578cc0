package main

// Portico's answer shapes on grpc-gateway: a success body is {"data": <response_body>} with proto
// field names and fields at their default value printed (as the gateway's json_format call does), and
// a gRPC error becomes {"error": {...}} with the contract's status mapping.

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

type envelope struct{ runtime.JSONPb }

func newEnvelope() *envelope {
	return &envelope{runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

func (e *envelope) Marshal(v any) ([]byte, error) {
	body, err := e.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+9)
	out = append(out, `{"data":`...)
	out = append(out, body...)
	return append(out, '}'), nil
}

// Portico's codes by HTTP status (the contract's table); anything unlisted is INTERNAL_ERROR.
var errorCodes = map[int]string{
	400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
	429: "RATE_LIMIT_EXCEEDED", 503: "UNAVAILABLE", 504: "TIMEOUT",
}

func httpStatus(code codes.Code) int {
	switch code {
	case codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest // the contract's mapping, where grpc-gateway's differs
	case codes.Aborted:
		return http.StatusConflict
	case codes.NotFound, codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied,
		codes.AlreadyExists, codes.ResourceExhausted, codes.Unavailable, codes.DeadlineExceeded:
		return runtime.HTTPStatusFromCode(code)
	}
	return http.StatusInternalServerError
}

func errorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	s := status.Convert(err)
	code := httpStatus(s.Code())
	name, ok := errorCodes[code]
	if !ok {
		name = "INTERNAL_ERROR"
	}
	message := s.Message()
	if code >= 500 {
		message = http.StatusText(code) // nothing internal reaches a client
	}
	writeError(w, code, name, message, r.Header.Get("X-Request-Id"))
}
