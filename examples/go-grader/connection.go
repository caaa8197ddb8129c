package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// scoreServiceConfig is gradecast's published gRPC service config: gRPC itself
// resends SubmitScore after UNAVAILABLE, up to 5 attempts, waiting a random time
// below 0.1 s, 0.2 s, 0.4 s, ... (at most 2 s) between them. The TypeScript
// client (SCORE_SERVICE_CONFIG in src/client/service-config.ts) and the Python
// client use the same policy. Retrying is safe because gradecast answers a
// repeated score with its first answer.
const scoreServiceConfig = `{"methodConfig":[{"name":[{"service":"gradecast.v1.ScoreService","method":"SubmitScore"}],"retryPolicy":{"maxAttempts":5,"initialBackoff":"0.1s","maxBackoff":"2s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}`

// connectionFlags says where gradecast is and how to reach it.
type connectionFlags struct {
	address             string
	token               string
	useTLS              bool
	tlsCAFile           string
	allowPlaintextToken bool
}

// dial connects to gradecast over TLS (--tls, --tls-ca) or plaintext, with the
// token on every call and the service config's retry policy.
func dial(ctx context.Context, c connectionFlags) (*grpc.ClientConn, error) {
	isTLS := c.useTLS || c.tlsCAFile != ""
	if c.token != "" && !isTLS && !c.allowPlaintextToken && !isLoopback(c.address) {
		return nil, fmt.Errorf("refusing to send a grader token without TLS to %s: use --tls or --tls-ca, "+
			"or allow it with --plaintext-token", c.address)
	}
	options := []grpc.DialOption{grpc.WithDefaultServiceConfig(scoreServiceConfig)}
	switch {
	case c.tlsCAFile != "":
		creds, err := credentials.NewClientTLSFromFile(c.tlsCAFile, "")
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		options = append(options, grpc.WithTransportCredentials(creds))
	case c.useTLS:
		options = append(options, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
	default:
		options = append(options, grpc.WithInsecure())
	}
	if c.token != "" {
		// Past the check above, a plaintext connection is one the token may use.
		options = append(options, grpc.WithPerRPCCredentials(bearerToken{token: c.token, requireTLS: isTLS}))
	}
	// Not blocking: the first call waits for the connection, and a server that is
	// not up yet is an UNAVAILABLE call that the retries handle.
	return grpc.DialContext(ctx, c.address, options...)
}

// bearerToken sends `authorization: Bearer <token>` with every call. grpc-go's
// oauth credentials would do it too but insist on TLS, even to loopback.
type bearerToken struct {
	token      string
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity makes grpc-go itself refuse to send the token of a
// TLS connection over anything else.
func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }

// isLoopback reports whether a host:port stays on this machine (localhost,
// 127.0.0.0/8, ::1), the only place a token may go without TLS by default.
func isLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// enableGrpcRetries re-executes this program with GRPC_GO_RETRY=on when the
// grpc-go it was built with predates 1.40 (Debian 12 ships 1.33): those read the
// variable once, before main runs, and ignore a service config's retryPolicy
// without it. Nothing happens when the variable is set either way, so
// GRPC_GO_RETRY=off still turns gRPC's retries off.
func enableGrpcRetries() {
	if _, isSet := os.LookupEnv("GRPC_GO_RETRY"); isSet || !grpcBefore(1, 40) {
		return
	}
	self, err := os.Executable()
	if err == nil {
		err = syscall.Exec(self, os.Args, append(os.Environ(), "GRPC_GO_RETRY=on"))
	}
	// Exec only returns when it failed; the grader's own resends still apply.
	fmt.Fprintf(os.Stderr, "go-grader: gRPC retries stay off (cannot re-exec with GRPC_GO_RETRY=on: %v)\n", err)
}

// grpcBefore reports whether grpc-go's version is below major.minor.
func grpcBefore(major, minor int) bool {
	parts := strings.SplitN(grpc.Version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	gotMajor, errMajor := strconv.Atoi(parts[0])
	gotMinor, errMinor := strconv.Atoi(parts[1])
	if errMajor != nil || errMinor != nil {
		return false
	}
	return gotMajor < major || gotMajor == major && gotMinor < minor
}
