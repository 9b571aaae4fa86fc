// The function's page, built from ./openapi.json and ./readyz (see
// docs/pages.md). What the function says reaches the DOM as text, never
// as HTML. URLs are relative to the page, which may be under a prefix
// (cortex serve's /{function}/).
const $ = id => document.getElementById(id);
const base = new URL('.', location.origin + location.pathname.replace(/\/docs$/, '/'));
const abs = p => new URL(p, base).href;
const KEY = 'cortex-token:' + base.pathname;
let token = '';
// cortex serve's front page keeps its token under 'cortex-token': behind a
// front with a token, a function's page starts with it.
try { token = sessionStorage.getItem(KEY) || sessionStorage.getItem('cortex-token') || ''; } catch (e) { /* storage off: ask each time */ }
let doc = null, routes = [], route = null, get = () => undefined, edited = false, timer = 0, tries = 0;
const blobs = [];

const mark = req => (req ? el('span', {class: 'req', text: ' (required)'}) : null);
const ferr = path => el('span', {class: 'ferr', id: 'err-' + path, hidden: true});

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

// call fetches path, relative to the page, with the token.
async function call(path, opts = {}) {
  const h = new Headers(opts.headers || {});
  if (token) h.set('Authorization', 'Bearer ' + token);
  const r = await fetch(abs(path), Object.assign({}, opts, {headers: h, cache: 'no-store'}));
  if (r.status === 401) {
    $('auth').hidden = false;
    $('auth-why').textContent = /invalid_token/.test(r.headers.get('WWW-Authenticate') || '')
      ? 'The function refused this token.' : 'This function requires a token.';
  }
  return r;
}

async function httpError(r) {
  let text = '', body = null;
  try { text = await r.text(); body = JSON.parse(text); } catch (e) { /* not JSON: show the text */ }
  const msg = body && typeof body.error === 'string' ? body.error : (text.trim() || r.statusText);
  return {status: r.status, msg, fields: body && Array.isArray(body.fields) ? body.fields : []};
}

function showError(status, msg) {
  $('error').hidden = false;
  $('error').textContent = 'Error' + (status ? ' ' + status : '') + ': ' + msg;
}

function clearErrors() {
  $('error').hidden = true;
  $('error').textContent = '';
  for (const s of document.querySelectorAll('.ferr')) { s.hidden = true; s.textContent = ''; }
  for (const i of document.querySelectorAll('[aria-invalid]')) { i.removeAttribute('aria-invalid'); i.classList.remove('invalid'); }
}

// fieldErrors shows each failing field's message next to its input:
// "$.a[0].b" is the input in-a.0.b, or the nearest enclosing one.
function fieldErrors(fields) {
  for (const f of fields) {
    const full = String(f.path || '').replace(/^\$\.?/, '').replace(/\[(\d+)\]/g, '.$1')
      .replace(/\['([^']*)'\]/g, '.$1').replace(/^\./, '');
    let p = full, span;
    while (!(span = $('err-' + p)) && p) p = p.includes('.') ? p.replace(/\.[^.]*$/, '') : '';
    if (!span) continue;
    span.hidden = false;
    span.append((span.textContent ? '; ' : '') + (p === full ? '' : (full || '$') + ': ') + f.message);
    const input = $('in-' + p);
    if (input) { input.setAttribute('aria-invalid', 'true'); input.classList.add('invalid'); }
  }
}

async function load() {
  clearErrors();
  let r;
  try { r = await call('openapi.json'); } catch (e) { showError(0, 'cannot reach the function: ' + e.message); return; }
  if (!r.ok) {
    const e = await httpError(r);
    showError(e.status, e.msg);
    if (r.status === 401) $('token').focus();
    return;
  }
  doc = await r.json();
  render();
  tries = 0;
  ready();
}

