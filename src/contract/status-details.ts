import {
  BadRequest,
  type BadRequest_FieldViolation,
} from "../../gen/ts/google/rpc/error_details.js";
import { Status } from "../../gen/ts/google/rpc/status.js";

/** Type URL of the BadRequest detail inside a google.rpc.Status. */
export const BAD_REQUEST_TYPE_URL = "type.googleapis.com/google.rpc.BadRequest";

/** Name of the trailer every gRPC library reads rich status details from. */
export const STATUS_DETAILS_TRAILER = "grpc-status-details-bin";

/** The google.rpc.Status bytes of an INVALID_ARGUMENT answer listing `violations`. */
export function encodeBadRequestStatus(
  code: number,
  message: string,
  violations: readonly BadRequest_FieldViolation[],
): Uint8Array {
  return Status.encode({
    code,
    message,
    details: [
      {
        typeUrl: BAD_REQUEST_TYPE_URL,
        value: Buffer.from(BadRequest.encode({ fieldViolations: [...violations] }).finish()),
      },
    ],
  }).finish();
}

/** The field violations in google.rpc.Status bytes (none when it has no BadRequest). */
export function decodeFieldViolations(statusBytes: Uint8Array): BadRequest_FieldViolation[] {
  return Status.decode(statusBytes)
    .details.filter((detail) => detail.typeUrl === BAD_REQUEST_TYPE_URL)
    .flatMap((detail) => BadRequest.decode(detail.value).fieldViolations);
}
