/** The Experiments queue keeps runs that finished in this session: which ones, from job/state events. */
import { describe, expect, it } from 'vitest';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { SessionRuns } from '../../src-renderer/src/lib/session-runs.svelte.ts';

const run = (id: string, status: RunInfo['status'], updatedAt: string) => ({ id, status, updatedAt }) as RunInfo;

function fakeClient() {
  const listeners = new Set<(r: RunInfo) => void>();
  return {
    on: (_name: string, l: (r: RunInfo) => void) => (listeners.add(l), () => listeners.delete(l)),
    emit: (r: RunInfo) => listeners.forEach((l) => l(r)),
    listeners,
  };
}

describe('SessionRuns', () => {
  it('keeps runs seen active here once they finish, newest first; never runs finished before the session', () => {
    const client = fakeClient();
    const s = new SessionRuns(client as never, [run('old', 'done', '1'), run('a', 'running', '2')]);
    client.emit(run('b', 'queued', '3'));
    // Both still active: nothing finished yet.
    expect(s.finished([run('old', 'done', '1'), run('a', 'running', '2'), run('b', 'queued', '3')])).toEqual([]);
    const now = [run('old', 'done', '1'), run('a', 'done', '5'), run('b', 'cancelled', '6'), run('c', 'done', '7')];
    // 'c' finished without ever being seen active here (e.g. before this window opened): not listed.
    expect(s.finished(now).map((r) => r.id)).toEqual(['b', 'a']);
    s.clearFinished(now);
    expect(s.finished(now)).toEqual([]);
    s.dispose();
    expect(client.listeners.size).toBe(0);
  });
});
