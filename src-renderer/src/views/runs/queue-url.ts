/**
 * Queue URLs in the renderer: what the Runs view shows of a `redis://` URL never includes its
 * password (same rule as src-main/cluster/queue-url.ts `redact`, which the renderer may not import),
 * and the password typed in its own field is put back into the URL only when the call is made.
 */

/** The URL with any password replaced by `***` (also for strings that do not parse). */
export function redactQueue(raw: string): string {
  return raw.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

/** The password in a `redis://user:pw@host` URL (decoded), or '' when there is none or it is the `***` placeholder. */
export function queuePassword(raw: string): string {
  const m = /^rediss?:\/\/[^:@/]*:([^@/]*)@/i.exec(raw);
  if (!m || m[1] === '***') return '';
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!;
  }
}

/** The URL the engine gets: the shown (redacted) URL with `password` in place of `***` / any password. */
export function withPassword(shown: string, password: string): string {
  if (!password) return shown;
  const enc = encodeURIComponent(password);
  if (/^rediss?:\/\/[^:@/]*:[^@/]*@/i.test(shown)) return shown.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, (_, head: string) => `${head}${enc}@`);
  // No credentials in the URL yet: `redis://host` → `redis://:pw@host`.
  return shown.replace(/^(rediss?:\/\/)([^@/]*)(\/|$)/i, (_, scheme: string, host: string, tail: string) => `${scheme}:${enc}@${host}${tail}`);
}
