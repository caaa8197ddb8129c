package main

import (
	"context"
	"fmt"
	"os"
	"time"

	gradecastv1 "gradecast/gen/go/gradecast/v1"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusedScoreError is gradecast's answer to a score it will never accept as
// sent: INVALID_ARGUMENT (a broken rule) or FAILED_PRECONDITION (a submission id
// reused for another learner or problem). Sending it again cannot help.
type refusedScoreError struct{ status *status.Status }

func (e *refusedScoreError) Error() string { return e.status.Err().Error() }

// Waits between resends: doubling from the first, at most the last.
const (
	firstResendWait = 500 * time.Millisecond
	maxResendWait   = 5 * time.Second
)

// submitWithResends calls SubmitScore, and while the call fails with
// UNAVAILABLE (gRPC's own retries used up: gradecast down for longer than a
// blip) or DEADLINE_EXCEEDED, sends the very same request again until
// resendFor has passed. The request is never changed between attempts:
// gradecast answers a repeated score with the first answer (same event id,
// `replayed`, nothing published twice), so an attempt whose answer was lost
// costs nothing when it is sent again.
func submitWithResends(
	ctx context.Context,
	client gradecastv1.ScoreServiceClient,
	request *gradecastv1.SubmitScoreRequest,
	deadline, resendFor time.Duration,
) (*gradecastv1.SubmitScoreResponse, error) {
	giveUpAt := time.Now().Add(resendFor)
	wait := firstResendWait
	for attempt := 1; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, deadline)
		response, err := client.SubmitScore(callCtx, request)
		cancel()
		if err == nil {
			return response, nil
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument, codes.FailedPrecondition:
			return nil, &refusedScoreError{status: st}
		case codes.Unavailable, codes.DeadlineExceeded:
			if time.Now().Add(wait).After(giveUpAt) || ctx.Err() != nil {
				return nil, fmt.Errorf("after %d attempt(s): %w", attempt, err)
			}
		default:
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "attempt %d: %s: %s; sending the identical request again in %s\n",
			attempt, codeName(st.Code()), st.Message(), wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("after %d attempt(s): %w", attempt, ctx.Err())
		}
		if wait *= 2; wait > maxResendWait {
			wait = maxResendWait
		}
	}
}
