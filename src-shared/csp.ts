/**
 * The renderer's Content-Security-Policy, shared by both hosts (Electron's custom protocol
 * and `loupe serve`): only our own scripts, no eval, engine traffic only to our own origin.
 * `style-src 'unsafe-inline'` is needed for Svelte's style attributes on elements.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');
