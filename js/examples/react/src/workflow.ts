/**
 * The default workflow: the graph recorded in the project's
 * `success_single` trace (EmptyImage -> TestStepProgress -> ImageInvert ->
 * SaveImage), injected at build time by vite.config.ts.
 */
declare const __DEFAULT_WORKFLOW__: Record<string, unknown>;

/** The default workflow (API format). */
export const DEFAULT_WORKFLOW: Record<string, unknown> = __DEFAULT_WORKFLOW__;
