/**
 * The Runs view's queue-URL helpers (src-renderer/src/views/runs/queue-url.ts): what it shows of
 * a redis URL never holds the password, and the password from its own field goes back into the
 * URL the engine gets. Expected strings written by hand.
 */
import { describe, expect, it } from 'vitest';
import { queuePassword, redactQueue, withPassword } from '../../../src-renderer/src/views/runs/queue-url.ts';

describe('queue URL redaction', () => {
  it('hides passwords, with and without a user name, and leaves URLs without one alone', () => {
    expect(redactQueue('redis://:pw@host:6379/0')).toBe('redis://:***@host:6379/0');
    expect(redactQueue('rediss://default:s3cr%40t@cache.example:6380')).toBe('rediss://default:***@cache.example:6380');
    expect(redactQueue('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactQueue('redis://:***@h:1')).toBe('redis://:***@h:1');
  });
  it('reads the password out (decoded), never the *** placeholder', () => {
    expect(queuePassword('rediss://default:s3cr%40t@cache.example:6380')).toBe('s3cr@t');
    expect(queuePassword('redis://:***@h:1')).toBe('');
    expect(queuePassword('redis://h:1')).toBe('');
  });
  it('puts the password back in place of *** or into a URL without credentials', () => {
    expect(withPassword('redis://:***@host:6379/0', 'pw')).toBe('redis://:pw@host:6379/0');
    expect(withPassword('rediss://default:***@cache.example:6380', 's3cr@t')).toBe('rediss://default:s3cr%40t@cache.example:6380');
    expect(withPassword('redis://host:6379/2', 'p w')).toBe('redis://:p%20w@host:6379/2');
    expect(withPassword('redis://host:6379', 'x')).toBe('redis://:x@host:6379');
    expect(withPassword('redis://:***@h:1', '')).toBe('redis://:***@h:1');
  });
});
