/**
 * App-wide toasts: a short message, optionally with a link (e.g. "open run"), that
 * confirms something happened after a click. One store, rendered once by `Toast.svelte`
 * (mounted in App.svelte), so any view can call `showToast` without owning markup.
 * Plain TS with `svelte/store`, so it can be used from .ts modules and components alike.
 */
import { writable, type Readable } from 'svelte/store';

export type ToastKind = 'info' | 'ok' | 'error';

export interface ToastLink {
  /** An in-app hash route such as `#/runs?run=<id>`, or an https URL. */
  href: string;
  label: string;
}

export interface Toast {
  id: number;
  message: string;
  kind: ToastKind;
  link?: ToastLink;
}

export interface ToastOptions {
  kind?: ToastKind;
  link?: ToastLink;
  /** Milliseconds before it hides by itself; 0 keeps it until dismissed. Errors stay by default. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 6000;
const MAX_VISIBLE = 4;

const store = writable<Toast[]>([]);
let nextId = 1;

export const toasts: Readable<Toast[]> = { subscribe: store.subscribe };

export function showToast(message: string, options: ToastOptions = {}): number {
  const id = nextId++;
  const kind = options.kind ?? 'info';
  const toast: Toast = { id, message, kind, ...(options.link ? { link: options.link } : {}) };
  // Oldest go first when too many pile up, so a burst of clicks never covers the view.
  store.update((list) => [...list, toast].slice(-MAX_VISIBLE));
  const timeout = options.timeoutMs ?? (kind === 'error' ? 0 : DEFAULT_TIMEOUT_MS);
  if (timeout > 0) setTimeout(() => dismissToast(id), timeout);
  return id;
}

export function dismissToast(id: number): void {
  store.update((list) => list.filter((t) => t.id !== id));
}