// ready shows readiness, and checks again only while the function is not
// ready: a page left open must not keep a scale-to-zero function awake.
async function ready() {
  let text = 'unreachable', cls = 'down', ok = false;
  try {
    const r = await call('readyz');
    ok = r.ok;
    text = ok ? 'ready' : 'not ready (' + r.status + '): ' + (await httpError(r)).msg;
    cls = ok ? 'ready' : 'down';
  } catch (e) { /* keep "unreachable" */ }
  const s = $('status');
  s.textContent = text;
  s.className = cls;
  clearTimeout(timer);
  if (!ok && ++tries < 60) timer = setTimeout(ready, Math.min(1000 * tries, 10000));
}

function render() {
  const info = doc.info || {}, x = doc['x-cortex'] || {};
  $('name').textContent = info.title || 'Cortex function';
  document.title = (info.title || 'function') + ' · Cortex';
  $('meta').textContent = ['version ' + info.version, x.digest && 'digest ' + x.digest,
    x.streams && 'streams its output', x.auth && 'requires a token'].filter(Boolean).join(' · ');
  const models = (x.models || []).filter(m => m && m.name);
  renderModels(models);
  routes = [];
  const post = doc.paths?.['/predict']?.post;
  if (post) {
    const content = post.requestBody?.content || {};
    const media = Object.keys(content).filter(t => t !== 'application/json');
    const json = content['application/json'];
    // An ONNX function's own route takes a model's OIP request: its tensor form.
    const model = models.find(m => m.name === post['x-cortex-model'] && (m.inputs || []).length);
    routes.push({label: 'POST predict (the function\'s own route)', path: 'predict', json: !!json,
      schema: json ? json.schema || {} : null, media, streams: !!x.streams, model,
      output: post.responses?.['200']?.content?.['application/json']?.schema});
  }
  for (const m of models) {
    if (!(m.inputs || []).length) continue;
    routes.push({label: 'POST v2/models/' + m.name + '/infer (Open Inference Protocol)', json: true, media: [],
      path: 'v2/models/' + encodeURIComponent(m.name) + '/infer', model: m});
  }
  // A function whose own route takes any JSON and serves models is best
  // tried through its models' tensors.
  const own = routes[0];
  if (own && !own.media.length && !Object.keys(deref(own.schema || {})).length && routes.length > 1) routes.push(routes.shift());
  const sel = $('route');
  sel.replaceChildren(...routes.map((r, i) => el('option', {value: i, text: r.label})));
  $('route-row').hidden = routes.length < 2;
  $('try').hidden = !routes.length;
  if (routes.length) pick(routes[0]);
}

function renderModels(models) {
  $('models-sec').hidden = !models.length;
  $('models').replaceChildren(...models.map(m => {
    const rows = [];
    for (const [kind, ts] of [['input', m.inputs], ['output', m.outputs]]) {
      for (const t of ts || []) {
        rows.push(el('tr', {}, el('td', {text: kind}), el('td', {text: t.name}), el('td', {text: t.datatype}),
          el('td', {text: '[' + (t.shape || []).join(', ') + ']'})));
      }
    }
    return el('div', {class: 'model'},
      el('h3', {text: m.name + (m.versions && m.versions.length ? ' (versions ' + m.versions.join(', ') + ')' : '')}),
      m.platform ? el('p', {class: 'hint', text: 'platform ' + m.platform}) : null,
      el('table', {}, el('thead', {}, el('tr', {}, ...['tensor', 'name', 'datatype', 'shape (-1: any)'].map(h => el('th', {scope: 'col', text: h})))),
        el('tbody', {}, ...rows)));
  }));
}

