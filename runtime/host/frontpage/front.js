// cortex serve's front page: every function's live state, from -/events
// (server-sent events, read with fetch so that a token can go with them)
// or, when that fails, from -/status once a second. Every value goes into
// the page with textContent: a name, a state or an error is shown, never
// run.
'use strict';

(() => {
  const KEY = 'cortex-token'; // sessionStorage: this tab only, shared with the functions' pages
  const FIELDS = ['state', 'processes', 'inflight', 'queued', 'requests', 'errors', 'cold_starts', 'last_cold_start', 'error'];
  const tbody = document.querySelector('#functions tbody');
  const conn = document.getElementById('conn');
  const live = document.getElementById('live');
  const form = document.getElementById('auth');
  const input = document.getElementById('token');
  const why = document.getElementById('auth-why');

  class NeedToken extends Error {}

  const token = () => {
    try { return sessionStorage.getItem(KEY) || ''; } catch { return ''; }
  };
  const headers = () => {
    const t = token();
    return t ? { Authorization: 'Bearer ' + t } : {};
  };
  const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

  // askToken shows the token form and resolves once one is entered.
  let entered = null;
  const askToken = (hadOne) => {
    why.textContent = hadOne ? 'The token was not accepted: enter it again.' : 'This cortex serve requires a token.';
    form.hidden = false;
    conn.textContent = 'waiting for the token';
    input.focus();
    return new Promise((ok) => { entered = ok; });
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    try { sessionStorage.setItem(KEY, input.value.trim()); } catch { /* private mode: kept for this page only */ }
    input.value = '';
    form.hidden = true;
    if (entered) { entered(); entered = null; }
  });

  const check = (r, what) => {
    if (r.status === 401) throw new NeedToken();
    if (!r.ok) throw new Error(what + ': ' + r.status + ' ' + r.statusText);
  };

  const cell = (row, field) => row.querySelector('[data-field="' + field + '"]');

  const newRow = (name) => {
    const row = document.createElement('tr');
    row.id = 'fn-' + name;
    const th = document.createElement('th');
    th.scope = 'row';
    const a = document.createElement('a');
    a.className = 'page';
    a.href = encodeURIComponent(name) + '/';
    a.textContent = name;
    th.append(a);
    row.append(th);
    for (const f of FIELDS) {
      const td = document.createElement('td');
      td.dataset.field = f;
      if (f === 'last_cold_start') {
        // Its time and total, and below them its phases: a span each.
        td.dataset.field = 'cold_start';
        for (const [field, cls] of [['last_cold_start', ''], ['cold_start_phases', 'phases']]) {
          const span = document.createElement('span');
          span.dataset.field = field;
          if (cls) span.className = cls;
          td.append(span);
        }
      }
      row.append(td);
    }
    tbody.append(row);
    return row;
  };

  const requests = (byCode) => Object.keys(byCode || {}).sort()
    .map((code) => code + ': ' + byCode[code]).join(', ') || 'none';

  const duration = (secs) => (secs < 1 ? Math.round(secs * 1000) + ' ms' : secs.toFixed(2) + ' s');

  // The phases of a start inside its process (runtime.Phases), in order.
  const PHASES = [['fetch', 'fetch'], ['load', 'load'], ['init', 'init'], ['first_prediction', 'first prediction']];
  // setPhases shows them as "fetch 0 ms · load 45 ms · ...", a span each
  // (kept on one line), the separators as text.
  const setPhases = (row, f) => {
    const p = f.last_cold_start_phases_seconds || {};
    const parts = PHASES.filter(([k]) => typeof p[k] === 'number')
      .map(([k, label]) => label + ' ' + duration(p[k]));
    const el = cell(row, 'cold_start_phases');
    if (el.textContent === parts.join(' · ')) return;
    el.replaceChildren(...parts.flatMap((text, i) => {
      const span = document.createElement('span');
      span.textContent = text;
      return i ? [' · ', span] : [span];
    }));
  };

  const coldStart = (f) => {
    if (!f.last_cold_start_at) return 'never';
    const at = new Date(f.last_cold_start_at);
    const secs = Number(f.last_cold_start_seconds || 0);
    return at.toLocaleTimeString() + ' (' + duration(secs) + ')';
  };

  const set = (row, field, value) => {
    const td = cell(row, field);
    const text = String(value);
    if (td.textContent !== text) td.textContent = text;
  };

  const render = (status) => {
    const seen = new Set();
    const news = [];
    for (const f of status.functions || []) {
      seen.add(f.name);
      let row = document.getElementById('fn-' + f.name);
      if (!row) row = newRow(f.name);
      const before = row.dataset.state;
      row.dataset.state = f.state;
      if (before && before !== f.state) news.push(f.name + ' is ' + f.state);
      set(row, 'state', f.state);
      set(row, 'processes', (f.processes || []).length);
      set(row, 'inflight', f.in_flight || 0);
      set(row, 'queued', f.queued || 0);
      set(row, 'requests', requests(f.requests));
      set(row, 'errors', f.errors || 0);
      set(row, 'cold_starts', f.cold_starts || 0);
      set(row, 'last_cold_start', coldStart(f));
      setPhases(row, f);
      const problems = [f.error, f.build_error, f.last_error && f.last_error !== f.error ? f.last_error : ''];
      set(row, 'error', problems.filter(Boolean).join('\n'));
    }
    for (const row of [...tbody.rows]) {
      if (!seen.has(row.id.slice(3))) row.remove();
    }
    // Announce what a person would look for, not every count.
    if (news.length) live.textContent = news.join('; ');
  };

  // stream reads -/events until it ends. EventSource cannot send a
  // token, so this is fetch and a reader over the event stream.
  const stream = async () => {
    const r = await fetch('-/events', { headers: headers(), cache: 'no-store' });
    check(r, 'GET -/events');
    if (!r.body || !window.TextDecoderStream) throw new Error('this browser cannot read a stream');
    conn.textContent = 'live';
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue; // a heartbeat
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
        }
        if (event === 'status' && data.length) render(JSON.parse(data.join('\n')));
      }
    }
  };

  const poll = async () => {
    const r = await fetch('-/status', { headers: headers(), cache: 'no-store' });
    check(r, 'GET -/status');
    render(await r.json());
    conn.textContent = 'live (polling every second)';
  };

  const run = async () => {
    let streaming = !!(window.ReadableStream && window.TextDecoderStream);
    let failures = 0;
    for (;;) {
      try {
        if (streaming) {
          await stream();
          conn.textContent = 'reconnecting…';
          failures = 0;
        } else {
          await poll();
        }
      } catch (err) {
        if (err instanceof NeedToken) {
          await askToken(token() !== '');
          continue;
        }
        conn.textContent = 'not connected: ' + err.message + ' (retrying)';
        // A proxy that buffers or cuts streams: poll instead.
        if (streaming && ++failures >= 3) streaming = false;
      }
      await sleep(1000);
    }
  };

  run();
})();
