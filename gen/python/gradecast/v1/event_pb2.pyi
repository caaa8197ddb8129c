from gradecast.v1 import options_pb2 as _options_pb2
from gradecast.v1 import score_pb2 as _score_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventMetadata(_message.Message):
    __slots__ = ["event_type", "id", "minorversion", "source", "sourcehost", "sourcelib", "time"]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MINORVERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCEHOST_FIELD_NUMBER: _ClassVar[int]
    SOURCELIB_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    id: str
    minorversion: int
    source: str
    sourcehost: str
    sourcelib: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., event_type: _Optional[str] = ..., minorversion: _Optional[int] = ..., source: _Optional[str] = ..., sourcehost: _Optional[str] = ..., sourcelib: _Optional[str] = ..., time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExternalGraderScoreSubmitted(_message.Message):
    __slots__ = ["metadata", "score_data", "submission_sequence"]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SCORE_DATA_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    metadata: EventMetadata
    score_data: _score_pb2.ExternalGraderScoreData
    submission_sequence: int
    def __init__(self, metadata: _Optional[_Union[EventMetadata, _Mapping]] = ..., score_data: _Optional[_Union[_score_pb2.ExternalGraderScoreData, _Mapping]] = ..., submission_sequence: _Optional[int] = ...) -> None: ...
