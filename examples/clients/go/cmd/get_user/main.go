// get_user calls users.v1.UserService/GetUser through the generated client and prints the user as
// JSON (proto field names), or {"error": {"code", "message"}} and exit status 1 on a gRPC error.
//
//	go run ./cmd/get_user --target 127.0.0.1:50051 --token "$TOKEN" --user-id "$ID"
//
// Each flag falls back to PORTICO_USERS_TARGET, PORTICO_TOKEN and PORTICO_USER_ID.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "portico.local/clients/gen/users/v1"
)

const deadline = 5 * time.Second

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// printJSON writes v indented by two spaces, without HTML escaping, like the Python and Node clients.
func printJSON(v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "get_user:", err)
		os.Exit(2)
	}
	os.Stdout.Write(buf.Bytes())
}

func main() {
	target := flag.String("target", os.Getenv("PORTICO_USERS_TARGET"), "users backend host:port (env PORTICO_USERS_TARGET)")
	token := flag.String("token", os.Getenv("PORTICO_TOKEN"), "access token; empty sends no authorization (env PORTICO_TOKEN)")
	userID := flag.String("user-id", os.Getenv("PORTICO_USER_ID"), "id of the user to fetch (env PORTICO_USER_ID)")
	flag.Parse()
	if *target == "" || *userID == "" {
		fmt.Fprintln(os.Stderr, "get_user: --target and --user-id (or PORTICO_USERS_TARGET, PORTICO_USER_ID) are required")
		os.Exit(2)
	}

	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "get_user:", err)
		os.Exit(2)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if *token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*token)
	}

	resp, err := pb.NewUserServiceClient(conn).GetUser(ctx, &pb.GetUserRequest{UserId: *userID})
	if err != nil {
		st := status.Convert(err)
		printJSON(map[string]errorBody{"error": {Code: code.Code(st.Code()).String(), Message: st.Message()}})
		os.Exit(1)
	}

	// protojson adds random spaces on purpose; json.Indent gives the same layout as the other clients.
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp.GetUser())
	if err != nil {
		fmt.Fprintln(os.Stderr, "get_user:", err)
		os.Exit(2)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		fmt.Fprintln(os.Stderr, "get_user:", err)
		os.Exit(2)
	}
	out.WriteByte('\n')
	os.Stdout.Write(out.Bytes())
}
