/// The web console: one self-contained page served at `/.console/` (inline CSS and script,
/// nothing loaded from elsewhere). Everything it shows or changes goes through the public
/// REST and streaming API with the admin token the user types in; see Docs/CONSOLE.md.
///
/// The text is a raw string: it must never contain a quote followed by `#`, nor a backslash
/// followed by `#`.
enum ConsolePage {
    static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hearth console</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f4f6f9; --card: #fff; --ink: #18212d; --muted: #5a6576; --line: #dce1e8;
  --accent: #1f63d6; --accent-soft: #e4edfc; --danger: #b42318; --ok: #1a7f37;
  --str: #0b6b4c; --num: #1a4fb8; --bool: #7b3fd1; --null: #6b7280; --flash: #ffe98a;
  --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", Arial, sans-serif;
  color: var(--ink); background: var(--bg); display: flex; flex-direction: column; }
[hidden] { display: none !important; }
h1, h2, h3 { margin: 0; font-weight: 600; }
h2 { font-size: 15px; } h3 { font-size: 13px; margin-top: 18px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
code, .mono { font-family: var(--mono); font-size: 13px; }
button, input, select, textarea { font: inherit; color: inherit; }
button { border: 1px solid #c9d0da; background: #fff; border-radius: 6px; padding: 5px 12px; cursor: pointer; white-space: nowrap; }
button:hover { background: #eef2f7; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover { background: #1953b8; }
button.danger { color: var(--danger); border-color: #e6b4ae; }
button.danger:hover { background: #fdf0ee; }
button:disabled { opacity: .5; cursor: default; }
input, select, textarea { border: 1px solid #c3cad5; border-radius: 6px; padding: 5px 8px; background: #fff; }
textarea { font-family: var(--mono); font-size: 13px; width: 100%; resize: vertical; }
:focus-visible { outline: 3px solid #7aa7f0; outline-offset: 1px; }
label { font-weight: 500; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.muted, .hint { color: var(--muted); }
.hint { font-size: 12.5px; margin: 8px 0 0; }
.spacer { flex: 1; }
.msg { margin: 8px 0 0; min-height: 1.45em; }
.msg.err { color: var(--danger); } .msg.ok { color: var(--ok); }
header { display: flex; align-items: center; gap: 14px; padding: 8px 18px; background: #17202c; color: #e9eef5; flex-wrap: wrap; }
header h1 { font-size: 16px; letter-spacing: .2px; }
header h1 span { color: #9fb3cc; font-weight: 400; }
header label, header .muted { color: #b9c5d4; font-weight: 400; }
header select, header input { background: #233043; color: #e9eef5; border-color: #3a4a60; }
header button { background: #233043; color: #e9eef5; border-color: #3a4a60; }
header button:hover { background: #2d3d55; }
#topbar { display: flex; align-items: center; gap: 10px; flex: 1; flex-wrap: wrap; }
[role=tablist] { display: flex; gap: 4px; margin-right: 10px; }
[role=tab] { background: transparent; border-color: transparent; color: #c8d3e0; }
[role=tab][aria-selected=true] { background: #e9eef5; color: #17202c; }
#ns-other { display: flex; gap: 6px; }
#toast { margin: 10px 18px 0; padding: 8px 12px; border-radius: 6px; background: #fdecea; color: var(--danger); border: 1px solid #f3c0b9; display: flex; gap: 12px; align-items: center; }
main { flex: 1; min-height: 0; padding: 14px 18px 18px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.toolbar { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.signin { display: grid; place-items: center; }
.signin form { width: min(440px, 100%); display: grid; gap: 10px; }
.signin h1 { font-size: 20px; }
.signin input { font-family: var(--mono); }
.data { display: grid; grid-template-columns: minmax(0, 1fr) 430px; gap: 14px; }
.treecard { display: flex; flex-direction: column; min-height: 0; }
.panel { overflow: auto; min-height: 0; }
#crumbs { display: flex; flex-wrap: wrap; align-items: center; gap: 2px; flex: 1; min-width: 0; }
#crumbs button { border: 0; background: none; padding: 2px 5px; color: var(--accent); font-family: var(--mono); font-size: 13px; }
#crumbs button[aria-current] { color: var(--ink); font-weight: 600; }
#crumbs .slash { color: #9aa5b4; }
#goto { display: flex; gap: 6px; }
.status-line { display: flex; align-items: center; gap: 10px; margin: 10px 0 8px; font-size: 13px; }
.pill { border-radius: 999px; padding: 1px 10px; font-size: 12.5px; font-weight: 600; background: #eceff3; color: var(--muted); }
.pill.live { background: #dcf3e3; color: var(--ok); }
.pill.live::before { content: "\25CF  "; }
.pill.warn { background: #fff1d6; color: #8a5300; }
#tree { list-style: none; margin: 0; padding: 4px 0; overflow: auto; flex: 1; min-height: 120px; border-top: 1px solid var(--line); font-family: var(--mono); font-size: 13px; }
#tree ul { list-style: none; margin: 0; padding: 0; }
#tree li:focus { outline: none; }
.row { display: flex; align-items: baseline; gap: 6px; padding: 2px 8px 2px 6px; border-radius: 4px; cursor: default; white-space: nowrap; }
.row:hover { background: #f1f4f8; }
[aria-selected=true] > .row { background: var(--accent-soft); }
li:focus > .row { outline: 2px solid var(--accent); outline-offset: -2px; }
.tw { width: 14px; flex: none; color: #7b8696; cursor: pointer; text-align: center; }
.k { color: #243247; font-weight: 600; }
.v { overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.v.string { color: var(--str); } .v.number { color: var(--num); } .v.boolean { color: var(--bool); } .v.null { color: var(--null); font-style: italic; }
.n { color: var(--muted); font-size: 12px; }
.colon { margin-left: -6px; color: var(--muted); }
li.more > .row { color: var(--accent); font-family: system-ui, sans-serif; cursor: pointer; }
li.note { color: var(--muted); padding: 4px 8px; font-family: system-ui, sans-serif; }
@keyframes flash { from { background: var(--flash); } to { background: transparent; } }
@keyframes flashsub { from { box-shadow: inset 3px 0 0 #e0a800; } to { box-shadow: inset 3px 0 0 transparent; } }
.row.flash { animation: flash 2.5s ease-out forwards; }
.row.flash-sub { animation: flashsub 2.5s ease-out forwards; }
.panel label { display: block; margin: 12px 0 4px; }
.panel .actions { display: flex; gap: 6px; flex-wrap: wrap; margin-top: 8px; }
#sel-path { display: block; word-break: break-all; background: #f3f5f8; padding: 6px 8px; border-radius: 6px; margin-top: 8px; }
#sel-kind { margin: 6px 0 0; color: var(--muted); font-size: 13px; }
#ed-value { min-height: 170px; } #ed-new { min-height: 70px; }
.rules { display: flex; flex-direction: column; }
.rules .card { flex: 1; display: flex; flex-direction: column; min-height: 0; }
.editor { flex: 1; display: flex; min-height: 240px; border: 1px solid #c3cad5; border-radius: 6px; overflow: hidden; margin-top: 6px; }
#gutter { flex: none; width: 46px; overflow: hidden; background: #f3f5f8; border-right: 1px solid var(--line); padding: 8px 0; font-family: var(--mono); font-size: 13px; line-height: 20px; color: #8a94a3; text-align: right; user-select: none; }
#gutter div { padding-right: 8px; height: 20px; }
#gutter div.err { background: #fbd5d0; color: var(--danger); font-weight: 700; }
.edwrap { position: relative; flex: 1; min-width: 0; display: flex; }
#errband { position: absolute; left: 0; right: 0; height: 20px; background: rgba(220, 38, 38, .13); border-top: 1px solid rgba(220, 38, 38, .4); border-bottom: 1px solid rgba(220, 38, 38, .4); pointer-events: none; }
#rules-text { flex: 1; border: 0; border-radius: 0; resize: none; padding: 8px 10px; line-height: 20px; white-space: pre; overflow: auto; background: transparent; position: relative; }
#rules-text:focus-visible { outline: none; box-shadow: inset 0 0 0 2px #7aa7f0; }
@media (max-width: 900px) { .data { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>Hearth <span>console</span></h1>
  <div id="topbar" hidden>
    <div role="tablist" aria-label="Console sections">
      <button role="tab" id="tab-data" aria-selected="true" aria-controls="view-data">Data</button>
      <button role="tab" id="tab-rules" aria-selected="false" aria-controls="view-rules" tabindex="-1">Rules</button>
    </div>
    <label for="ns">Database</label>
    <select id="ns"></select>
    <form id="ns-other" hidden>
      <label for="ns-name" class="sr">Name of another database</label>
      <input id="ns-name" size="14" placeholder="name" autocomplete="off">
      <button>Open</button>
    </form>
    <span class="spacer"></span>
    <span id="who" class="muted"></span>
    <button id="signout" type="button">Sign out</button>
  </div>
</header>
<div id="toast" role="alert" hidden><span id="toast-text"></span><button id="toast-close" type="button">Dismiss</button></div>

<main id="signin" class="signin" hidden>
  <form id="signin-form" class="card">
    <h1>Sign in to Hearth</h1>
    <p class="muted">Use the server's admin token. <code>make run</code> keeps it in <code>hearth-data/admin-token</code>.</p>
    <label for="token">Admin token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false" required>
    <button class="primary">Sign in</button>
    <p id="signin-msg" class="msg" role="status"></p>
    <p class="hint">The token stays in this tab's session storage and is sent only to this server,
      with each request the page makes through the public API.</p>
  </form>
</main>

<main id="view-data" class="data" role="tabpanel" aria-labelledby="tab-data" hidden>
  <section class="card treecard" aria-label="Data">
    <div class="toolbar">
      <nav id="crumbs" aria-label="Viewed location"></nav>
      <form id="goto">
        <label for="goto-path" class="sr">Go to path</label>
        <input id="goto-path" class="mono" size="22" placeholder="/path/to/location" autocomplete="off">
        <button>Go</button>
      </form>
    </div>
    <div class="status-line">
      <span id="live" class="pill" role="status">Not live</span>
      <span id="live-note" class="muted"></span>
      <button id="watch" type="button" hidden>Watch live anyway</button>
    </div>
    <ul id="tree" role="tree" aria-label="Data tree" aria-describedby="tree-help"></ul>
    <p id="tree-help" class="hint">Arrow keys move through the tree, Right and Left open and close, Enter selects and opens, Space selects.</p>
  </section>
  <aside class="card panel" aria-labelledby="sel-h">
    <h2 id="sel-h">Selected location</h2>
    <code id="sel-path">/</code>
    <p id="sel-kind"></p>
    <div class="actions">
      <button id="open-here" type="button">View from here</button>
      <button id="export-json" type="button">Export JSON</button>
      <button id="export-csv" type="button">Export CSV</button>
    </div>
    <label for="ed-value">Value (JSON)</label>
    <textarea id="ed-value" spellcheck="false" aria-describedby="ed-msg"></textarea>
    <div class="actions">
      <button id="do-set" class="primary" type="button">Replace (PUT)</button>
      <button id="do-update" type="button">Update (PATCH)</button>
      <button id="do-delete" class="danger" type="button">Delete&hellip;</button>
    </div>
    <h3>Add a child</h3>
    <label for="ed-key">Key <span class="muted">(leave empty for a new push ID)</span></label>
    <input id="ed-key" class="mono" autocomplete="off" style="width: 100%">
    <label for="ed-new">Value (JSON)</label>
    <textarea id="ed-new" spellcheck="false" placeholder='{"device_id": "abc", "success": true}'></textarea>
    <div class="actions"><button id="do-add" type="button">Add child</button></div>
    <p id="ed-msg" class="msg" role="status" aria-live="polite"></p>
  </aside>
</main>

<main id="view-rules" class="rules" role="tabpanel" aria-labelledby="tab-rules" hidden>
  <section class="card">
    <div class="toolbar">
      <h2>Security rules of <span id="rules-ns" class="mono"></span></h2>
      <span id="rules-state" class="muted"></span>
      <span class="spacer"></span>
      <button id="rules-reload" type="button">Reload</button>
      <button id="rules-validate" type="button">Validate</button>
      <button id="rules-save" class="primary" type="button">Save</button>
    </div>
    <p id="rules-msg" class="msg" role="status" aria-live="polite"></p>
    <div class="editor">
      <div id="gutter" aria-hidden="true"></div>
      <div class="edwrap">
        <div id="errband" hidden></div>
        <textarea id="rules-text" wrap="off" spellcheck="false" autocomplete="off" autocapitalize="off"
          aria-label="Rules document (JSON with comments)" aria-describedby="rules-msg"></textarea>
      </div>
    </div>
    <p class="hint">Validate checks the document on the server without changing anything (<code>dryRun=true</code>); Save puts it in force for this database.</p>
  </section>
</main>

<script>
'use strict';
const PAGE = 50;             // children shown, or fetched, at a time
const BIG_CHILDREN = 10000;  // a level with more children than this is browsed page by page,
const BIG_NODES = 200000;    // and so is a location estimated larger than this over two levels
const PROBES = 40;           // children sampled for that estimate
const FLASH_MS = 2500;
const LINE = 20;             // rules editor line height, px
const $ = id => document.getElementById(id);

class ApiError extends Error { constructor(status, message) { super(message); this.status = status; } }
/** An object whose children are not loaded yet (large locations only). */
class Stub { constructor(keys, more) { this.keys = keys; this.more = more; } }
/** On a partly loaded object: { more: are there children after `last`?, last }. */
const META = Symbol('page');
const PARTIAL = new Error('partial');

const S = window.hearthConsole = {
  token: sessionStorage.getItem('hearth.token') || '',
  ns: sessionStorage.getItem('hearth.ns') || '',
  base: [], data: undefined, mode: 'off', es: null, gen: 0,
  expanded: new Set(['/']), shown: new Map(), rows: new Map(),
  selected: '/', cursor: '/', flashes: new Map(), subflashes: new Map(),
  dirty: false, rulesSaved: '', errorLine: 0, lastExport: null,
};

// ---- helpers -------------------------------------------------------------------------
function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k.includes('-') || !(k in e)) e.setAttribute(k, v); else e[k] = v;
  }
  e.append(...kids);
  return e;
}
const pstr = keys => '/' + keys.join('/');
const psplit = s => String(s).split('/').filter(Boolean);
const isObj = v => v !== null && typeof v === 'object' && !(v instanceof Stub);
const BAD_KEY = /[.$#[\]/\u0000-\u001f\u007f]/;
const INT_KEY = /^(0|-?[1-9][0-9]{0,9})$/;
function intKey(k) { if (!INT_KEY.test(k)) return null; const n = Number(k); return n >= -2147483648 && n <= 2147483647 ? n : null; }
/** Firebase's key order: 32-bit integer keys first, numerically, then strings by UTF-16 code units. */
function cmpKeys(a, b) {
  const x = intKey(a), y = intKey(b);
  if (x !== null && y !== null) return x - y;
  if (x !== null) return -1;
  if (y !== null) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
/** The child keys of a JSON answer (arrays included), in key order. */
function keysOf(v) {
  if (v === null || typeof v !== 'object') return [];
  const ks = Array.isArray(v) ? v.flatMap((x, i) => x === null ? [] : [String(i)]) : Object.keys(v);
  return ks.sort(cmpKeys);
}
/** JSON as the tree keeps it: objects without prototype (any key is safe), arrays as objects, no nulls. */
function norm(v) {
  if (v === null || typeof v !== 'object') return v === undefined ? null : v;
  const o = Object.create(null);
  let n = 0;
  const add = (k, x) => { const y = norm(x); if (y !== null) { o[k] = y; n++; } };
  if (Array.isArray(v)) v.forEach((x, i) => add(String(i), x)); else for (const k of Object.keys(v)) add(k, v[k]);
  return n ? o : null;
}
const isEmpty = o => !(o[META] && o[META].more) && Object.keys(o).length === 0;
function toText(v, space) {
  return JSON.stringify(v, (k, x) => { if (x instanceof Stub || (x && x[META] && x[META].more)) throw PARTIAL; return x; }, space);
}
function fmtBytes(n) { return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KB' : (n / 1048576).toFixed(1) + ' MB'; }
function plural(n, word) { return n.toLocaleString('en') + ' ' + word + (n === 1 ? '' : word.endsWith('d') ? 'ren' : 's'); }
async function pool(items, fn, width = 4) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i], i); }
  }));
  return out;
}

// ---- the API ---------------------------------------------------------------------------
function dataURL(keys, params, ext) {
  const q = new URLSearchParams(params || {});
  q.set('ns', S.ns);
  return '/' + keys.map(encodeURIComponent).join('/') + (ext || '.json') + '?' + q;
}
function settingsURL(params) { const q = new URLSearchParams(params || {}); q.set('ns', S.ns); return '/.settings/rules.json?' + q; }
/** One call of the public API with the admin token. Answers the parsed JSON (or text, or a Blob). */
async function api(method, target, opts = {}) {
  const url = typeof target === 'string' ? target : dataURL(target, opts.params, opts.ext);
  let res;
  try {
    res = await fetch(url, { method, body: opts.body, cache: 'no-store', headers: { Authorization: 'Bearer ' + S.token } });
  } catch (e) { throw new ApiError(0, 'The server cannot be reached (' + e.message + ').'); }
  if (!res.ok) {
    const text = await res.text();
    let message = text || res.status + ' ' + res.statusText;
    try { message = JSON.parse(text).error || message; } catch (e) { /* not JSON */ }
    if (res.status === 401 && message !== 'Permission denied' && S.token && !opts.signingIn) {
      signOut('The server did not accept the token: ' + message);
    }
    throw new ApiError(res.status, message);
  }
  if (opts.blob) return res.blob();
  const text = await res.text();
  if (opts.text) return text;
  return text ? JSON.parse(text) : null;
}
const keyPage = (n, after) => Object.assign({ shallow: 'true', orderBy: '"$key"', limitToFirst: String(n) },
  after == null ? {} : { startAfter: JSON.stringify(after) });

// ---- messages ----------------------------------------------------------------------------
function fail(e) {
  $('toast-text').textContent = e instanceof Error ? e.message : String(e);
  $('toast').hidden = false;
}
$('toast-close').onclick = () => { $('toast').hidden = true; };
function say(id, text, kind) { const m = $(id); m.textContent = text; m.className = 'msg' + (kind ? ' ' + kind : ''); }

// ---- signing in ----------------------------------------------------------------------------
async function signIn(token, silent) {
  S.token = token;
  try {
    await loadNamespaces(true);
  } catch (e) {
    S.token = '';
    if (e.status === 401 || e.status === 403) sessionStorage.removeItem('hearth.token');
    showSignIn(e.status === 401 ? (silent ? 'Please sign in again: ' : 'This is not the admin token of this server: ') + e.message : e.message);
    return;
  }
  sessionStorage.setItem('hearth.token', token);
  $('signin').hidden = true;
  $('topbar').hidden = false;
  $('who').textContent = 'admin \u00b7 ' + location.host;
  showTab('data');
  navigate([]);
}
function showSignIn(message, kind = 'err') {
  for (const id of ['view-data', 'view-rules', 'topbar']) $(id).hidden = true;
  $('signin').hidden = false;
  say('signin-msg', message || '', kind);
  $('token').focus();
}
function signOut(message, kind) {
  stopLive();
  S.gen++;
  S.token = '';
  sessionStorage.removeItem('hearth.token');
  showSignIn(message, kind);
}
$('signin-form').onsubmit = e => { e.preventDefault(); const t = $('token').value.trim(); $('token').value = ''; if (t) signIn(t, false); };
$('signout').onclick = () => signOut('Signed out.', 'muted');

// ---- databases (namespaces) -------------------------------------------------------------------
async function loadNamespaces(signingIn) {
  const list = await api('GET', '/.inspect/databases.json', { signingIn });
  const names = (Array.isArray(list) ? list : Object.values(list || {})).map(x => x && x.name).filter(Boolean);
  if (!S.ns) S.ns = names.includes('default') ? 'default' : names[0] || 'default';
  if (!names.includes(S.ns)) names.push(S.ns);
  names.sort();
  $('ns').replaceChildren(...names.map(n => new Option(n, n, false, n === S.ns)), new Option('Other\u2026', ''));
}
$('ns').onchange = () => {
  const v = $('ns').value;
  if (v) { $('ns-other').hidden = true; switchNs(v); } else { $('ns-other').hidden = false; $('ns-name').focus(); }
};
$('ns-name').onkeydown = e => { if (e.key === 'Escape') { $('ns-other').hidden = true; $('ns').value = S.ns; $('ns').focus(); } };
$('ns-other').onsubmit = e => {
  e.preventDefault();
  const name = $('ns-name').value.trim();
  if (!/^[a-z0-9_-]{1,63}$/.test(name)) { fail('A database name is 1 to 63 characters of a-z, 0-9, - and _.'); return; }
  $('ns-other').hidden = true;
  $('ns-name').value = '';
  switchNs(name);
};
function switchNs(name) {
  S.ns = name;
  sessionStorage.setItem('hearth.ns', name);
  if (![...$('ns').options].some(o => o.value === name)) $('ns').add(new Option(name, name), $('ns').options.length - 1);
  $('ns').value = name;
  S.expanded = new Set(['/']);
  S.shown.clear();
  navigate([]);
  if (!$('view-rules').hidden) loadRules();
}

// ---- tabs ------------------------------------------------------------------------------------
function showTab(name) {
  for (const t of ['data', 'rules']) {
    const on = t === name;
    $('tab-' + t).setAttribute('aria-selected', String(on));
    $('tab-' + t).tabIndex = on ? 0 : -1;
    $('view-' + t).hidden = !on;
  }
  // Keep unsaved edits when coming back to the rules of the same database.
  if (name === 'rules' && (S.rulesNs !== S.ns || rulesText.value === S.rulesSaved)) loadRules();
}
$('tab-data').onclick = () => showTab('data');
$('tab-rules').onclick = () => showTab('rules');
document.querySelector('[role=tablist]').onkeydown = e => {
  if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
  const next = $('tab-data').getAttribute('aria-selected') === 'true' ? 'rules' : 'data';
  showTab(next);
  $('tab-' + next).focus();
};

// ---- the viewed location: live (one EventSource) or page by page ----------------------------
async function navigate(keys) {
  stopLive();
  const gen = ++S.gen;
  S.base = keys;
  S.data = undefined;
  S.selected = S.cursor = pstr(keys);
  S.expanded.add(pstr(keys));
  S.dirty = false;
  if (!keys.length) loadNamespaces().catch(() => {});
  renderCrumbs();
  setMode('loading');
  render();
  try {
    const big = await isBig(keys);
    if (gen !== S.gen) return;
    if (!big) { startLive(); return; }
    const data = await loadPage(keys, null);
    if (gen !== S.gen) return;
    S.data = isEmpty(data) ? null : data;
    setMode('paged');
    render();
  } catch (e) {
    if (gen !== S.gen) return;
    S.data = null;
    setMode('off');
    render();
    fail(e);
  }
}
/** Is the location too large to stream whole? Looks at its children and a sample of theirs. */
async function isBig(keys) {
  const top = keysOf(await api('GET', keys, { params: keyPage(BIG_CHILDREN + 1) }));
  if (top.length > BIG_CHILDREN) return true;
  if (!top.length) return false;
  const sample = top.slice(0, PROBES), limit = Math.min(BIG_CHILDREN, Math.ceil(BIG_NODES / top.length));
  const counts = await pool(sample, k => api('GET', keys.concat(k), { params: keyPage(limit + 1) }).then(v => keysOf(v).length));
  if (counts.some(c => c > limit)) return true;
  return top.length * (1 + counts.reduce((a, b) => a + b, 0) / sample.length) > BIG_NODES;
}
/**
 * One page of the children of a large location: their keys (a shallow key query), then for each
 * child either the first keys of its own children (so it shows as a closed object) or, for leaves,
 * its value (fetched in runs of consecutive leaves with one key-range query per run).
 */
async function loadPage(keys, after) {
  const page = keysOf(await api('GET', keys, { params: keyPage(PAGE + 1, after) }));
  const more = page.length > PAGE;
  if (more) page.length = PAGE;
  const probes = await pool(page, k => api('GET', keys.concat(k), { params: keyPage(PAGE + 1) }));
  const o = Object.create(null), runs = [];
  let run = null;
  page.forEach((k, i) => {
    const ks = keysOf(probes[i]);
    if (ks.length) { o[k] = new Stub(ks.slice(0, PAGE), ks.length > PAGE); run = null; }
    else { if (!run) runs.push(run = []); run.push(k); }
  });
  await pool(runs, async r => {
    const got = norm(r.length === 1
      ? { [r[0]]: await api('GET', keys.concat(r[0])) }
      : await api('GET', keys, { params: { orderBy: '"$key"', startAt: JSON.stringify(r[0]), endAt: JSON.stringify(r[r.length - 1]) } }));
    for (const k of r) if (got && got[k] !== undefined) o[k] = got[k];
  });
  o[META] = { more, last: page[page.length - 1] };
  return o;
}
function setMode(mode) {
  S.mode = mode;
  const pill = $('live'), note = $('live-note');
  const text = { loading: 'Loading\u2026', connecting: 'Connecting\u2026', live: 'Live', reconnecting: 'Reconnecting\u2026', paged: 'Not live', off: 'Not live' }[mode];
  pill.textContent = text;
  pill.className = 'pill' + (mode === 'live' ? ' live' : mode === 'paged' || mode === 'reconnecting' ? ' warn' : '');
  note.textContent = mode === 'paged' ? 'Large location: loaded page by page.' : mode === 'live' ? 'Changes appear as they happen.' : '';
  $('watch').hidden = !(mode === 'paged' || mode === 'off');
  $('watch').textContent = mode === 'paged' ? 'Watch live anyway' : 'Go live';
}
function startLive() {
  stopLive();
  const q = new URLSearchParams({ ns: S.ns, auth: S.token });
  const es = new EventSource('/' + S.base.map(encodeURIComponent).join('/') + '.json?' + q);
  S.es = es;
  setMode('connecting');
  const mine = f => e => { if (S.es === es) f(e); };
  es.addEventListener('put', mine(e => onEvent('put', e)));
  es.addEventListener('patch', mine(e => onEvent('patch', e)));
  es.addEventListener('open', mine(() => { if (S.data !== undefined) setMode('live'); }));
  es.addEventListener('cancel', mine(() => { stopLive(); setMode('off'); fail('The server stopped the live updates of this location (the rules no longer allow reading it).'); }));
  es.addEventListener('auth_revoked', mine(() => { stopLive(); setMode('off'); fail('The token is no longer valid.'); }));
  es.onerror = mine(() => {
    if (es.readyState !== EventSource.CLOSED) { setMode('reconnecting'); return; }
    stopLive();
    setMode('off');
    if (S.data === undefined) { S.data = null; render(); }
    // EventSource hides the answer; ask again over REST to show the server's message.
    api('GET', S.base, { params: { shallow: 'true' } }).then(() => fail('The live connection closed.'), fail);
  });
}
function stopLive() { if (S.es) { S.es.close(); S.es = null; } }
$('watch').onclick = () => { S.data = undefined; render(); startLive(); };

function onEvent(kind, e) {
  let m;
  try { m = JSON.parse(e.data); } catch (err) { return; }
  const rel = psplit(m.path || '/'), first = S.data === undefined;
  if (kind === 'put') put(rel, norm(m.data), !first);
  else for (const k of Object.keys(m.data || {})) put(rel.concat(psplit(k)), norm(m.data[k]), true);
  if (S.mode !== 'live') setMode('live');
  schedule();
}

// ---- the tree model ------------------------------------------------------------------------
function getAt(keys) {
  let v = S.data;
  for (const k of keys.slice(S.base.length)) { if (!isObj(v)) return undefined; v = v[k]; }
  return v;
}
/** Sets the value at `rel` (relative to the viewed location); null deletes, and empty parents go too. */
function put(rel, value, flash) {
  const abs = S.base.concat(rel);
  if (!rel.length) { if (flash) diff(abs, S.data, value); S.data = value; return; }
  if (!isObj(S.data)) { if (value === null) return; S.data = Object.create(null); }
  const chain = [S.data];
  let o = S.data;
  for (let i = 0; i < rel.length - 1; i++) {
    let c = o[rel[i]];
    if (c instanceof Stub) return;  // not loaded: nothing shown to update
    if (!isObj(c)) { if (value === null) return; c = o[rel[i]] = Object.create(null); }
    chain.push(o = c);
  }
  const k = rel[rel.length - 1];
  if (flash) diff(abs, o[k], value);
  if (value !== null) { o[k] = value; return; }
  delete o[k];
  for (let i = chain.length - 1; i > 0 && isEmpty(chain[i]); i--) delete chain[i - 1][rel[i - 1]];
  if (isEmpty(S.data)) S.data = null;
}
function diff(abs, old, now) {
  if (isObj(old) && isObj(now)) { for (const k of Object.keys(now)) diff(abs.concat(k), old[k], now[k]); if (Object.keys(old).some(k => !(k in now))) mark(abs, true); return; }
  if (now === null || now === undefined) { if (old !== null && old !== undefined) mark(abs.slice(0, -1), true); return; }
  if (old !== now) mark(abs, false);
}
function mark(abs, subOnly) {
  const t = performance.now();
  if (!subOnly) S.flashes.set(pstr(abs), t);
  for (let i = subOnly ? abs.length : abs.length - 1; i >= 0; i--) S.subflashes.set(pstr(abs.slice(0, i)), t);
}
let timer = 0;
function schedule() { if (!timer) timer = setTimeout(() => { timer = 0; render(); }, 40); }

// ---- rendering -------------------------------------------------------------------------
function renderCrumbs() {
  const parts = [el('button', { type: 'button', textContent: S.ns + ':/', onclick: () => navigate([]) })];
  S.base.forEach((k, i) => parts.push(el('span', { className: 'slash', textContent: '/' }),
    el('button', { type: 'button', textContent: k, onclick: () => navigate(S.base.slice(0, i + 1)) })));
  parts[parts.length - 1].setAttribute('aria-current', 'location');
  $('crumbs').replaceChildren(...parts);
  $('goto-path').value = pstr(S.base);
}
function render() {
  const tree = $('tree'), focused = tree.contains(document.activeElement), top = tree.scrollTop, now = performance.now();
  for (const m of [S.flashes, S.subflashes]) for (const [k, t] of m) if (now - t > FLASH_MS) m.delete(k);
  S.rows = new Map();
  if (S.data === undefined) tree.replaceChildren(el('li', { className: 'note', role: 'none', textContent: 'Loading\u2026' }));
  else {
    const label = S.base.length ? S.base[S.base.length - 1] : S.ns;
    tree.replaceChildren(row(S.base, label, S.data, 1, now));
    if (S.data === null) tree.append(el('li', { className: 'note', role: 'none', textContent: 'No data here yet.' }));
  }
  const cur = S.rows.get(S.cursor) || S.rows.get(pstr(S.base));
  if (cur) { S.cursor = cur.dataset.path; cur.tabIndex = 0; if (focused) cur.focus({ preventScroll: true }); }
  tree.scrollTop = top;
  refreshPanel(false);
}
function row(keys, label, value, level, now) {
  const p = pstr(keys), obj = isObj(value) || value instanceof Stub, open = obj && S.expanded.has(p);
  const li = el('li', { role: 'treeitem', tabIndex: -1, 'aria-level': level, 'aria-selected': String(p === S.selected) });
  li.dataset.path = p;
  S.rows.set(p, li);
  const r = el('div', { className: 'row' });
  r.style.paddingLeft = (level - 1) * 18 + 6 + 'px';
  r.append(el('span', { className: 'tw', 'aria-hidden': 'true', textContent: obj ? (open ? '\u25BE' : '\u25B8') : '' }),
    el('span', { className: 'k', textContent: label }));
  if (obj) { li.setAttribute('aria-expanded', String(open)); r.append(el('span', { className: 'n', textContent: countLabel(value) })); }
  else r.append(el('span', { className: 'colon', textContent: ':' }), valueSpan(value));
  const t = S.flashes.get(p), ts = S.subflashes.get(p);
  if (t !== undefined) { r.classList.add('flash'); r.style.animationDelay = -(now - t) + 'ms'; }
  else if (ts !== undefined && !open) { r.classList.add('flash-sub'); r.style.animationDelay = -(now - ts) + 'ms'; }
  li.append(r);
  if (!open) return li;
  const ul = el('ul', { role: 'group' });
  if (value instanceof Stub) ul.append(el('li', { className: 'note', role: 'none', textContent: 'Loading\u2026' }));
  else {
    const ks = Object.keys(value).sort(cmpKeys), n = Math.min(ks.length, S.shown.get(p) || PAGE);
    for (let i = 0; i < n; i++) ul.append(row(keys.concat(ks[i]), ks[i], value[ks[i]], level + 1, now));
    const left = ks.length - n, more = value[META] && value[META].more;
    if (left > 0 || more) {
      const m = el('li', { role: 'treeitem', tabIndex: -1, className: 'more', 'aria-level': level + 1 },
        el('div', { className: 'row', textContent: left > 0 ? 'Show ' + Math.min(PAGE, left) + ' more (' + left.toLocaleString('en') + (more ? '+' : '') + ' not shown)' : 'Load ' + PAGE + ' more\u2026' }));
      m.firstChild.style.paddingLeft = level * 18 + 26 + 'px';
      m.dataset.path = p + '#more';
      m.dataset.parent = p;
      S.rows.set(m.dataset.path, m);
      ul.append(m);
    }
  }
  li.append(ul);
  return li;
}
function countLabel(v) {
  if (v instanceof Stub) return '{' + (v.more ? v.keys.length + '+' : v.keys.length) + '}';
  return '{' + Object.keys(v).length + (v[META] && v[META].more ? '+' : '') + '}';
}
function valueSpan(v) {
  const type = v === null ? 'null' : typeof v;
  const text = type === 'string' ? JSON.stringify(v.length > 300 ? v.slice(0, 300) + '\u2026' : v) : String(v);
  return el('span', { className: 'v ' + type, textContent: text, title: type === 'string' && v.length > 300 ? plural(v.length, 'character') : '' });
}

// ---- tree interaction ----------------------------------------------------------------------
async function toggle(p, open = !S.expanded.has(p)) {
  const keys = psplit(p), v = getAt(keys);
  if (!(isObj(v) || v instanceof Stub)) return;
  S.cursor = p;
  if (!open) { S.expanded.delete(p); render(); return; }
  S.expanded.add(p);
  render();
  if (!(v instanceof Stub)) return;
  const gen = S.gen;
  try {
    const loaded = await loadPage(keys, null);
    if (gen === S.gen && getAt(keys) === v) put(keys.slice(S.base.length), isEmpty(loaded) ? null : loaded, false);
  } catch (e) { S.expanded.delete(p); fail(e); }
  render();
}
async function showMore(p) {
  const keys = psplit(p), v = getAt(keys);
  if (!isObj(v)) return;
  const shown = S.shown.get(p) || PAGE;
  if (shown >= Object.keys(v).length && v[META] && v[META].more) {
    try {
      const next = await loadPage(keys, v[META].last);
      for (const k of Object.keys(next)) v[k] = next[k];
      v[META] = next[META];
    } catch (e) { fail(e); return; }
  }
  S.shown.set(p, shown + PAGE);
  const ks = Object.keys(v).sort(cmpKeys);
  if (ks[shown] !== undefined) S.cursor = pstr(keys.concat(ks[shown]));
  render();
}
function select(p) {
  if (S.selected !== p) { S.selected = p; S.dirty = false; say('ed-msg', ''); }
  for (const [q, li] of S.rows) if (!li.classList.contains('more')) li.setAttribute('aria-selected', String(q === p));
  refreshPanel(true);
}
const tree = $('tree');
tree.addEventListener('focusin', e => {
  const li = e.target.closest('[role=treeitem]');
  if (!li) return;
  for (const x of tree.querySelectorAll('[tabindex="0"]')) if (x !== li) x.tabIndex = -1;
  li.tabIndex = 0;
  S.cursor = li.dataset.path;
});
tree.addEventListener('click', e => {
  const li = e.target.closest('[role=treeitem]');
  if (!li) return;
  li.focus();
  if (li.classList.contains('more')) showMore(li.dataset.parent);
  else if (e.target.classList.contains('tw')) toggle(li.dataset.path);
  else select(li.dataset.path);
});
tree.addEventListener('dblclick', e => {
  const li = e.target.closest('[role=treeitem]');
  if (li && !li.classList.contains('more') && !e.target.classList.contains('tw')) toggle(li.dataset.path);
});
tree.addEventListener('keydown', e => {
  const li = e.target.closest('[role=treeitem]');
  if (!li || e.altKey || e.ctrlKey || e.metaKey) return;
  const items = [...tree.querySelectorAll('[role=treeitem]')], i = items.indexOf(li), p = li.dataset.path;
  const state = li.getAttribute('aria-expanded'), more = li.classList.contains('more');
  let to = null;
  switch (e.key) {
    case 'ArrowDown': to = items[i + 1]; break;
    case 'ArrowUp': to = items[i - 1]; break;
    case 'Home': to = items[0]; break;
    case 'End': to = items[items.length - 1]; break;
    case 'ArrowRight': if (state === 'false') toggle(p, true); else if (state === 'true') to = li.querySelector('[role=treeitem]'); break;
    case 'ArrowLeft': if (state === 'true') toggle(p, false); else to = li.parentElement.closest('[role=treeitem]'); break;
    case 'Enter': if (more) showMore(li.dataset.parent); else { select(p); if (state) toggle(p); } break;
    case ' ': if (more) showMore(li.dataset.parent); else select(p); break;
    default: return;
  }
  e.preventDefault();
  if (to) { to.focus(); to.scrollIntoView({ block: 'nearest' }); }
});
$('goto').onsubmit = e => {
  e.preventDefault();
  const keys = psplit($('goto-path').value.trim());
  if (keys.some(k => BAD_KEY.test(k))) { fail('A key cannot contain . $ # [ ] / or control characters.'); return; }
  navigate(keys);
};

// ---- the selected location: details, edits, exports --------------------------------------------
function describe(v) {
  if (v === undefined) return 'Not loaded.';
  if (v === null) return 'No data.';
  if (v instanceof Stub) return 'Object with ' + (v.more ? 'more than ' + v.keys.length + ' children' : plural(v.keys.length, 'child')) + ' (not loaded yet).';
  if (isObj(v)) { const n = Object.keys(v).length; return 'Object with ' + (v[META] && v[META].more ? 'more than ' + n + ' children' : plural(n, 'child')) + '.'; }
  if (typeof v === 'string') return 'String of ' + plural(v.length, 'character') + '.';
  return (typeof v === 'number' ? 'Number' : 'Boolean') + '.';
}
function refreshPanel(reset) {
  const p = S.selected, v = getAt(psplit(p)), ta = $('ed-value');
  $('sel-path').textContent = p;
  $('sel-kind').textContent = describe(v);
  $('open-here').disabled = p === pstr(S.base);
  if (!reset && (S.dirty || ta.value.length > 100000)) return;  // do not re-serialise big values on every change
  let text = '', hint = 'Type a JSON value: "text", 42, true, or {"key": "value"}.';
  if (v !== undefined && v !== null) {
    try { text = toText(v, 2); } catch (e) { hint = 'Only part of this location is loaded, so its value is not shown. Type a value to replace it, or an object of children to update.'; }
    if (text.length > 300000) { text = ''; hint = 'Too large to edit here. Export it, or select a child.'; }
  }
  if (ta.value !== text) ta.value = text;
  ta.placeholder = hint;
}
$('ed-value').oninput = () => { S.dirty = true; };
function parseJSON(id) {
  const t = $(id).value.trim();
  if (!t) throw new Error('Enter a JSON value first: "text", 42, true, or {"key": "value"}.');
  try { return JSON.parse(t); } catch (e) { throw new Error('Not valid JSON: ' + e.message); }
}
async function act(button, work) {
  button.disabled = true;
  say('ed-msg', 'Working\u2026');
  try { say('ed-msg', await work(), 'ok'); } catch (e) { say('ed-msg', e.message, 'err'); } finally { button.disabled = false; }
  schedule();
}
const selKeys = () => psplit(S.selected), relOf = keys => keys.slice(S.base.length), local = () => S.mode !== 'live';
$('do-set').onclick = e => act(e.currentTarget, async () => {
  const keys = selKeys(), value = parseJSON('ed-value');
  const stored = await api('PUT', keys, { body: JSON.stringify(value) });
  if (local()) put(relOf(keys), norm(stored), true);
  S.dirty = false;
  return 'Saved ' + pstr(keys) + '.';
});
$('do-update').onclick = e => act(e.currentTarget, async () => {
  const keys = selKeys(), value = parseJSON('ed-value');
  if (!isObj(value) || Array.isArray(value)) throw new Error('An update is a JSON object of children (or relative paths) and their new values.');
  const applied = await api('PATCH', keys, { body: JSON.stringify(value) });
  if (local()) for (const k of Object.keys(applied || {})) if (!/(^|\/)\.priority$/.test(k)) put(relOf(keys).concat(psplit(k)), norm(applied[k]), true);
  S.dirty = false;
  return 'Updated ' + plural(Object.keys(value).length, 'child') + ' of ' + pstr(keys) + '.';
});
$('do-delete').onclick = e => act(e.currentTarget, async () => {
  const keys = selKeys();
  if (!confirm('Delete ' + pstr(keys) + ' and everything below it?')) return 'Nothing deleted.';
  await api('DELETE', keys);
  if (local()) put(relOf(keys), null, true);
  if (keys.length > S.base.length) S.selected = S.cursor = pstr(keys.slice(0, -1));
  S.dirty = false;
  return 'Deleted ' + pstr(keys) + '.';
});
$('do-add').onclick = e => act(e.currentTarget, async () => {
  const keys = selKeys(), key = $('ed-key').value.trim(), value = parseJSON('ed-new');
  if (key && BAD_KEY.test(key)) throw new Error('A key cannot contain . $ # [ ] / or control characters.');
  let name = key;
  if (key) {
    const stored = await api('PUT', keys.concat(key), { body: JSON.stringify(value) });
    if (local()) put(relOf(keys).concat(key), norm(stored), true);
  } else {
    name = (await api('POST', keys, { body: JSON.stringify(value) })).name;
    if (local()) put(relOf(keys).concat(name), norm(await api('GET', keys.concat(name))), true);
  }
  S.expanded.add(pstr(keys));
  $('ed-key').value = '';
  $('ed-new').value = '';
  return 'Added ' + pstr(keys.concat(name)) + '.';
});
$('open-here').onclick = () => navigate(selKeys());
function fileName(keys, ext) { return [S.ns].concat(keys).join('-').replace(/[^A-Za-z0-9_.-]+/g, '_') + '.' + ext; }
async function exportAs(ext, button) {
  const keys = selKeys(), name = fileName(keys, ext);
  await act(button, async () => {
    const blob = await api('GET', keys, { ext: '.' + ext, params: { download: name }, blob: true });
    const typed = new Blob([blob], { type: ext === 'csv' ? 'text/csv;charset=utf-8' : 'application/json;charset=utf-8' });
    S.lastExport = { name, path: pstr(keys), size: typed.size, text: typed.size <= 8 << 20 ? await typed.text() : null };
    const a = el('a', { href: URL.createObjectURL(typed), download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    document.body.dataset.lastExport = name;
    return 'Exported ' + pstr(keys) + ' as ' + name + ' (' + fmtBytes(typed.size) + ').';
  });
}
$('export-json').onclick = e => exportAs('json', e.currentTarget);
$('export-csv').onclick = e => exportAs('csv', e.currentTarget);

// ---- rules editor ---------------------------------------------------------------------------
const rulesText = $('rules-text');
async function loadRules() {
  $('rules-ns').textContent = S.rulesNs = S.ns;
  say('rules-msg', 'Loading\u2026');
  try {
    const text = await api('GET', settingsURL(), { text: true });
    rulesText.value = S.rulesSaved = text;
    S.errorLine = 0;
    say('rules-msg', 'These are the rules in force for ' + S.ns + '.');
  } catch (e) { say('rules-msg', e.message, 'err'); }
  updateEditor();
}
async function sendRules(dryRun, button) {
  const text = rulesText.value;
  button.disabled = true;
  try {
    await api('PUT', settingsURL(dryRun ? { dryRun: 'true' } : {}), { body: text });
    S.errorLine = 0;
    if (!dryRun) S.rulesSaved = text;
    say('rules-msg', dryRun ? 'Valid: the rules compile. Nothing was saved.' : 'Saved: these rules are now in force for ' + S.ns + '.', 'ok');
  } catch (e) {
    say('rules-msg', e.message, 'err');
    const at = /^Line (\d+), column (\d+)/.exec(e.message);
    if (at) showRulesError(+at[1], +at[2]);
  } finally { button.disabled = false; updateEditor(); }
}
function showRulesError(line, column) {
  const lines = rulesText.value.split('\n'), l = Math.max(1, Math.min(line, lines.length));
  let offset = 0;
  for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
  offset += Math.max(0, Math.min(column - 1, lines[l - 1].length));
  S.errorLine = l;
  rulesText.focus();
  rulesText.setSelectionRange(offset, offset);
  rulesText.scrollTop = Math.max(0, (l - 1) * LINE - rulesText.clientHeight / 2);
}
function updateEditor() {
  const count = rulesText.value.split('\n').length, gutter = $('gutter');
  if (gutter.childElementCount !== count || gutter.dataset.err !== String(S.errorLine)) {
    gutter.replaceChildren(...Array.from({ length: count }, (_, i) => el('div', { className: i + 1 === S.errorLine ? 'err' : '', textContent: i + 1 })));
    gutter.dataset.err = String(S.errorLine);
  }
  $('rules-state').textContent = rulesText.value !== S.rulesSaved ? '\u2022 unsaved changes' : '';
  syncScroll();
}
function syncScroll() {
  $('gutter').scrollTop = rulesText.scrollTop;
  const band = $('errband');
  band.hidden = !S.errorLine;
  band.style.top = 8 + (S.errorLine - 1) * LINE - rulesText.scrollTop + 'px';
}
rulesText.addEventListener('input', () => { S.errorLine = 0; updateEditor(); });
rulesText.addEventListener('scroll', syncScroll);
$('rules-reload').onclick = () => loadRules();
$('rules-validate').onclick = e => sendRules(true, e.currentTarget);
$('rules-save').onclick = e => sendRules(false, e.currentTarget);

// ---- start -------------------------------------------------------------------------------
if (S.token) signIn(S.token, true); else showSignIn('');
</script>
</body>
</html>
"""#
}
