/** What a command handler gets: the engine, its parsed flags, typed contract calls and the two output modes. */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { MethodName, ParamsOf, ResultOf } from '../../src-shared/contract/methods.ts';
import { dispatch } from '../engine/dispatcher.ts';
import type { Engine } from '../engine/engine.ts';
import type { ParsedArgs } from './command-spec.ts';
import type { ProgressReporter } from './progress.ts';

export interface CliContext {
  /** Present for every command but `help` and `worker` (which starts its own). */
  engine: Engine;
  args: ParsedArgs;
  /** --json: every engine event and every result as one JSON line on stdout (the format scripts and tests parse). */
  json: boolean;
  progress: ProgressReporter;
  /** A contract method through the same dispatcher (and validation) as the UI's calls. */
  call<M extends MethodName>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  /** A result: `value` as a JSON line with --json, else `human()` on stdout. */
  emit(value: unknown, human: () => string): void;
  /** A line for people on stderr (nothing with --json). */
  say(line: string): void;
  /** A line on stdout for people only (the run id as its own line); nothing with --json, whose result lines carry it. */
  out(line: string): void;
  /** Set when anything failed: the process exits 1. */
  fail(): void;
}

/** `engine` undefined for commands that start none (`worker`); reading it there is a bug, said as such. */
export function makeContext(engine: Engine | undefined, args: ParsedArgs, json: boolean, progress: ProgressReporter): CliContext {
  const need = (): Engine => {
    if (!engine) throw new Error(`internal: loupe ${args.command} has no engine`);
    return engine;
  };
  return {
    get engine() {
      return need();
    },
    args,
    json,
    progress,
    async call(method, params) {
      const { response } = await dispatch(need().handlers, { t: 'req', id: 1, method, params });
      if (!response.ok) throw LoupeError.from(response.error);
      return response.result as ResultOf<typeof method>;
    },
    emit(value, human) {
      if (json) process.stdout.write(`${JSON.stringify(value)}\n`);
      else {
        progress.finish();
        const text = human();
        process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
      }
    },
    say(line) {
      if (!json) progress.say(line);
    },
    out(line) {
      if (!json) process.stdout.write(`${line}\n`);
    },
    fail() {
      process.exitCode = 1;
    },
  };
}
