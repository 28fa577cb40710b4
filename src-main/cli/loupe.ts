#!/usr/bin/env node
/**
 * `loupe` — headless jobs over the same engine the desktop app uses. The commands, their flags and
 * their help live in one table (commands.ts); `loupe --help` / `loupe help <command>` print it.
 *
 * Exit status: 0 ok; 1 an error, or a run that ended partial or failed; 2 a usage error (unknown
 * command or flag, a missing or malformed value), which never starts an engine.
 */
import { toErrorPayload } from '../../src-shared/contract/errors.ts';
import { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { RESOURCES_DIR, appVersion, defaultDataDir } from '../paths.ts';
import { UsageError } from './command-spec.ts';
import { COMMANDS, GLOBAL_FLAGS } from './commands.ts';
import { makeContext } from './context.ts';
import { commandHelp, generalHelp } from './help.ts';
import { parseCommandLine } from './parse-args.ts';
import { ProgressReporter } from './progress.ts';
import { resolveServeOptions } from '../server/serve-options.ts';

const width = Math.min(110, process.stdout.columns ?? 100);

async function main(): Promise<void> {
  const parsed = parseCommandLine(process.argv.slice(2), COMMANDS, GLOBAL_FLAGS);
  if (parsed.kind === 'help') {
    const spec = COMMANDS.find((c) => c.name === parsed.command);
    process.stdout.write(spec ? commandHelp(spec, GLOBAL_FLAGS, width) : generalHelp(COMMANDS, GLOBAL_FLAGS, width));
    return;
  }
  const { spec, args } = parsed;
  const json = args.bool('json');
  const progress = new ProgressReporter(process.stderr);
  if (spec.engine === false) return spec.handler(makeContext(undefined, args, json, progress));
  // A weak --token or a bad port is refused before the engine (and the data folder's lock) is taken.
  if (spec.name === 'serve') resolveServeOptions(args.raw(), process.env);

  // Loaded here, not at the top: help and usage errors answer without loading the engine.
  const [{ Engine }, { closeCluster }] = await Promise.all([import('../engine/engine.ts'), import('../cluster/cluster-commands.ts')]);
  const provider = args.str('provider');
  const engine = await Engine.start({ dataDir: args.str('data-dir') ?? defaultDataDir(), resourcesDir: RESOURCES_DIR, host: 'server', version: appVersion(), ...(provider && { provider: ExecutionProvider.parse(provider) }) });
  // --json: every event as a JSON line on stdout, so scripts (and the kill-and-resume tests) can follow a run; otherwise progress for people on stderr.
  engine.onEvent((name, payload) => {
    if (spec.name === 'serve') return;
    if (json) process.stdout.write(`${JSON.stringify({ event: name, ...(payload as object) })}\n`);
    else progress.onEvent(name, payload);
  });
  const stop = (signal: NodeJS.Signals) => async () => {
    progress.finish();
    // A server told to stop has done its job; an interrupted run has not (`loupe resume` finishes it).
    if (spec.name !== 'serve') process.stderr.write(`loupe: ${signal}: stopped; unfinished runs stay resumable (loupe resume)\n`);
    await closeCluster(engine);
    await engine.close();
    process.exit(spec.name === 'serve' ? 0 : 128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.on('SIGINT', stop('SIGINT'));
  process.on('SIGTERM', stop('SIGTERM'));

  await spec.handler(makeContext(engine, args, json, progress));
  progress.finish();
  await closeCluster(engine);
  await engine.close();
}

main().catch((e: unknown) => {
  if (e instanceof UsageError) {
    process.stderr.write(`loupe: ${e.message}\n${e.command ? `see: loupe ${e.command} --help\n` : 'see: loupe --help\n'}`);
    process.exit(2);
  }
  const p = toErrorPayload(e);
  process.stderr.write(`loupe: ${p.code}: ${p.message}\n`);
  process.exit(1);
});
