// Command go-grader reports one learner's score to gradecast with the generated Go
// stubs (gen/go), the way an external grader written in Go would.
//
//	.data/go-bin/go-grader --address 127.0.0.1:50051 --token "$TOKEN" \
//	    --submission-id 4821 --points-earned 7
//
// It prints what gradecast did with the score:
//
//	submission 4821: event <uuid>, sequence 1, new, published
//
// A refused score prints every broken rule (the google.rpc.BadRequest field
// violations of the status) and exits 2; any other failure, after the retries,
// exits 1. Build it with scripts/go-build.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode"

	gradecastv1 "gradecast/gen/go/gradecast/v1"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes, as the Python example grader uses them.
const (
	exitFailed  = 1
	exitRefused = 2
)

// graderFlags holds the command line, parsed once in main.
type graderFlags struct {
	connection     connectionFlags
	deadline       time.Duration
	resendFor      time.Duration
	queueName      string
	submissionID   int64
	pointsPossible int
	pointsEarned   int
	courseID       string
	userID         string
	moduleID       string
	queueKey       string
}

func parseFlags() graderFlags {
	var f graderFlags
	flag.StringVar(&f.connection.address, "address", "127.0.0.1:50051", "gradecast host:port")
	// No flag default from the environment: --help would print the token.
	flag.StringVar(&f.connection.token, "token", "",
		"the grader's token, sent as \"authorization: Bearer <token>\" (default: $GRADECAST_TOKEN)")
	flag.BoolVar(&f.connection.useTLS, "tls", false, "use TLS, trusting the system's root CAs")
	flag.StringVar(&f.connection.tlsCAFile, "tls-ca", "", "use TLS, trusting this PEM CA (a private CA)")
	flag.BoolVar(&f.connection.allowPlaintextToken, "plaintext-token", false,
		"send --token without TLS to an address other than loopback (anyone on the path can read it)")
	flag.DurationVar(&f.deadline, "deadline", 10*time.Second,
		"deadline of one call, gRPC's own retries (service config) included")
	flag.DurationVar(&f.resendFor, "resend-for", 30*time.Second,
		"keep sending the identical request this long while the call fails UNAVAILABLE or DEADLINE_EXCEEDED (0: once)")
	flag.StringVar(&f.queueName, "queue-name", "go-grader", "the grader queue (XQueue's queuename)")
	flag.Int64Var(&f.submissionID, "submission-id", 0, "the edx-submissions id (gradecast refuses one below 1)")
	flag.IntVar(&f.pointsPossible, "points-possible", 10, "most points the learner could earn")
	flag.IntVar(&f.pointsEarned, "points-earned", 0, "points the learner earned")
	flag.StringVar(&f.courseID, "course-id", "course-v1:edX+DemoX+Demo_Course", "the course key")
	flag.StringVar(&f.userID, "user-id", "106ecd878f4148a5cabb6bbb0979b730", "the learner's anonymous student id")
	flag.StringVar(&f.moduleID, "module-id",
		"block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a", "the problem's usage key")
	flag.StringVar(&f.queueKey, "queue-key", "", "the key XQueue sent with the submission (default: key-<submission id>)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "go-grader: reports one score to gradecast's ScoreService.\n\nUsage: go-grader --submission-id N --points-earned N [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if f.connection.token == "" {
		f.connection.token = os.Getenv("GRADECAST_TOKEN")
	}
	if f.queueKey == "" {
		f.queueKey = fmt.Sprintf("key-%d", f.submissionID)
	}
	return f
}

func main() {
	// Before anything dials: grpc-go older than 1.40 honours the service config's
	// retry policy only when GRPC_GO_RETRY=on was set at start-up.
	enableGrpcRetries()
	os.Exit(run(parseFlags()))
}