function pick(r) {
  route = r;
  edited = false;
  const fields = $('fields');
  fields.replaceChildren();
  const both = r.json && r.media.length > 0;
  $('mode-row').hidden = !both;
  $('mode-file').checked = r.media.length > 0; // an image is best sent as it is
  $('mode-form').checked = !r.media.length;
  $('in-file').value = '';
  $('in-file').setAttribute('accept', r.media.join(','));
  $('file-hint').textContent = r.media.length ? 'Sent as it is: ' + r.media.join(', ') : '';
  $('stream-row').hidden = !r.streams;
  let f;
  if (r.model) f = tensorForm(r.model);
  else if (r.schema) f = build(r.schema, '', 'body', true, 0);
  else f = {node: null, get: () => undefined};
  if (f.node) fields.append(f.node);
  if (!r.model) fields.append(ferr(''));
  get = f.get;
  $('schemas-sec').hidden = false;
  $('schema-in').textContent = JSON.stringify(r.model ? r.model.inputs : expand(r.schema), null, 2);
  $('schema-out').textContent = JSON.stringify(r.model ? r.model.outputs : expand(r.output), null, 2);
  mode();
  sync();
}

function fileMode() { return !!route && route.media.length > 0 && (!route.json || $('mode-file').checked); }

function mode() {
  const file = fileMode();
  $('file-row').hidden = !file;
  $('fields').hidden = file;
  $('body').parentElement.hidden = file;
  commands();
}

// sync writes the form's value into the JSON body, which is what is sent.
function sync() {
  if (fileMode()) return commands();
  clearErrors();
  try {
    const v = get();
    $('body').value = v === undefined ? '' : JSON.stringify(v, null, 2);
    edited = false;
  } catch (e) {
    showError(0, e.message);
  }
  commands();
}

// ---- schemas ----

function deref(s) {
  for (let n = 0; s && typeof s.$ref === 'string' && s.$ref.startsWith('#/') && n < 32; n++) {
    let t = doc;
    for (const p of s.$ref.slice(2).split('/')) t = t && t[p.replace(/~1/g, '/').replace(/~0/g, '~')];
    const rest = Object.assign({}, s);
    delete rest.$ref;
    s = Object.assign({}, t, rest);
  }
  if (s && Array.isArray(s.allOf) && s.allOf.length === 1) {
    const rest = Object.assign({}, s);
    delete rest.allOf;
    s = Object.assign({}, deref(s.allOf[0]), rest);
  }
  return s && typeof s === 'object' ? s : {};
}

// expand inlines references for display, a few levels deep.
function expand(s, depth = 0) {
  if (Array.isArray(s)) return s.map(x => expand(x, depth));
  if (!s || typeof s !== 'object' || depth > 8) return s;
  const d = s.$ref ? deref(s) : s, out = {};
  for (const [k, v] of Object.entries(d)) out[k] = expand(v, depth + 1);
  return out;
}

function typeOf(s) {
  let t = s.type;
  if (Array.isArray(t)) t = t.filter(x => x !== 'null')[0];
  if (!t && s.properties) t = 'object';
  if (!t && s.items) t = 'array';
  return t;
}

function hintOf(s) {
  const bits = [s.description];
  if (s.minimum !== undefined || s.maximum !== undefined) bits.push('range ' + (s.minimum ?? '…') + ' to ' + (s.maximum ?? '…'));
  if (s.examples?.length) bits.push('e.g. ' + JSON.stringify(s.examples[0]));
  return bits.filter(Boolean).join('; ');
}

// wrap lays out one labelled input with its hint and error message.
function wrap(path, label, req, s, input) {
  const id = 'in-' + path, hint = hintOf(s);
  input.id = id;
  input.name = path;
  input.setAttribute('aria-describedby', (hint ? 'hint-' + path + ' ' : '') + 'err-' + path);
  const cb = input.type === 'checkbox', lab = el('label', {for: id, class: cb && 'inline'}, label, mark(req));
  return el('div', {class: 'row'}, ...(cb ? [input, ' ', lab] : [lab, input]),
    hint && el('small', {id: 'hint-' + path, text: hint}), ferr(path));
}

