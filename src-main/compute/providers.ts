/**
 * Execution-provider choice: CUDA when its libraries are installed, else WebGPU, else
 * DirectML/CoreML, else CPU — each confirmed by actually creating a session, because
 * "bundled" in onnxruntime-node only means the code is there, not that the machine can run it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { probeModelBytes } from './probe-model.ts';

export const PREFERENCE: ExecutionProvider[] = ['cuda', 'webgpu', 'dml', 'coreml', 'cpu'];

/** Providers compiled into this onnxruntime-node for this platform (CUDA counts only if its libraries were installed). */
export function compiledProviders(): ExecutionProvider[] {
  const listed = new Set(ort.listSupportedBackends().map((b) => b.name));
  const out = PREFERENCE.filter((p) => listed.has(p));
  if (out.includes('cuda') && !cudaLibrariesPresent()) out.splice(out.indexOf('cuda'), 1);
  // Dawn reaches the GPU through Vulkan on Linux; without the loader it can only fail (noisily).
  if (out.includes('webgpu') && process.platform === 'linux' && !vulkanLoaderPresent()) out.splice(out.indexOf('webgpu'), 1);
  if (!out.includes('cpu')) out.push('cpu');
  return out;
}

function cudaLibrariesPresent(): boolean {
  const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  return existsSync(join(pkg, 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
}

function vulkanLoaderPresent(): boolean {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** Creates a probe session on each candidate in order and returns those that work. */
export async function workingProviders(candidates: ExecutionProvider[] = compiledProviders()): Promise<ExecutionProvider[]> {
  const bytes = probeModelBytes();
  const ok: ExecutionProvider[] = [];
  for (const ep of candidates) {
    try {
      const s = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
      const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [4]);
      const y = (await s.run({ X: x })).Y!.data as Float32Array;
      await s.release();
      if (y[3] === 8) ok.push(ep);
    } catch {
      // Not usable here (missing driver/loader); the next provider is tried.
    }
  }
  return ok;
}

/** The user's override wins if it works; otherwise the first working provider in preference order. */
export function chooseProvider(working: ExecutionProvider[], override?: ExecutionProvider): ExecutionProvider {
  if (override && working.includes(override)) return override;
  return PREFERENCE.find((p) => working.includes(p)) ?? 'cpu';
}
