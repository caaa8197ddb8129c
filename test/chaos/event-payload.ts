import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/**
 * What the verifier reads from an event's payload. Decoded from the wire format with the field
 * numbers of proto/gradecast/v1/event.proto and score.proto, not with gradecast's generated
 * code: a bug there (a field written under the wrong number) must not hide itself.
 */
export interface EventPayload {
  /** `metadata.id` (field 1.1). */
  readonly eventId: string;
  /** `score_data.submission_id` (2.5). */
  readonly submissionId: bigint;
  /** `score_data.points_earned` (2.2). */
  readonly pointsEarned: number;
  /** `score_data.score_msg` (2.4). */
  readonly scoreMsg: string;
  /** `submission_sequence` (3). */
  readonly submissionSequence: number;
}

/** Decodes an `ExternalGraderScoreSubmitted`; throws on bytes that are not one. */
export function decodeEventPayload(bytes: Uint8Array): EventPayload {
  let eventId = "";
  let submissionId = 0n;
  let pointsEarned = 0;
  let scoreMsg = "";
  let submissionSequence = 0;
  forEachField(bytes, (reader, fieldNo, wireType) => {
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) {
      forEachField(reader.bytes(), (metadata, metadataFieldNo, metadataWireType) => {
        if (metadataFieldNo === 1 && metadataWireType === WireType.LengthDelimited) {
          eventId = metadata.string();
        } else metadata.skip(metadataWireType);
      });
    } else if (fieldNo === 2 && wireType === WireType.LengthDelimited) {
      forEachField(reader.bytes(), (score, scoreFieldNo, scoreWireType) => {
        if (scoreFieldNo === 2 && scoreWireType === WireType.Varint) pointsEarned = score.int32();
        else if (scoreFieldNo === 4 && scoreWireType === WireType.LengthDelimited) {
          scoreMsg = score.string();
        } else if (scoreFieldNo === 5 && scoreWireType === WireType.Varint) {
          submissionId = BigInt(score.int64());
        } else score.skip(scoreWireType);
      });
    } else if (fieldNo === 3 && wireType === WireType.Varint) {
      submissionSequence = reader.uint32();
    } else reader.skip(wireType);
  });
  return { eventId, submissionId, pointsEarned, scoreMsg, submissionSequence };
}

function forEachField(
  bytes: Uint8Array,
  onField: (reader: BinaryReader, fieldNo: number, wireType: WireType) => void,
): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    onField(reader, fieldNo, wireType);
  }
}