function build(s0, path, label, req, depth) {
  const s = deref(s0), t = typeOf(s), name = s.title || label;
  if (s.const !== undefined) return {node: null, get: () => s.const};
  if (depth > 6) return jsonField(s, path, name, req);
  if (Array.isArray(s.enum)) return select(s, path, name, req);
  switch (t) {
    case 'object': return s.properties ? object(s, path, name, req, depth) : jsonField(s, path, name, req);
    case 'array': return array(s, path, name, req, depth);
    case 'boolean': {
      const cb = el('input', {type: 'checkbox', checked: s.default === true});
      return {node: wrap(path, name, false, s, cb), get: () => (cb.checked || req ? cb.checked : undefined)};
    }
    case 'integer': case 'number': {
      const i = el('input', {type: 'number', inputmode: t === 'integer' ? 'numeric' : 'decimal',
        step: s.multipleOf || (t === 'integer' ? 1 : 'any'), min: s.minimum ?? s.exclusiveMinimum,
        max: s.maximum ?? s.exclusiveMaximum, value: s.default});
      return {node: wrap(path, name, req, s, i), get: () => num(i.value)};
    }
    case 'string':
      if (s.contentEncoding === 'base64' || s.format === 'byte' || s.format === 'binary') return base64Field(s, path, name, req);
      {
        const long = s.maxLength > 200 || /prompt|text|content/i.test(label);
        const i = long ? el('textarea', {rows: 3}) : el('input', {type: 'text'});
        if (s.maxLength) i.setAttribute('maxlength', s.maxLength);
        if (s.default !== undefined) i.value = s.default;
        return {node: wrap(path, name, req, s, i), get: () => (i.value === '' && !req ? undefined : i.value)};
      }
    default: return jsonField(s, path, name, req);
  }
}

