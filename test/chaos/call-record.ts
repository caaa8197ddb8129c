/** Why a call was made: a new submission, the same score again, or a changed score. */
export type CallKind = "first" | "retry" | "regrade";

/** How a call ended after all its attempts. */
export type CallOutcome =
  | {
      readonly kind: "ok";
      readonly eventId: string;
      /** `Date.now()` when the OK answer arrived. */
      readonly answeredAtMs: number;
      readonly isReplayed: boolean;
      readonly isPublished: boolean;
      readonly submissionSequence: number;
    }
  /** A status that retrying cannot change (INVALID_ARGUMENT, FAILED_PRECONDITION...). */
  | { readonly kind: "error"; readonly code: number; readonly message: string }
  /** Every attempt failed for want of a live gradecast, until the call's retry time ran out. */
  | { readonly kind: "unanswered"; readonly lastError: string };

/** One SubmitScore call of the campaign, with every attempt it took. */
export interface CallRecord {
  readonly index: number;
  readonly kind: CallKind;
  readonly submissionId: bigint;
  readonly pointsEarned: number;
  readonly scoreMsg: string;
  /** For a retry: the event id the score got when it was accepted, which the answer must repeat. */
  readonly expectedEventId: string | undefined;
  /** For a retry: its sequence; for a regrade: the previous one + 1; for a first: 1. */
  readonly expectedSequence: number;
  readonly attempts: number;
  /** Attempts that were in flight when gradecast died (killed, or exited by itself). */
  readonly cutByDeath: number;
  readonly outcome: CallOutcome;
}
