// The vdisk web view: one event stream from the server (/web/events),
// the control API under /api for every change, nothing else. See the
// comment at the top of web/stream.go for the events.
'use strict';
(() => {
  const csrf = document.querySelector('meta[name="vdisk-csrf"]').content;
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const size = (n) => {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1 && n % 1024 === 0) { n /= 1024; i++; }
    return n + ' ' + u[i];
  };

  // ---- Messages: what the control API answered.
  function message(text, isError) {
    const m = el('div', { class: isError ? 'msg error' : 'msg ok' }, text);
    $('messages').prepend(m);
    while ($('messages').children.length > 3) $('messages').lastChild.remove();
    setTimeout(() => m.remove(), isError ? 15000 : 5000);
  }

  // ---- The control API, as the CLI calls it.
  async function api(method, path, body) {
    const opts = { method, headers: { 'X-Vdisk-CSRF': csrf }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch('/api' + path, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) throw new Error((data && data.error) || `${method} ${path}: ${resp.status} ${resp.statusText}`);
    return data;
  }
  async function act(label, method, path, body) {
    try {
      await api(method, path, body);
      message(label + ': done', false);
    } catch (e) {
      message(e.message, true); // the control API's errors say what failed and why
    }
  }

  // ---- Tabs.
  let tab = 'stacks';
  function showTab(name) {
    tab = name;
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === name);
    for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== 'tab-' + name;
    if (name === 'trace') renderTrace(paused);
    if (name === 'blocks') { refreshAllocation(true); drawMap(); }
    history.replaceState(null, '', '#' + name);
  }
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));

  // ---- Stacks: the server's SVG drawing (stackview), and a device's details.
  let state = null;
  let selected = '';
  function renderStack(svgText) {
    const doc = new DOMParser().parseFromString(svgText, 'image/svg+xml');
    const svg = document.importNode(doc.documentElement, true);
    $('stack-drawing').replaceChildren(svg);
    for (const g of svg.querySelectorAll('g.device')) {
      g.addEventListener('click', () => { selected = g.dataset.name; showDevice(); });
    }
  }
  function showDevice() {
    for (const g of document.querySelectorAll('#stack-drawing g.device')) g.classList.toggle('selected', g.dataset.name === selected);
    const d = state && state.stack.devices.find((x) => x.name === selected);
    const box = $('device-details');
    if (!d) { box.replaceChildren(el('h2', {}, 'Device'), el('p', { class: 'hint' }, 'Click a device in the drawing for its details.')); return; }
    const dl = el('dl');
    const add = (k, v) => { if (v !== undefined && v !== '' && v !== null) dl.append(el('dt', {}, k), el('dd', {}, String(v))); };
    add('Name', d.name); add('Driver', d.driver); add('Type', d.type); add('Flags', d.flags); add('Stack size', d.stack_size);
    add('Attached to', d.attached_to); add('Sends to', d.target);
    const above = state.stack.devices.filter((x) => x.attached_to === d.name).map((x) => x.name).join(', ');
    add('Attached above it', above);
    for (const m of d.minifilters || []) add('Minifilter', `${m.name} at altitude ${m.altitude}`);
    if (d.vpb) {
      add('VPB', d.vpb.mounted ? `mounted as ${d.vpb.volume_device}` : 'not mounted');
      if (d.vpb.mounted) { add('Label', d.vpb.label); add('Serial', d.vpb.serial); add('Open files', d.vpb.reference_count); add('VPB flags', d.vpb.flags); }
    }
    box.replaceChildren(el('h2', {}, 'Device'), dl);
  }

  // ---- Controls: volumes and filters, each action a control API call.
  function renderVolumes(volumes) {
    const body = $('volumes').tBodies[0];
    body.replaceChildren();
    for (const v of volumes) {
      const force = el('input', { type: 'checkbox', 'data-op': 'force', title: 'dismount even with files open (their handles then fail)' });
      const btn = (label, op, body) => el('button', {
        type: 'button', 'data-op': op,
        onclick: () => act(`${op} ${v.name}`, 'POST', `/v1/volumes/${encodeURIComponent(v.name)}/${op}`, body ? body() : undefined),
      }, label);
      const st = v.mounted ? `mounted: ${v.file_system || ''} "${v.label || ''}" ${v.serial || ''}` : 'not mounted';
      body.append(el('tr', { 'data-volume': v.name },
        el('td', { class: 'mono' }, v.name), el('td', { class: 'mono' }, v.device), el('td', {}, size(v.size)),
        el('td', { class: 'state' }, st), el('td', {}, String(v.references)), el('td', {}, v.locked ? 'yes' : 'no'),
        el('td', {}, String(v.export_writers)),
        el('td', { class: 'actions' }, btn('Mount', 'mount'), btn('Dismount', 'dismount', () => ({ force: force.checked })),
          el('label', {}, force, 'force'), ' ', btn('Lock', 'lock'), btn('Unlock', 'unlock'))));
    }
  }
  function renderFilters(filters) {
    const body = $('filters').tBodies[0];
    body.replaceChildren();
    for (const f of filters) {
      const where = (f.devices || []).map((d) => d.on).concat(f.volumes || []).join(', ');
      body.append(el('tr', { 'data-filter': f.id },
        el('td', { class: 'mono' }, f.id), el('td', { class: 'mono' }, f.spec), el('td', {}, f.kind), el('td', {}, f.altitude || ''),
        el('td', { class: 'mono' }, where),
        el('td', { class: 'actions' }, el('button', {
          type: 'button', 'data-op': 'detach',
          onclick: () => act(`detach ${f.id}`, 'DELETE', `/v1/filters/${encodeURIComponent(f.id)}`),
        }, 'Detach'))));
    }
  }
  let filterKinds = [];
  function setupAttach(kinds) {
    filterKinds = kinds;
    const sel = $('af-name');
    sel.replaceChildren(...kinds.map((k) => el('option', { value: k.name }, `${k.name} (${k.kind})`)));
    sel.addEventListener('change', attachParams);
    attachParams();
  }
  function attachParams() {
    const k = filterKinds.find((x) => x.name === $('af-name').value);
    if (!k) return;
    $('af-params').replaceChildren(...(k.params || []).map((p) => el('label', {}, p + '=', el('input', { 'data-param': p, oninput: attachSpec }))));
    $('af-help').textContent = k.help;
    attachSpec();
  }
  function attachSpec() {
    const parts = [];
    for (const i of document.querySelectorAll('#af-params input')) if (i.value !== '') parts.push(`${i.dataset.param}=${i.value}`);
    const spec = $('af-name').value + (parts.length ? ':' + parts.join(',') : '');
    $('af-spec').textContent = spec;
    return spec;
  }
  $('attach-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const spec = attachSpec();
    act(`attach ${spec}`, 'POST', '/v1/filters', { spec });
  });

  function onState(st) {
    const redraw = !state || state.svg !== st.svg;
    state = st;
    if (redraw) renderStack(st.svg);
    showDevice();
    renderVolumes(st.volumes);
    renderFilters(st.filters);
  }

  // ---- Trace: a bounded table, newest first, rendered a few times a second.
  // Live, it shows the newest rows that fit its window; paused, all it
  // holds (MAX_ROWS), to scroll through.
  const MAX_ROWS = 500;
  const liveRows = () => Math.max(20, Math.ceil(document.querySelector('#tab-trace .table-wrap').clientHeight / 20) + 2);
  let strings = [];
  let rows = []; // oldest first: {r: record} or {g: gap}
  let paused = false;
  let newWhilePaused = 0;
  let renderTimer = 0;
  let lastRender = 0;
  const seenOps = new Set();
  const seenRequestors = new Set();
  // What tests and the benchmark read: records received, and how far
  // behind the server the table was when it showed them.
  const stats = { records: 0, batches: 0, renders: 0, lagMs: 0, maxLagMs: 0, lags: [], newestSeq: 0 };
  window.vdiskStats = stats;

  function onTrace(ev) {
    for (const s of ev.strings) strings.push(s);
    const str = (v) => (typeof v === 'number' ? strings[v] : v);
    for (const g of ev.gaps) rows.push({ g });
    for (const r of ev.records) {
      for (const i of [2, 3, 4, 5, 6, 9]) r[i] = str(r[i]);
      rows.push({ r });
      if (seenOps.size < 200 && !seenOps.has(r[4])) { seenOps.add(r[4]); $('ops').append(el('option', { value: r[4] })); }
      if (seenRequestors.size < 200 && !seenRequestors.has(r[2])) { seenRequestors.add(r[2]); $('requestors').append(el('option', { value: r[2] })); }
    }
    if (rows.length > MAX_ROWS) rows.splice(0, rows.length - MAX_ROWS);
    stats.records += ev.records.length;
    stats.batches++;
    if (ev.records.length) stats.newestSeq = ev.records[ev.records.length - 1][0];
    if (paused) {
      newWhilePaused += ev.records.length;
      $('pause').textContent = `Resume (${newWhilePaused} new)`;
      return;
    }
    scheduleRender();
  }
  function scheduleRender() {
    if (renderTimer) return;
    const wait = Math.max(0, 400 - (performance.now() - lastRender)); // two or three renders a second: as fast as anyone reads, and each costs the browser a frame
    renderTimer = setTimeout(() => { renderTimer = 0; requestAnimationFrame(() => renderTrace(false)); }, wait);
  }
  const pad = (n, w) => String(n).padStart(w, '0');
  function fmtTime(us) {
    const d = new Date(Math.floor(us / 1000));
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(us % 1000000, 6)}`;
  }
  function fmtDur(ns) {
    if (ns < 1000) return ns + ' ns';
    if (ns < 1000000) return (ns / 1000).toFixed(1) + ' µs';
    return (ns / 1000000).toFixed(2) + ' ms';
  }
  const tbody = $('trace').tBodies[0];
  // Each render writes only what changed: a cell's text node's data, and
  // a row's class and shape only when they differ (every write of an
  // attribute makes the browser recompute styles).
  function setText(cell, s) {
    const t = cell.firstChild;
    if (!t) cell.append(s);
    else if (t.data !== s) t.data = s;
  }
  function setClass(e, c) { if (e.className !== c) e.className = c; }
  function shape(tr, gap) {
    if (tr.gapShape === gap) return;
    tr.gapShape = gap;
    tr.cells[0].colSpan = gap ? 8 : 1;
    for (let j = 1; j < 8; j++) tr.cells[j].hidden = gap;
  }
  function renderTrace(all) {
    lastRender = performance.now();
    if ((paused && !all) || tab !== 'trace') return;
    const n = all ? rows.length : Math.min(rows.length, liveRows());
    while (tbody.rows.length < n) {
      const tr = tbody.insertRow();
      for (let i = 0; i < 8; i++) tr.insertCell();
      tr.gapShape = false;
    }
    while (tbody.rows.length > n) tbody.deleteRow(-1);
    let newest = null;
    for (let i = 0; i < n; i++) {
      const row = rows[rows.length - 1 - i];
      const tr = tbody.rows[i];
      const c = tr.cells;
      if (row.g) {
        const [from, to, why, count] = row.g;
        setClass(tr, 'gap ' + why);
        shape(tr, true);
        setText(c[0], why === 'dropped'
          ? `⋯ ${count} records dropped by the server's ring (seq ${from}–${to - 1}): the reader fell behind`
          : `⋯ ${count} matching records not shown (seq ${from}–${to - 1}): more than the page shows per update`);
        continue;
      }
      const r = row.r;
      if (!newest) newest = r;
      shape(tr, false);
      const op = r[4];
      setClass(tr, op.includes('WRITE') ? 'write' : op.includes('READ') ? 'read' : '');
      setText(c[0], String(r[0]));
      setText(c[1], fmtTime(r[1]));
      setText(c[2], r[2]);
      setText(c[3], r[3]);
      setText(c[4], op);
      setText(c[5], (r[7] || r[8]) ? `${r[6]} offset ${r[7]} length ${r[8]}` : r[6]);
      if (c[5].title !== r[5]) c[5].title = r[5];
      setText(c[6], r[9]);
      setClass(c[6], r[9] === 'STATUS_SUCCESS' ? '' : 'bad');
      setText(c[7], fmtDur(r[10]));
    }
    stats.renders++;
    if (newest) {
      stats.lagMs = Date.now() - newest[1] / 1000;
      stats.maxLagMs = Math.max(stats.maxLagMs, stats.lagMs);
      stats.lags.push(stats.lagMs);
      if (stats.lags.length > 2000) stats.lags.shift();
    }
    $('trace-info').textContent = `${n} of ${rows.length} rows shown (` + (all ? 'paused' : `the newest; pause to see up to ${MAX_ROWS}`) +
      `), ${stats.records} records received`;
  }
  $('pause').addEventListener('click', () => {
    paused = !paused;
    newWhilePaused = 0;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    $('pause').classList.toggle('paused', paused);
    renderTrace(paused); // paused: every row held, once
  });
  let filterTimer = 0;
  function filtersChanged() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { rows = []; renderTrace(paused); connect(0); }, 300);
  }
  for (const id of ['f-q', 'f-op', 'f-requestor']) $(id).addEventListener('input', filtersChanged);
  $('f-status').addEventListener('change', filtersChanged);
  $('f-clear').addEventListener('click', () => {
    for (const id of ['f-q', 'f-op', 'f-requestor', 'f-status']) $(id).value = '';
    filtersChanged();
  });

  // ---- Block map: one canvas per export, cells coloured by recent activity.
  const KINDS = ['read', 'write', 'trim', 'zero'];
  const KIND_RGB = [[31, 119, 180], [214, 39, 40], [44, 160, 44], [148, 103, 189]];
  const ALLOC = { h: ['hole (sparse)', [246, 246, 246]], d: ['allocated', [196, 202, 212]], z: ['allocated, zeroes', [226, 230, 240]], m: ['partly allocated', [214, 218, 226]], '?': ['unknown', [236, 236, 236]] };
  const FADE_MS = 4000;
  const maps = new Map();
  let current = '';
  function setupMaps(exports) {
    for (const x of exports) {
      if (!maps.has(x.export)) {
        maps.set(x.export, { info: x, last: new Float64Array(x.cells * 4).fill(-1e12), alloc: '', allocAt: 0, changed: true });
      }
    }
    const sel = $('bm-export');
    if (!sel.options.length) {
      sel.replaceChildren(...exports.map((x) => el('option', { value: x.export }, `${x.export} (${size(x.size)})`)));
      current = exports.length ? exports[0].export : '';
      sel.addEventListener('change', () => { current = sel.value; refreshAllocation(true); drawMap(); });
    }
  }
  function onBlocks(ev) {
    const now = performance.now();
    for (const [name, kinds] of Object.entries(ev)) {
      const m = maps.get(name);
      if (!m) continue;
      kinds.forEach((runs, k) => {
        for (let i = 0; i < runs.length; i += 2) {
          for (let c = runs[i]; c < runs[i] + runs[i + 1]; c++) m.last[c * 4 + k] = now;
        }
        if (k !== 0 && runs.length) m.changed = true;
      });
    }
  }
  async function refreshAllocation(force) {
    const m = maps.get(current);
    if (!m || tab !== 'blocks') return;
    if (!force && (!m.changed || performance.now() - m.allocAt < 2000)) return;
    m.changed = false;
    m.allocAt = performance.now();
    try {
      const resp = await fetch('/web/allocation?export=' + encodeURIComponent(current), { credentials: 'same-origin' });
      const a = await resp.json();
      if (!resp.ok) throw new Error(a.error);
      m.alloc = a.cells;
    } catch (e) {
      message('block status of ' + current + ': ' + e.message, true);
    }
  }
  function geometry(m) {
    const cells = m.info.cells;
    const cols = Math.min(128, cells);
    const width = Math.max(400, Math.min(document.documentElement.clientWidth - 60, 1400));
    const px = Math.max(3, Math.min(16, Math.floor(width / cols)));
    return { cols, rows: Math.ceil(cells / cols), px };
  }
  // cellRect is where cell i is drawn on the canvas: tests read its pixels.
  function cellRect(m, i) {
    const g = geometry(m);
    return { x: (i % g.cols) * g.px, y: Math.floor(i / g.cols) * g.px, w: g.px - 1, h: g.px - 1 };
  }
  function drawMap() {
    const m = maps.get(current);
    if (!m || tab !== 'blocks') return;
    const g = geometry(m);
    const cv = $('bm-canvas');
    if (cv.width !== g.cols * g.px || cv.height !== g.rows * g.px) { cv.width = g.cols * g.px; cv.height = g.rows * g.px; }
    const ctx = cv.getContext('2d');
    const img = ctx.createImageData(cv.width, cv.height);
    const px = img.data;
    const now = performance.now();
    for (let i = 0; i < m.info.cells; i++) {
      let [r, gg, b] = (ALLOC[m.alloc[i] || '?'])[1];
      let k = -1;
      let t = -1e12;
      for (let j = 0; j < 4; j++) if (m.last[i * 4 + j] > t) { t = m.last[i * 4 + j]; k = j; }
      const age = now - t;
      if (k >= 0 && age < FADE_MS) {
        const a = 1 - age / FADE_MS * 0.75; // fades to a quarter, then goes
        const c = KIND_RGB[k];
        r = r * (1 - a) + c[0] * a; gg = gg * (1 - a) + c[1] * a; b = b * (1 - a) + c[2] * a;
      }
      const x0 = (i % g.cols) * g.px;
      const y0 = Math.floor(i / g.cols) * g.px;
      for (let y = y0; y < y0 + g.px - 1; y++) {
        let o = (y * cv.width + x0) * 4;
        for (let x = 0; x < g.px - 1; x++, o += 4) { px[o] = r; px[o + 1] = gg; px[o + 2] = b; px[o + 3] = 255; }
      }
    }
    ctx.putImageData(img, 0, 0);
    // Partition boundaries: a bar at the first cell of each partition and
    // after its last.
    ctx.fillStyle = '#111';
    ctx.font = '10px sans-serif';
    for (const p of m.info.partitions) {
      for (const [off, label] of [[p.start, 'p' + p.number], [p.start + p.size, '']]) {
        const c = Math.floor(off / m.info.cell_size);
        if (c >= m.info.cells && label === '') continue;
        const x = (c % g.cols) * g.px;
        const y = Math.floor(c / g.cols) * g.px;
        ctx.fillRect(Math.max(0, x - 1), y, 2, g.px);
        if (label && g.px >= 8) ctx.fillText(label, x + 2, y + g.px - 2);
      }
    }
    const counts = {};
    for (const ch of m.alloc) counts[ch] = (counts[ch] || 0) + 1;
    $('bm-info').textContent = `${m.info.cells} cells of ${size(m.info.cell_size)}; ` +
      Object.entries(counts).map(([ch, n]) => `${n} ${ALLOC[ch][0]}`).join(', ');
    window.vdiskBlockmap = { export: current, cells: m.info.cells, cellSize: m.info.cell_size, partitions: m.info.partitions, alloc: m.alloc, cellRect: (i) => cellRect(m, i) };
  }
  function legend() {
    const items = [];
    KINDS.forEach((k, i) => items.push([`recent ${k}`, KIND_RGB[i]]));
    for (const ch of ['d', 'z', 'h', 'm']) items.push([ALLOC[ch][0], ALLOC[ch][1]]);
    $('bm-legend').replaceChildren(...items.map(([label, c]) => {
      const sw = el('span', { class: 'sw' });
      sw.style.background = `rgb(${c.join(',')})`; // CSSOM, which a style-src policy allows
      return el('span', {}, sw, label);
    }), el('span', {}, el('span', { class: 'sw sw-part' }), 'partition boundary (bar, with its number)'));
    document.querySelector('#bm-legend .sw-part').style.background = '#111';
  }
  legend();
  $('bm-canvas').addEventListener('mousemove', (e) => {
    const m = maps.get(current);
    if (!m) return;
    const g = geometry(m);
    const rect = $('bm-canvas').getBoundingClientRect();
    const i = Math.floor((e.clientY - rect.top) / g.px) * g.cols + Math.floor((e.clientX - rect.left) / g.px);
    if (i < 0 || i >= m.info.cells) return;
    const off = i * m.info.cell_size;
    const part = m.info.partitions.find((p) => off >= p.start && off < p.start + p.size);
    const ages = KINDS.map((k, j) => [k, performance.now() - m.last[i * 4 + j]]).filter(([, a]) => a < 60000)
      .map(([k, a]) => `${k} ${(a / 1000).toFixed(1)} s ago`);
    $('bm-hover').textContent = `cell ${i}: offset ${off}–${off + m.info.cell_size - 1}` + (part ? ` (${part.export})` : '') +
      `, ${(ALLOC[m.alloc[i] || '?'])[0]}` + (ages.length ? '; ' + ages.join(', ') : '');
  });
  setInterval(() => { if (tab === 'blocks') { drawMap(); refreshAllocation(false); } }, 200);

  // ---- The event stream. Each stream has its own string table, so a new
  // one starts the table afresh.
  let es = null;
  let next = 0;
  let retry = 0;
  function connect(from) {
    if (es) es.close();
    clearTimeout(retry);
    strings = [];
    const p = new URLSearchParams();
    for (const [k, id] of [['q', 'f-q'], ['op', 'f-op'], ['status', 'f-status'], ['requestor', 'f-requestor']]) {
      if ($(id).value) p.set(k, $(id).value);
    }
    if (from !== undefined) p.set('from', from);
    const src = new EventSource('/web/events?' + p);
    es = src;
    src.addEventListener('hello', (e) => {
      const h = JSON.parse(e.data);
      if (!filterKinds.length) setupAttach(h.filters);
      setupMaps(h.exports);
      $('conn').textContent = 'live';
      $('conn').classList.remove('down');
    });
    src.addEventListener('state', (e) => onState(JSON.parse(e.data)));
    src.addEventListener('trace', (e) => { const t = JSON.parse(e.data); next = t.next; onTrace(t); });
    src.addEventListener('blocks', (e) => onBlocks(JSON.parse(e.data)));
    src.onerror = () => {
      // Reconnect ourselves, from where the stream was, with a new table.
      src.close();
      if (es !== src) return;
      $('conn').textContent = 'disconnected: retrying';
      $('conn').classList.add('down');
      retry = setTimeout(() => connect(next || undefined), 2000);
    };
  }
  connect();
  showTab((location.hash || '#stacks').slice(1) in { stacks: 1, trace: 1, blocks: 1, controls: 1 } ? location.hash.slice(1) || 'stacks' : 'stacks');
})();
