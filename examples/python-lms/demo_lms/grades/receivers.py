def print_score(sender, signal, score, metadata, **kwargs):
    """What edx-platform's receiver gets: `score` (openedx-events' ExternalGraderScoreData) and
    `metadata` (the event's id, time and source as gradecast published them)."""
    print(
        f"LMS received {metadata.event_type} {metadata.id}: submission {score.submission_id}, "
        f"{score.points_earned}/{score.points_possible} for {score.user_id} "
        f"on {score.queue_name}",
        flush=True,
    )
