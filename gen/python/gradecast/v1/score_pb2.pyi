from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ExternalGraderScoreData(_message.Message):
    __slots__ = ["course_id", "module_id", "points_earned", "points_possible", "queue_key", "queue_name", "score_msg", "submission_id", "user_id"]
    COURSE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_POSSIBLE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_KEY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_MSG_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    course_id: str
    module_id: str
    points_earned: int
    points_possible: int
    queue_key: str
    queue_name: str
    score_msg: str
    submission_id: int
    user_id: str
    def __init__(self, points_possible: _Optional[int] = ..., points_earned: _Optional[int] = ..., course_id: _Optional[str] = ..., score_msg: _Optional[str] = ..., submission_id: _Optional[int] = ..., user_id: _Optional[str] = ..., module_id: _Optional[str] = ..., queue_key: _Optional[str] = ..., queue_name: _Optional[str] = ...) -> None: ...
