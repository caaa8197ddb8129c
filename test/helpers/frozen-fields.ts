/**
 * The released contract, field by field. Changing a number or a name here is a
 * breaking change for every grader and LMS: the tests that read this table fail
 * first so nobody does it by accident. Types use descriptor.proto's numbering
 * (5 int32, 3 int64, 9 string, 11 message, 8 bool, 13 uint32).
 */
export interface FrozenField {
  name: string;
  number: number;
  type: number;
}

const INT32 = 5;
const INT64 = 3;
const STRING = 9;
const MESSAGE = 11;
const BOOL = 8;
const UINT32 = 13;

export const FROZEN_FIELDS: Record<string, FrozenField[]> = {
  "gradecast.v1.ExternalGraderScoreData": [
    { name: "points_possible", number: 1, type: INT32 },
    { name: "points_earned", number: 2, type: INT32 },
    { name: "course_id", number: 3, type: STRING },
    { name: "score_msg", number: 4, type: STRING },
    { name: "submission_id", number: 5, type: INT64 },
    { name: "user_id", number: 6, type: STRING },
    { name: "module_id", number: 7, type: STRING },
    { name: "queue_key", number: 8, type: STRING },
    { name: "queue_name", number: 9, type: STRING },
  ],
  "gradecast.v1.EventMetadata": [
    { name: "id", number: 1, type: STRING },
    { name: "event_type", number: 2, type: STRING },
    { name: "minorversion", number: 3, type: UINT32 },
    { name: "source", number: 4, type: STRING },
    { name: "sourcehost", number: 5, type: STRING },
    { name: "sourcelib", number: 6, type: STRING },
    { name: "time", number: 7, type: MESSAGE },
  ],
  "gradecast.v1.ExternalGraderScoreSubmitted": [
    { name: "metadata", number: 1, type: MESSAGE },
    { name: "score_data", number: 2, type: MESSAGE },
    { name: "submission_sequence", number: 3, type: UINT32 },
  ],
  "gradecast.v1.SubmitScoreRequest": [{ name: "score_data", number: 1, type: MESSAGE }],
  "gradecast.v1.SubmitScoreResponse": [
    { name: "event_id", number: 1, type: STRING },
    { name: "event_time", number: 2, type: MESSAGE },
    { name: "replayed", number: 3, type: BOOL },
    { name: "published", number: 4, type: BOOL },
    { name: "submission_sequence", number: 5, type: UINT32 },
  ],
  "gradecast.v1.GetScoreRequest": [
    { name: "submission_id", number: 1, type: INT64 },
    { name: "queue_name", number: 2, type: STRING },
  ],
  "gradecast.v1.GetScoreResponse": [
    { name: "event", number: 1, type: MESSAGE },
    { name: "published", number: 2, type: BOOL },
  ],
  "google.rpc.Status": [
    { name: "code", number: 1, type: INT32 },
    { name: "message", number: 2, type: STRING },
    { name: "details", number: 3, type: MESSAGE },
  ],
  "google.rpc.BadRequest": [{ name: "field_violations", number: 1, type: MESSAGE }],
  "google.rpc.BadRequest.FieldViolation": [
    { name: "field", number: 1, type: STRING },
    { name: "description", number: 2, type: STRING },
  ],
};