function num(v) {
  if (v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isNaN(n) ? v : n; // the function says what is wrong with it
}

function select(s, path, name, req) {
  const sel = el('select', {});
  if (!req || s.default === undefined) sel.append(el('option', {value: '', text: req ? '(choose)' : '(none)'}));
  s.enum.forEach((v, i) => sel.append(el('option', {value: i, text: typeof v === 'string' ? v : JSON.stringify(v),
    selected: s.default !== undefined && JSON.stringify(s.default) === JSON.stringify(v)})));
  return {node: wrap(path, name, req, s, sel), get: () => (sel.value === '' ? undefined : s.enum[Number(sel.value)])};
}

function object(s, path, name, req, depth) {
  const need = new Set(s.required || []);
  const kids = Object.entries(s.properties).map(([k, ps]) =>
    [k, build(ps, path ? path + '.' + k : k, k, need.has(k), depth + 1)]);
  const box = path ? el('fieldset', {id: 'in-' + path}, el('legend', {}, name, mark(req)))
    : el('div', {});
  if (path && s.description) box.append(el('small', {text: s.description}));
  for (const [, f] of kids) if (f.node) box.append(f.node);
  if (path) box.append(ferr(path));
  return {node: box, get: () => {
    const o = {};
    let any = false;
    for (const [k, f] of kids) {
      const v = f.get();
      if (v !== undefined) { o[k] = v; any = true; }
    }
    return any || req || !path ? o : undefined;
  }};
}

function array(s, path, name, req, depth) {
  const it = deref(s.items || {}), t = typeOf(it);
  if (['string', 'number', 'integer', 'boolean'].includes(t)) {
    const i = el('input', {type: 'text', placeholder: 'comma-separated'});
    const conv = x => (t === 'string' ? x : t === 'boolean' ? x === 'true' : num(x));
    const node = wrap(path, name + ' (comma-separated)', req, s, i);
    return {node, get: () => {
      const parts = i.value.split(',').map(x => x.trim()).filter(x => x !== '');
      return parts.length || req ? parts.map(conv) : undefined;
    }};
  }
  const list = el('div', {}), rows = [];
  let n = 0;
  const add = () => {
    const k = n++;
    const f = build(it, path + '.' + k, name + ' ' + (k + 1), true, depth + 1);
    const rm = el('button', {type: 'button', text: 'Remove', 'aria-label': 'Remove ' + name + ' ' + (k + 1)});
    const rec = {row: el('div', {class: 'arow'}, el('div', {}, f.node), rm), f};
    rm.addEventListener('click', () => { rec.row.remove(); rows.splice(rows.indexOf(rec), 1); sync(); });
    rows.push(rec);
    list.append(rec.row);
  };
  for (let k = 0; k < Math.max(s.minItems || 0, req ? 1 : 0); k++) add();
  const more = el('button', {type: 'button', id: 'add-' + path, text: 'Add ' + name});
  more.addEventListener('click', () => { add(); sync(); });
  const box = el('fieldset', {id: 'in-' + path}, el('legend', {}, name, mark(req)),
    list, more, ferr(path));
  return {node: box, get: () => (rows.length || req ? rows.map(r => r.f.get()) : undefined)};
}

function jsonField(s, path, name, req) {
  const ta = el('textarea', {rows: 3, spellcheck: 'false', placeholder: 'JSON'});
  return {node: wrap(path, name + ' (JSON)', req, s, ta), get: () => {
    if (ta.value.trim() === '') return undefined;
    try { return JSON.parse(ta.value); } catch (e) { throw new Error(name + ' is not valid JSON: ' + e.message); }
  }};
}

// base64Field is a string the function takes as base64 (an image in a
// JSON body): a file upload read into base64.
function base64Field(s, path, name, req) {
  const f = el('input', {type: 'file', accept: s.contentMediaType});
  let data;
  f.addEventListener('change', () => {
    data = undefined;
    const file = f.files[0];
    if (!file) return sync();
    const rd = new FileReader();
    rd.onload = () => { data = String(rd.result).replace(/^data:[^,]*,/, ''); sync(); };
    rd.readAsDataURL(file);
  });
  return {node: wrap(path, name + ' (a file, sent as base64)', req, s, f), get: () => data};
}

// tensorForm is the form of a model's input tensors: an OIP request.
function tensorForm(m) {
  const parts = m.inputs.map((t, i) => tensorField(t, i));
  const node = el('div', {}, ...parts.map(p => p.node));
  return {node, get: () => ({inputs: parts.map(p => p.get())})};
}

function tensorField(t, idx) {
  const shape = Array.isArray(t.shape) && t.shape.length ? t.shape : [-1];
  const last = shape[shape.length - 1], dt = t.datatype || 'FP32';
  const numeric = dt !== 'BYTES' && dt !== 'BOOL', int = /INT/.test(dt);
  const box = el('fieldset', {class: 'tensor'}, el('legend', {text: 'Input tensor ' + t.name + ' (' + dt + ' [' + shape.join(', ') + '])'}));
  const conv = x => (dt === 'BOOL' ? x === 'true' || x === '1' : numeric ? num(x) ?? null : x);
  const err = ferr('inputs.' + idx);
  if (numeric && last > 0 && last <= 16 && shape.slice(0, -1).every(d => d === -1 || d === 1)) {
    const cells = [], row = el('div', {class: 'cells'});
    for (let i = 0; i < last; i++) {
      const p = t.name + '.' + i;
      cells.push(el('input', {type: 'number', id: 'in-' + p, name: p, step: int ? 1 : 'any', inputmode: 'decimal'}));
      row.append(el('div', {}, el('label', {for: 'in-' + p, text: t.name + '[' + i + ']'}), cells[i]));
    }
    box.append(row, err);
    return {node: box, get: () => ({name: t.name, shape: shape.map(d => (d < 0 ? 1 : d)), datatype: dt,
      data: cells.map(c => conv(c.value))})};
  }
  const ta = el('textarea', {id: 'in-' + t.name, name: t.name, rows: 3, spellcheck: 'false'});
  box.append(el('label', {for: 'in-' + t.name, text: t.name + (dt === 'BYTES' ? ': one element a line' : ': the elements, row by row')}), ta, err);
  return {node: box, get: () => {
    const data = (dt === 'BYTES' ? ta.value.split('\n') : ta.value.split(/[\s,]+/)).filter(x => x !== '').map(conv);
    const fixed = shape.reduce((a, d) => (d > 0 ? a * d : a), 1);
    let first = true;
    const sh = shape.map(d => {
      if (d >= 0) return d;
      if (!first) return 1;
      first = false;
      return Math.max(1, Math.round(data.length / fixed));
    });
    return {name: t.name, shape: sh, datatype: dt, data};
  }};
}

// ---- sending ----

function request() {
  const r = {path: route.path, headers: {}, sse: route.streams && $('stream').checked};
  if (r.sse) r.headers.Accept = 'text/event-stream';
  if (fileMode()) {
    const file = $('in-file').files[0];
    if (!file) throw new Error('choose a file to send');
    r.body = file;
    r.file = file.name;
    const wild = !file.type || !route.media.some(m => m === file.type || (m.endsWith('/*') && file.type.startsWith(m.slice(0, -1))));
    r.headers['Content-Type'] = wild && !route.media[0].includes('*') ? route.media[0] : (file.type || 'application/octet-stream');
  } else {
    r.body = $('body').value;
    r.headers['Content-Type'] = 'application/json';
  }
  return r;
}

async function submit(ev) {
  ev.preventDefault();
  if (!route) return;
  if (!edited) sync();
  clearErrors();
  let req;
  try { req = request(); } catch (e) { showError(0, e.message); return; }
  const out = $('result');
  out.replaceChildren(el('p', {text: 'Waiting for the answer…'}));
  $('submit').disabled = true;
  try {
    const r = await call(req.path, {method: 'POST', headers: req.headers, body: req.body});
    if (!r.ok) {
      const e = await httpError(r);
      out.replaceChildren();
      showError(e.status, e.msg);
      fieldErrors(e.fields);
      return;
    }
    await show(r, out);
  } catch (e) {
    out.replaceChildren();
    showError(0, 'the request failed: ' + e.message);
  } finally {
    $('submit').disabled = false;
  }
}

async function show(r, out) {
  while (blobs.length) URL.revokeObjectURL(blobs.pop());
  const ct = (r.headers.get('Content-Type') || '').toLowerCase(), id = r.headers.get('X-Request-Id');
  const meta = el('p', {class: 'hint', text: r.status + ' ' + (ct || 'no content type') + (id ? ' · request ' + id : '')});
  if (ct.startsWith('text/event-stream')) return stream(r, out, meta);
  if (ct.startsWith('image/')) {
    const u = URL.createObjectURL(await r.blob());
    blobs.push(u);
    out.replaceChildren(meta, el('img', {id: 'result-image', src: u, alt: 'The image the function answered'}));
    return;
  }
  const text = await r.text();
  let v;
  try { v = JSON.parse(text); } catch (e) { /* text */ }
  const pre = el('pre', {id: 'result-body', tabindex: 0, text: v === undefined ? text : JSON.stringify(v, null, 2)});
  out.replaceChildren(meta, outputs(v) || '', pre);
}

// outputs lists an OIP answer's output tensors, or a V1 answer's
// predictions, by name.
function outputs(v) {
  if (!v || typeof v !== 'object') return null;
  const list = Array.isArray(v.outputs) ? v.outputs.filter(o => o && o.name !== undefined)
    : Array.isArray(v.predictions) ? [{name: 'predictions', data: v.predictions}] : [];
  if (!list.length) return null;
  const dl = el('dl', {class: 'outputs'});
  for (const o of list) dl.append(el('dt', {text: String(o.name)}), el('dd', {id: 'out-' + o.name, text: JSON.stringify(o.data)}));
  return dl;
}

// stream shows server-sent events' output as it arrives.
async function stream(r, out, meta) {
  const pre = el('pre', {id: 'result-body', tabindex: 0});
  out.replaceChildren(meta, pre);
  const rd = r.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const {value, done} = await rd.read();
    buf += dec.decode(value || new Uint8Array(), {stream: !done});
    let m;
    while ((m = /\r?\n\r?\n/.exec(buf))) {
      event(buf.slice(0, m.index), pre, meta);
      buf = buf.slice(m.index + m[0].length);
    }
    if (done) break;
  }
  if (buf.trim()) event(buf, pre, meta);
}

