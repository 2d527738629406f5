// The SBC operator console. Everything it shows comes from the admin API
// under /api/v1/, read with the token the operator types in: the token
// lives in this closure only (never in storage, cookies or the URL), so a
// reload asks for it again. Data from the API is put in the page as text
// (textContent, SVG text nodes), never as HTML.
'use strict';
(() => {
  let token = '';
  let timer = 0; // the current page's refresh
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    return e;
  }

  class Unauthorized extends Error {}

  // api calls the admin API with the token; 401 sends the operator back
  // to the login.
  async function api(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      logout('The token was refused (401): enter it again.');
      throw new Unauthorized('401');
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error(data.error || r.status + ' ' + r.statusText);
      err.status = r.status;
      throw err;
    }
    return data;
  }

  function logout(msg) {
    token = '';
    clearInterval(timer);
    $('page').hidden = true;
    $('page').replaceChildren();
    $('nav').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    $('token').value = '';
    $('token').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    try {
      await api('GET', '/api/v1/calls');
    } catch (e) {
      if (!(e instanceof Unauthorized)) logout('The admin API answered: ' + e.message);
      return;
    }
    $('login').hidden = true;
    $('nav').hidden = false;
    $('page').hidden = false;
    route();
  }

  const fmtDur = (s) => {
    s = Math.floor(s);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(sec).padStart(2, '0');
  };
  const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '');
  const mosCell = (mos) => {
    if (!mos) return el('td', { text: '–' });
    return el('td', { class: mos < 3.6 ? 'mos-bad' : 'mos-ok', text: mos.toFixed(2) });
  };

  function table(cls, head, rows) {
    return el('table', { class: cls },
      el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { text: h })))),
      el('tbody', {}, ...rows));
  }

  function status(msg) { $('status').textContent = msg || ''; }

  // every runs load now and then every ms while the page stays open.
  function every(ms, load) {
    clearInterval(timer);
    const run = () => load().then(() => status(''), (e) => { if (!(e instanceof Unauthorized)) status(e.message); });
    run();
    timer = setInterval(run, ms);
  }

  // ---- pages ----

  function callsPage(page) {
    const body = el('div');
    page.append(el('h2', { text: 'Live calls' }), body);
    every(1000, async () => {
      const { calls } = await api('GET', '/api/v1/calls');
      const rows = calls.map((c) => el('tr', { 'data-call-id': c.id },
        el('td', {}, el('a', { href: '#call/' + encodeURIComponent(c.id), class: 'call-link', text: c.id.slice(0, 8) })),
        el('td', { text: c.from }), el('td', { text: c.to }), el('td', { text: c.state }),
        el('td', { text: c.legs.map((l) => l.side + ': ' + l.transport).join(', ') }),
        el('td', { text: c.legs.map((l) => l.side + ': ' + (l.codec || '–')).join(', ') }),
        el('td', { class: 'duration', text: fmtDur(c.duration_s) }),
        mosCell(c.media.a_to_b.mos), mosCell(c.media.b_to_a.mos)));
      body.replaceChildren(calls.length ? table('calls', ['call', 'from', 'to', 'state', 'transports', 'codecs',
        'duration', 'MOS a→b', 'MOS b→a'], rows) : el('p', { class: 'empty', text: 'No call in progress.' }));
    });
  }

  function callPage(page, id) {
    const head = el('div'), ladder = el('div', { class: 'ladder-box' }), charts = el('div', { class: 'charts' });
    page.append(el('h2', { text: 'Call ' + id }), head, el('h3', { text: 'SIP ladder and media milestones' }), ladder,
      el('h3', { text: 'Quality per direction' }), charts);
    const path = '/api/v1/calls/' + encodeURIComponent(id);
    let live = true;
    every(2000, async () => {
      if (!live) return;
      const [call, tl] = await Promise.all([
        api('GET', path).catch((e) => { if (e.status === 404) return null; throw e; }),
        api('GET', path + '/timeline').catch((e) => { if (e instanceof Unauthorized) throw e; return { error: e.message }; }),
      ]);
      if (tl.error) {
        head.replaceChildren(summary(call, {}));
        ladder.replaceChildren(el('p', { class: 'error', id: 'timeline-error', text: 'No timeline: ' + tl.error }));
        charts.replaceChildren();
        live = call !== null;
        return;
      }
      head.replaceChildren(summary(call, tl));
      ladder.replaceChildren(drawLadder(tl));
      charts.replaceChildren(drawChart(tl, 'a'), drawChart(tl, 'b'));
      live = tl.live;
    });
  }

  function summary(call, tl) {
    const dl = el('dl', { class: 'summary' });
    const add = (k, v) => dl.append(el('dt', { text: k }), el('dd', { text: v }));
    add('state', call ? call.state : 'ended');
    if (call) {
      add('from', call.from); add('to', call.to);
      for (const l of call.legs) add('leg ' + l.side, l.transport + ' ' + l.peer + ' ' + (l.codec || '') + ' ' + l.call_id);
      add('duration', fmtDur(call.duration_s));
    }
    if (tl.started) {
      add('leg a Call-ID', tl.a_call_id || ''); add('leg b Call-ID', tl.b_call_id || '');
      add('started', fmtTime(tl.started));
    }
    if (tl.ended) add('ended', fmtTime(tl.ended));
    const box = el('div', {}, dl);
    if (call) {
      box.append(el('button', { id: 'hangup', class: 'danger', type: 'button', text: 'Hang up',
        on: { click: async () => {
          if (!confirm('Hang up this call on both legs?')) return;
          try { await api('DELETE', '/api/v1/calls/' + encodeURIComponent(call.id)); status('Hung up.'); }
          catch (e) { if (!(e instanceof Unauthorized)) status(e.message); }
        } } }));
    }
    return box;
  }

  // drawLadder draws both legs side by side: caller | SBC (leg a side),
  // SBC (leg b side) | callee; one row per event in time order, so SIP on
  // both legs and the media milestones share one time axis.
  function drawLadder(tl) {
    const events = tl.events.filter((e) => e.kind !== 'quality');
    const X = { caller: 130, sbcA: 400, sbcB: 470, callee: 740 };
    const rowH = 22, top = 40, h = top + events.length * rowH + 20;
    const s = svg('svg', { id: 'ladder', width: 860, height: h, viewBox: `0 0 860 ${h}` });
    const lanes = [['caller', 'leg a: caller'], ['sbcA', 'SBC'], ['sbcB', 'SBC'], ['callee', 'leg b: callee']];
    for (const [k, label] of lanes) {
      s.append(svg('line', { class: 'lane', x1: X[k], y1: 28, x2: X[k], y2: h - 10 }));
      s.append(svg('text', { class: 'lane-label', x: X[k], y: 18, 'text-anchor': 'middle' }, label));
    }
    events.forEach((e, i) => {
      const y = top + i * rowH;
      s.append(svg('text', { class: 'time', x: 4, y: y + 4 }, '+' + e.ms.toFixed(1) + ' ms'));
      if (e.kind === 'sip' && (e.leg === 'a' || e.leg === 'b')) s.append(sipArrow(e, y, X));
      else s.append(milestone(e, y, X));
    });
    return s;
  }

  function sipArrow(e, y, X) {
    const [far, near] = e.leg === 'a' ? [X.caller, X.sbcA] : [X.callee, X.sbcB];
    const [x1, x2] = e.dir === 'in' ? [far, near] : [near, far];
    const g = svg('g', { class: 'msg leg-' + e.leg, 'data-leg': e.leg, 'data-dir': e.dir, 'data-what': e.what });
    g.append(svg('line', { x1, y1: y, x2, y2: y }));
    const d = x2 > x1 ? -7 : 7;
    g.append(svg('polygon', { points: `${x2},${y} ${x2 + d},${y - 4} ${x2 + d},${y + 4}` }));
    g.append(svg('text', { x: (x1 + x2) / 2, y: y - 4, 'text-anchor': 'middle' }, e.what));
    if (e.text) g.append(svg('title', {}, e.text));
    return g;
  }

  function milestone(e, y, X) {
    const g = svg('g', { class: 'milestone ' + e.kind, 'data-kind': e.kind, 'data-what': e.what, 'data-leg': e.leg || '' });
    const detail = e.detail ? Object.entries(e.detail).map(([k, v]) => k + '=' + v).join(' ') : '';
    const label = e.kind + ': ' + e.what + (e.leg ? ' (' + e.leg + ')' : '') + (detail ? ' ' + detail : '');
    const x = e.leg === 'b' ? X.sbcB - 60 : e.leg === 'a' ? X.caller + 20 : X.sbcA - 120;
    g.append(svg('rect', { x: x - 4, y: y - 12, width: Math.min(label.length * 6.7 + 8, 700), height: 16, rx: 3 }));
    g.append(svg('text', { x, y }, label));
    return g;
  }

  // drawChart plots one direction's quality samples: packets (left axis)
  // and MOS (1-5, right axis) over the call's time.
  function drawChart(tl, from) {
    const samples = tl.events.filter((e) => e.kind === 'quality' && e.what === 'sample' && e.detail && e.detail.from === from);
    const W = 420, H = 180, L = 50, R = 40, T = 20, B = 30;
    const maxMs = Math.max(1000, ...samples.map((e) => e.ms));
    const maxPk = Math.max(1, ...samples.map((e) => e.detail.packets || 0));
    const s = svg('svg', { class: 'chart', 'data-from': from, 'data-samples': samples.length, 'data-max-packets': maxPk,
      width: W, height: H, viewBox: `0 0 ${W} ${H}` });
    s.append(svg('text', { x: L, y: 14 }, (from === 'a' ? 'a → b' : 'b → a') + ': ' + samples.length + ' samples'));
    s.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
    s.append(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
    s.append(svg('text', { x: 2, y: T + 8 }, String(maxPk)));
    s.append(svg('text', { x: 2, y: H - B }, '0'));
    s.append(svg('text', { x: W - R + 4, y: T + 8 }, 'MOS 5'));
    s.append(svg('text', { x: W - R - 30, y: H - 8 }, (maxMs / 1000).toFixed(0) + ' s'));
    const px = (ms) => L + (ms / maxMs) * (W - L - R);
    const py = (v, max) => H - B - (v / max) * (H - T - B);
    const line = (cls, f, max) => svg('polyline', { class: cls,
      points: samples.map((e) => px(e.ms).toFixed(1) + ',' + py(f(e.detail), max).toFixed(1)).join(' ') });
    if (samples.length) {
      s.append(line('series-packets', (d) => d.packets || 0, maxPk));
      s.append(line('series-lost', (d) => Math.max(0, d.lost || 0), maxPk));
      s.append(line('series-mos', (d) => d.mos || 0, 5));
      for (const e of samples) {
        s.append(svg('circle', { class: 'dot-packets', cx: px(e.ms).toFixed(1), cy: py(e.detail.packets || 0, maxPk).toFixed(1), r: 2.5 }));
        s.append(svg('circle', { class: 'dot-mos', cx: px(e.ms).toFixed(1), cy: py(e.detail.mos || 0, 5).toFixed(1), r: 2.5 }));
      }
      const last = samples[samples.length - 1].detail;
      s.append(svg('text', { x: L + 4, y: H - B - 4 }, `packets ${last.packets} lost ${last.lost} jitter ${Number(last.jitter_ms).toFixed(1)} ms MOS ${Number(last.mos).toFixed(2)}`));
    }
    return s;
  }

  function registrationsPage(page) {
    const body = el('div');
    page.append(el('h2', { text: 'Registrations' }), body);
    every(5000, async () => {
      const { registrations } = await api('GET', '/api/v1/registrations');
      body.replaceChildren(table('registrations', ['AOR', 'contact', 'source', 'transport', 'user agent', 'expires'],
        registrations.map((r) => el('tr', {}, el('td', { text: r.aor }), el('td', { text: r.contact }),
          el('td', { text: r.source }), el('td', { text: r.transport }), el('td', { text: r.user_agent }),
          el('td', { text: fmtTime(r.expires) })))));
    });
  }

  function trunksPage(page) {
    const body = el('div');
    page.append(el('h2', { text: 'Trunks' }), body);
    every(5000, async () => {
      const { trunks } = await api('GET', '/api/v1/trunks');
      body.replaceChildren(table('trunks', ['name', 'URI', 'state', 'last probe', 'last error', 'registration', 'up/down history'],
        trunks.map((t) => el('tr', { 'data-trunk': t.name }, el('td', { text: t.name }), el('td', { text: t.uri }),
          el('td', { class: t.up ? 'up' : 'down', text: t.up ? 'up' : 'down' }),
          el('td', { text: fmtTime(t.last_probe) }), el('td', { text: t.last_error }),
          el('td', { text: t.registration ? t.registration.state : '–' }),
          el('td', {}, el('ol', { class: 'history' }, ...(t.history || []).slice().reverse().map((h) =>
            el('li', { class: h.up ? 'up' : 'down', text: fmtTime(h.at) + ' ' + (h.up ? 'up' : 'down') }))))))));
    });
  }

  function bansPage(page) {
    const body = el('div');
    const addr = el('input', { name: 'addr', placeholder: '192.0.2.7 or 192.0.2.0/24', required: '' });
    const reason = el('input', { name: 'reason', placeholder: 'admin' });
    const dur = el('input', { name: 'duration', placeholder: '1h (empty: until removed)' });
    const form = el('form', { class: 'inline', id: 'ban-form' },
      el('label', { text: 'address' }, addr), el('label', { text: 'reason' }, reason),
      el('label', { text: 'duration' }, dur), el('button', { type: 'submit', text: 'Ban' }));
    let reload = () => {};
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('POST', '/api/v1/bans', { addr: addr.value.trim(), reason: reason.value.trim(), duration: dur.value.trim() });
        addr.value = ''; reason.value = ''; dur.value = '';
        reload();
      } catch (e) { if (!(e instanceof Unauthorized)) status(e.message); }
    });
    page.append(el('h2', { text: 'Bans' }), form, body);
    const remove = async (a) => {
      try { await api('DELETE', '/api/v1/bans/' + a); reload(); }
      catch (e) { if (!(e instanceof Unauthorized)) status(e.message); }
    };
    const load = async () => {
      const { bans } = await api('GET', '/api/v1/bans');
      body.replaceChildren(table('bans', ['address', 'reason', 'scope', 'since', 'until', 'evidence', ''],
        bans.map((b) => el('tr', { 'data-addr': b.addr }, el('td', { text: b.addr }), el('td', { text: b.reason }),
          el('td', { text: b.scope }), el('td', { text: fmtTime(b.since) }), el('td', { text: b.until ? fmtTime(b.until) : 'until removed' }),
          el('td', { text: String(b.evidence) }),
          el('td', {}, el('button', { type: 'button', class: 'unban', text: 'Remove', on: { click: () => remove(b.addr) } }))))));
    };
    reload = () => load().then(() => status(''), (e) => { if (!(e instanceof Unauthorized)) status(e.message); });
    every(5000, load);
  }

  function cdrsPage(page) {
    const body = el('div');
    const f = {};
    const input = (name, label, type) => { f[name] = el('input', { name, type: type || 'text' }); return el('label', { text: label }, f[name]); };
    const form = el('form', { class: 'inline', id: 'cdr-form' }, input('number', 'number'), input('call_id', 'Call-ID'),
      input('cause', 'cause or disposition'), input('since', 'since', 'datetime-local'), input('until', 'until', 'datetime-local'),
      el('button', { type: 'submit', text: 'Search' }));
    const search = async () => {
      const q = new URLSearchParams();
      for (const k of ['number', 'call_id', 'cause']) if (f[k].value.trim()) q.set(k, f[k].value.trim());
      for (const k of ['since', 'until']) if (f[k].value) q.set(k, new Date(f[k].value).toISOString());
      q.set('limit', '200');
      const { cdrs } = await api('GET', '/api/v1/cdrs?' + q);
      body.replaceChildren(cdrs.length ? table('cdrs', ['start', 'from', 'to', 'disposition', 'code', 'cause', 'side',
        'duration', 'codecs', 'MOS a→b', 'MOS b→a', 'Call-IDs'],
        cdrs.map((r) => el('tr', { 'data-cdr-id': r.id },
          el('td', {}, el('a', { href: '#call/' + encodeURIComponent(r.id), class: 'call-link', title: 'timeline', text: fmtTime(r.start_time) })),
          el('td', { text: r.from_uri }),
          el('td', { text: r.to_uri }), el('td', { text: r.disposition }), el('td', { text: String(r.sip_code) }),
          el('td', { text: r.hangup_cause }), el('td', { text: r.hangup_side }), el('td', { text: fmtDur(r.duration_s) }),
          el('td', { text: [r.a_codec, r.b_codec].filter(Boolean).join(' / ') }), mosCell(r.a_to_b_mos), mosCell(r.b_to_a_mos),
          el('td', { text: r.a_call_id + (r.b_call_id ? ' / ' + r.b_call_id : '') }))))
        : el('p', { class: 'empty', text: 'No record matches.' }));
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      search().then(() => status(''), (e) => { if (!(e instanceof Unauthorized)) status(e.message); });
    });
    page.append(el('h2', { text: 'Recent CDRs' }), form, body);
    every(10000, search);
  }

  const pages = { calls: callsPage, registrations: registrationsPage, trunks: trunksPage, bans: bansPage, cdrs: cdrsPage };

  function route() {
    if (!token) return;
    clearInterval(timer);
    status('');
    const hash = location.hash.replace(/^#/, '') || 'calls';
    const page = $('page');
    page.replaceChildren();
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.getAttribute('href') === '#' + hash.split('/')[0]);
    if (hash.startsWith('call/')) callPage(page, decodeURIComponent(hash.slice(5)));
    else (pages[hash] || callsPage)(page);
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', () => logout(''));
    window.addEventListener('hashchange', route);
    $('token').focus();
  });
})();
