/**
 * `npm start`: the desktop app when Electron's binary is installed; otherwise the same
 * workbench served to a browser on 127.0.0.1 (the URL is printed), bundled model and data ready.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
// electron's postinstall writes path.txt once the binary is downloaded (see README: "Desktop app").
const hasElectron = existsSync(join(root, 'node_modules', 'electron', 'path.txt'));

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (hasElectron && !process.argv.includes('--browser')) {
  run(bin('electron-vite'), ['build']);
  spawn(bin('electron'), ['.'], { cwd: root, stdio: 'inherit' }).on('exit', (c) => process.exit(c ?? 0));
} else {
  if (!hasElectron) console.log('Electron binary not installed: serving the workbench to your browser instead (see README to install the desktop shell).');
  run(bin('vite'), ['build', '--config', 'vite.renderer.config.ts', '--logLevel', 'warn']);
  const port = process.env.LOUPE_PORT ?? '4717';
  spawn(process.execPath, [join(root, 'src-main/cli/loupe.ts'), 'serve', '--port', port, ...process.argv.slice(2).filter((a) => a !== '--browser')], { cwd: root, stdio: 'inherit' }).on('exit', (c) =>
    process.exit(c ?? 0),
  );
}