function event(raw, pre, meta) {
  let name = 'message';
  const data = [];
  for (const line of raw.split(/\r?\n/)) {
    const [, f, v] = /^([^:]*):? ?(.*)$/.exec(line); // a comment's field is ""
    if (f === 'event') name = v; else if (f === 'data') data.push(v);
  }
  const d = data.join('\n');
  if (name === 'output') pre.append(d);
  else if (name === 'output.base64') pre.append(new TextDecoder().decode(Uint8Array.from(atob(d), c => c.charCodeAt(0))));
  else if (name === 'error') {
    let e = {};
    try { e = JSON.parse(d); } catch (x) { e = {error: d}; }
    showError(e.status, e.error || d);
  } else if (name === 'done') meta.append(' · done');
  else if (data.length) pre.append(d + '\n'); // the predictor's own events
}

// ---- commands ----

const sh = s => '\'' + String(s).replace(/'/g, '\'\\\'\'') + '\'';

function commands() {
  if (!route) return;
  let r;
  try { r = request(); } catch (e) { r = {path: route.path, headers: {'Content-Type': route.media[0] || ''}, file: 'FILE', sse: route.streams && $('stream').checked}; }
  const auth = token ? ' -H "Authorization: Bearer $CORTEX_TOKEN"' : '';
  let body = $('body').value;
  try { body = JSON.stringify(JSON.parse(body)); } catch (e) { /* as typed */ }
  const ct = r.headers['Content-Type'];
  const data = r.file ? '--data-binary @' + sh(r.file) : '-d ' + sh(body);
  $('curl').textContent = 'curl' + (r.sse ? ' -N -H ' + sh('Accept: text/event-stream') : '') + auth +
    ' -H ' + sh('Content-Type: ' + ct) + ' ' + data + ' ' + sh(abs(r.path));
  $('cli').textContent = 'cortex predict --url ' + sh(base.href.replace(/\/$/, '')) +
    (r.path === 'predict' ? '' : ' --path ' + sh('/' + decodeURIComponent(r.path))) + (r.sse ? ' --stream' : '') + auth +
    (r.file ? ' -H ' + sh('Content-Type: ' + ct) + ' -d @' + sh(r.file) : ' -d ' + sh(body));
  $('shell').hidden = false;
}

