/**
 * The page a browser gets without a valid token or session cookie: what happened and how to get
 * a working URL. Static text only (no request data is echoed, so nothing can be injected).
 */

export type AuthFailure = 'missing' | 'wrong';

const WHY: Record<AuthFailure, string> = {
  missing: 'This address needs its access token, and this browser has no Loupe session for it yet.',
  wrong: 'The token in this link is not the one this server was started with. A token lasts for one run of <code>loupe serve</code> unless it was started with <code>--token</code>.',
};

export function authPage(failure: AuthFailure): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loupe: access token needed</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em;color:#ddd;background:#15171c}code{background:#262a33;padding:0 .3em}a{color:#8ab4f8}</style>
</head><body>
<h1>Loupe needs its access token</h1>
<p>${WHY[failure]}</p>
<ol>
<li>Open the exact URL that <code>loupe serve</code> (or <code>npm start -- --browser</code>) printed when it started, of the form
<code>http://127.0.0.1:PORT/?token=…</code>. The first visit turns the token into a session cookie for this browser and removes it from the address bar.</li>
<li>Lost it? Stop the server and start it again: it prints a new URL. To keep one URL across restarts, start it with
<code>--token</code> and a random token of at least 128 bits, e.g. <code>loupe serve --token "$(openssl rand -hex 32)"</code>.</li>
<li>Came here from a link on another website after opening the URL? Browsers withhold Loupe's session cookie on visits that start on another site:
<a href="/">continue to the workbench</a>.</li>
</ol>
</body></html>
`;
}
