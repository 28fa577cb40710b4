/**
 * The packaged shell's build-time settings (build/electron-builder.json) and the window factory's
 * web preferences, checked as files: they need the Electron binary to exercise, which tests do not
 * have. The fuse names are electron-builder's FuseOptionsV1 (electron.build, "Adding Electron
 * Fuses"), so a misspelt key, which electron-builder would ignore, fails here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../src-main/paths.ts';

const FUSE_OPTIONS_V1 = [
  'runAsNode',
  'enableCookieEncryption',
  'enableNodeOptionsEnvironmentVariable',
  'enableNodeCliInspectArguments',
  'enableEmbeddedAsarIntegrityValidation',
  'onlyLoadAppFromAsar',
  'loadBrowserProcessSpecificV8Snapshot',
  'grantFileProtocolExtraPrivileges',
];

const builder = JSON.parse(readFileSync(join(REPO_ROOT, 'build', 'electron-builder.json'), 'utf8')) as Record<string, unknown>;

describe('Electron fuses (electron-builder electronFuses)', () => {
  it('flips every fuse the security checklist names', () => {
    expect(builder.electronFuses).toEqual({
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      loadBrowserProcessSpecificV8Snapshot: false,
      grantFileProtocolExtraPrivileges: false,
    });
    for (const key of Object.keys(builder.electronFuses as object)) expect(FUSE_OPTIONS_V1, key).toContain(key);
  });

  it('packs an asar with its integrity hash (the integrity and asar-only fuses need one)', () => {
    expect(builder.asar).toBe(true);
    expect(JSON.stringify(builder)).not.toMatch(/disableIntegrity/);
  });

  it('nothing in src-main needs ELECTRON_RUN_AS_NODE (child_process.fork); the engine uses utilityProcess', () => {
    const files = readdirSync(join(REPO_ROOT, 'src-main'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(50);
    const forks = files.filter((f) => /from 'node:child_process'[\s\S]*\bfork\b|\bchild_process\.fork\(/.test(readFileSync(join(REPO_ROOT, 'src-main', f), 'utf8')));
    expect(forks).toEqual([]);
  });
});

describe('window factory web preferences (src-main/electron/window.ts)', () => {
  const source = readFileSync(join(REPO_ROOT, 'src-main', 'electron', 'window.ts'), 'utf8');
  it('sandboxes, isolates and gives no Node to every window', () => {
    for (const setting of ['sandbox: true', 'contextIsolation: true', 'nodeIntegration: false', 'nodeIntegrationInWorker: false', 'nodeIntegrationInSubFrames: false', 'webSecurity: true', 'allowRunningInsecureContent: false', 'webviewTag: false']) {
      expect(source, setting).toContain(setting);
    }
  });
  it("main sandboxes every renderer and hardens every webContents as it is created", () => {
    const main = readFileSync(join(REPO_ROOT, 'src-main', 'electron', 'main.ts'), 'utf8');
    expect(main).toContain('app.enableSandbox()');
    expect(main).toMatch(/app\.on\('web-contents-created', \(_event, contents\) => hardenWebContents\(contents\)\)/);
  });
});