async function copy(pre, btn) {
  try {
    await navigator.clipboard.writeText(pre.textContent);
    btn.textContent = 'Copied';
  } catch (e) { // not a secure context (plain http off localhost): select it
    getSelection().selectAllChildren(pre);
    btn.textContent = 'Selected: press Ctrl+C';
  }
  setTimeout(() => { btn.textContent = 'Copy'; }, 2000);
}

// keep keeps the token in this tab only.
function keep() {
  try {
    if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
  } catch (e) { /* storage off: this page only */ }
}

// ---- wiring (a module runs once the page is parsed) ----

const on = (id, ev, fn) => $(id).addEventListener(ev, fn);
on('form', 'submit', submit);
on('fields', 'input', sync);
on('fields', 'change', sync);
on('body', 'input', () => { edited = true; commands(); });
for (const id of ['in-file', 'stream']) on(id, 'change', commands);
for (const id of ['mode-form', 'mode-file']) on(id, 'change', mode);
on('route', 'change', () => pick(routes[Number($('route').value)]));
for (const id of ['curl', 'cli']) on('copy-' + id, 'click', () => copy($(id), $('copy-' + id)));
on('auth-form', 'submit', ev => {
  ev.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  keep();
  $('auth').hidden = !!token;
  load();
});
on('token-forget', 'click', () => { token = ''; keep(); commands(); });
load();
