export type { CallKind, CallOutcome, CallRecord } from "./call-record.js";
export { type CampaignReport, runChaosCampaign } from "./campaign.js";
export {
  CHAOS_FORMS,
  type ChaosForm,
  type ChaosNatsForm,
  type ChaosOptions,
  type ChaosOptionsInput,
  type ChaosStoreKind,
  DEFAULT_CHAOS_OPTIONS,
  FAULT_KINDS,
  type FaultKind,
  type FaultScheduleOptions,
  formName,
  makeChaosOptions,
} from "./chaos-options.js";
export type { FaultRecord } from "./fault-runner.js";
export { formatCampaign, formatTotals } from "./summary.js";
export type { Verdict } from "./verdict.js";
