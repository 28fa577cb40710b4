/** Small display helpers shared by views. */
export function duration(ms: number | null): string {
  if (ms === null) return '—';
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

export function shortHash(hash: string): string {
  return hash.slice(0, 10);
}

export function when(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** A file size in MB (one decimal below 10 MB). */
export function megabytes(bytes: number): string {
  const mb = bytes / 1e6;
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb)} MB`;
}
