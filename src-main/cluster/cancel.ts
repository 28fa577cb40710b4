/** A run cancelled on the cluster: a Redis key workers check before each item (kept a week, longer than any shard). */
export const cancelKey = (runId: string) => `loupe:cancelled:${runId}`;
export const CANCEL_TTL_S = 7 * 24 * 3600;
