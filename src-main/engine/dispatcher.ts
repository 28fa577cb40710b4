/**
 * Turns an untrusted incoming message into a handler call and its reply.
 * Everything is checked here, once, for every transport: the envelope, the method name,
 * the params against the contract — and the result too, so the engine cannot drift from it.
 */
import { z } from 'zod';
import { LoupeError, toErrorPayload } from '../../src-shared/contract/errors.ts';
import { isMethodName, methods } from '../../src-shared/contract/methods.ts';
import { RequestEnvelope, type ResponseEnvelope, type TensorFrame } from '../../src-shared/contract/wire.ts';
import type { Handlers, WithTensor } from './handlers.ts';

export type Reply = { response: ResponseEnvelope; tensor?: TensorFrame };

function invalid(id: number, message: string, details?: unknown): Reply {
  return { response: { t: 'res', id, ok: false, error: new LoupeError('invalid-message', message, details).toPayload() } };
}

export async function dispatch(handlers: Handlers, raw: unknown): Promise<Reply> {
  const env = RequestEnvelope.safeParse(raw);
  if (!env.success) {
    const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : -1;
    return invalid(id, `malformed request envelope: ${z.prettifyError(env.error)}`, env.error.issues);
  }
  const { id, method, params } = env.data;
  if (!isMethodName(method)) return { response: { t: 'res', id, ok: false, error: { code: 'unknown-method', message: `unknown method "${method}"` } } };
  const parsed = methods[method].params.safeParse(params ?? {});
  if (!parsed.success) return invalid(id, `invalid params for ${method}: ${z.prettifyError(parsed.error)}`, parsed.error.issues);
  try {
    const out = await (handlers[method] as (p: unknown) => Promise<unknown>)(parsed.data);
    const withTensor = out && typeof out === 'object' && 'tensor' in out && 'result' in out ? (out as WithTensor<unknown>) : null;
    const result = methods[method].result.parse(withTensor ? withTensor.result : out);
    const response: ResponseEnvelope = { t: 'res', id, ok: true, result };
    if (!withTensor) return { response };
    const { tensor } = withTensor;
    return { response, tensor: { t: 'tensor', header: { id, name: (result as { name: string }).name, dtype: tensor.dtype, shape: tensor.shape }, data: tensor.data } };
  } catch (e) {
    return { response: { t: 'res', id, ok: false, error: toErrorPayload(e) } };
  }
}
