"""The gRPC service config gradecast clients share: how the channel retries SubmitScore."""

from __future__ import annotations

import json
from collections.abc import Mapping

#: SubmitScore is retried on UNAVAILABLE by the channel itself, up to 5 attempts, waiting about
#: 0.1 s, 0.2 s, 0.4 s and 0.8 s between them (each wait jittered, at most 2 s). Safe because
#: SubmitScore is idempotent: the identical score sent again is answered with the first event id
#: and publishes nothing. The TypeScript client (`SCORE_SERVICE_CONFIG` of
#: src/client/service-config.ts) and the Go example carry the same config.
SCORE_SERVICE_CONFIG: Mapping[str, object] = {
    "methodConfig": [
        {
            "name": [{"service": "gradecast.v1.ScoreService", "method": "SubmitScore"}],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.1s",
                "maxBackoff": "2s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ]
}


def service_config_json(config: Mapping[str, object] = SCORE_SERVICE_CONFIG) -> str:
    """`config` as the JSON text the `grpc.service_config` channel option takes."""
    return json.dumps(config)


def service_config_options(
    config: Mapping[str, object] | None = SCORE_SERVICE_CONFIG,
) -> tuple[tuple[str, object], ...]:
    """The channel options that apply `config`; with None, options that turn retries off."""
    if config is None:
        return (("grpc.enable_retries", 0),)
    return (("grpc.enable_retries", 1), ("grpc.service_config", service_config_json(config)))