func run(f graderFlags) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	score, err := scoreData(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-grader: %v\n", err)
		return exitFailed
	}
	conn, err := dial(ctx, f.connection)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-grader: %v\n", err)
		return exitFailed
	}
	defer conn.Close()

	request := &gradecastv1.SubmitScoreRequest{ScoreData: score}
	response, err := submitWithResends(ctx, gradecastv1.NewScoreServiceClient(conn), request, f.deadline, f.resendFor)
	if err != nil {
		return reportFailure(err)
	}
	fmt.Printf("submission %d: event %s, sequence %d, %s, %s\n",
		f.submissionID, response.GetEventId(), response.GetSubmissionSequence(),
		choose(response.GetReplayed(), "replayed", "new"), choose(response.GetPublished(), "published", "pending"))
	return 0
}

// scoreData builds the nine fields of the ADR from the flags; score_msg is what
// a grader replies to XQueue, and the LMS shows its `msg` to the learner.
func scoreData(f graderFlags) (*gradecastv1.ExternalGraderScoreData, error) {
	fraction := 0.0
	if f.pointsPossible > 0 {
		fraction = float64(f.pointsEarned) / float64(f.pointsPossible)
	}
	// Encoded without Go's default HTML escaping: `msg` is HTML that the LMS
	// shows as it is, and `\u003cp\u003e` would only make it unreadable in logs.
	var reply strings.Builder
	encoder := json.NewEncoder(&reply)
	encoder.SetEscapeHTML(false)
	err := encoder.Encode(map[string]any{
		"correct": f.pointsEarned == f.pointsPossible,
		"score":   fraction,
		"msg":     fmt.Sprintf("<p>%d/%d tests passed.</p>", f.pointsEarned, f.pointsPossible),
	})
	if err != nil {
		return nil, fmt.Errorf("score_msg: %w", err)
	}
	return &gradecastv1.ExternalGraderScoreData{
		PointsPossible: int32(f.pointsPossible),
		PointsEarned:   int32(f.pointsEarned),
		CourseId:       f.courseID,
		ScoreMsg:       strings.TrimSuffix(reply.String(), "\n"),
		SubmissionId:   f.submissionID,
		UserId:         f.userID,
		ModuleId:       f.moduleID,
		QueueKey:       f.queueKey,
		QueueName:      f.queueName,
	}, nil
}

// reportFailure prints a failed call; a refused score lists every field
// violation gradecast put in the status details (grpc-status-details-bin).
func reportFailure(err error) int {
	var refused *refusedScoreError
	if !errors.As(err, &refused) {
		fmt.Fprintf(os.Stderr, "failed: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(os.Stderr, "refused (%s): %s\n", codeName(refused.status.Code()), refused.status.Message())
	for _, violation := range fieldViolations(refused.status) {
		fmt.Fprintf(os.Stderr, "  %s: %s\n", violation.GetField(), violation.GetDescription())
	}
	return exitRefused
}

// fieldViolations collects the violations of every google.rpc.BadRequest in the
// status details. grpc-go decodes each Any into the type registered under its
// type URL, which is genproto's errdetails.BadRequest.
func fieldViolations(st *status.Status) []*errdetails.BadRequest_FieldViolation {
	var violations []*errdetails.BadRequest_FieldViolation
	for _, detail := range st.Details() {
		if badRequest, ok := detail.(*errdetails.BadRequest); ok {
			violations = append(violations, badRequest.GetFieldViolations()...)
		}
	}
	return violations
}

// codeName spells a code as gRPC's documentation does (INVALID_ARGUMENT, not
// grpc-go's InvalidArgument), so the output reads like the other clients'.
func codeName(code codes.Code) string {
	var name strings.Builder
	previous := ' '
	for _, r := range code.String() {
		if unicode.IsUpper(r) && unicode.IsLower(previous) {
			name.WriteByte('_')
		}
		name.WriteRune(unicode.ToUpper(r))
		previous = r
	}
	return name.String()
}

func choose(condition bool, yes, no string) string {
	if condition {
		return yes
	}
	return no
}
