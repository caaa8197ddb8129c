from gradecast.v1 import event_pb2 as _event_pb2
from gradecast.v1 import score_pb2 as _score_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetScoreRequest(_message.Message):
    __slots__ = ["queue_name", "submission_id"]
    QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    queue_name: str
    submission_id: int
    def __init__(self, submission_id: _Optional[int] = ..., queue_name: _Optional[str] = ...) -> None: ...

class GetScoreResponse(_message.Message):
    __slots__ = ["event", "published"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.ExternalGraderScoreSubmitted
    published: bool
    def __init__(self, event: _Optional[_Union[_event_pb2.ExternalGraderScoreSubmitted, _Mapping]] = ..., published: bool = ...) -> None: ...

class SubmitScoreRequest(_message.Message):
    __slots__ = ["score_data"]
    SCORE_DATA_FIELD_NUMBER: _ClassVar[int]
    score_data: _score_pb2.ExternalGraderScoreData
    def __init__(self, score_data: _Optional[_Union[_score_pb2.ExternalGraderScoreData, _Mapping]] = ...) -> None: ...

class SubmitScoreResponse(_message.Message):
    __slots__ = ["event_id", "event_time", "published", "replayed", "submission_sequence"]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_time: _timestamp_pb2.Timestamp
    published: bool
    replayed: bool
    submission_sequence: int
    def __init__(self, event_id: _Optional[str] = ..., event_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., replayed: bool = ..., published: bool = ..., submission_sequence: _Optional[int] = ...) -> None: ...
