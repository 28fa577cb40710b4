import { describe, expect, it } from 'vitest';
import { redactCommand } from '../../src-main/engine/data-lock.ts';

describe('the lock file records the command without its secrets', () => {
  it('hides queue URL credentials and serve tokens', () => {
    expect(redactCommand(['node', 'loupe.ts', 'worker', '--queue', 'redis://:s3cret@10.0.0.2:6379', '--store', '/mnt/r'])).toBe('node loupe.ts worker --queue redis://***@10.0.0.2:6379 --store /mnt/r');
    expect(redactCommand(['node', 'loupe.ts', 'run', '--queue=rediss://user:pw@host:6380/0'])).toBe('node loupe.ts run --queue=rediss://***@host:6380/0');
    expect(redactCommand(['node', 'loupe.ts', 'serve', '--token', 'abcdef0123456789abcdef0123456789', '--port', '1'])).toBe('node loupe.ts serve --token *** --port 1');
    expect(redactCommand(['node', 'loupe.ts', 'serve', '--token=abc'])).toBe('node loupe.ts serve --token=***');
    expect(redactCommand(['node', 'loupe.ts', 'runs'])).toBe('node loupe.ts runs');
  });
});
