"""A Python grader reporting scores to gradecast with `gradecast_client`.

    pip install "./python[grader]"
    python examples/python-grader/grader.py --address 127.0.0.1:50051 --token "$TOKEN" \
        --submission-id 4821 --points-earned 7

Reports one learner's score (`--token`, or GRADECAST_TOKEN; `--tls-ca` for a private CA), and
prints what gradecast did with it. A refused score prints every broken rule and exits 2; any
other failure (after gRPC's retries of UNAVAILABLE and the client's of DEADLINE_EXCEEDED) exits 1.
"""

import argparse
import json
import os
import sys

from gradecast.v1 import score_pb2
from gradecast_client import ScoreCallError, ScoreClient, ScoreRefusedError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50051", help="gradecast host:port")
    parser.add_argument("--token", default=os.environ.get("GRADECAST_TOKEN"))
    parser.add_argument("--tls-ca", help="PEM CA to trust (TLS); plaintext without it")
    parser.add_argument("--queue-name", default="python-grader")
    parser.add_argument("--submission-id", type=int, required=True)
    parser.add_argument("--points-possible", type=int, default=10)
    parser.add_argument("--points-earned", type=int, required=True)
    parser.add_argument("--course-id", default="course-v1:edX+DemoX+Demo_Course")
    parser.add_argument("--user-id", default="106ecd878f4148a5cabb6bbb0979b730")
    parser.add_argument(
        "--module-id",
        default="block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
    )
    parser.add_argument("--queue-key", help="the key XQueue sent with the submission")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    # What graders reply to XQueue: the LMS shows `msg` to the learner.
    fraction = args.points_earned / args.points_possible if args.points_possible else 0
    reply = {
        "correct": args.points_earned == args.points_possible,
        "score": fraction,
        "msg": f"<p>{args.points_earned}/{args.points_possible} tests passed.</p>",
    }
    score = score_pb2.ExternalGraderScoreData(
        points_possible=args.points_possible,
        points_earned=args.points_earned,
        course_id=args.course_id,
        score_msg=json.dumps(reply),
        submission_id=args.submission_id,
        user_id=args.user_id,
        module_id=args.module_id,
        queue_key=args.queue_key or f"key-{args.submission_id}",
        queue_name=args.queue_name,
    )
    with ScoreClient(args.address, token=args.token, tls_ca_file=args.tls_ca) as client:
        try:
            response = client.submit_score(score)
        except ScoreRefusedError as refused:
            print(f"refused ({refused.code.name}): {refused.details}", file=sys.stderr)
            for violation in refused.violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            return 2
        except ScoreCallError as failed:
            print(f"failed after {failed.attempts} call(s): {failed}", file=sys.stderr)
            return 1
    print(
        f"submission {args.submission_id}: event {response.event_id}, "
        f"sequence {response.submission_sequence}, "
        f"{'replayed' if response.replayed else 'new'}, "
        f"{'published' if response.published else 'pending'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
