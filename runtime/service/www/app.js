// app.js - the staff worklist (GET / of regimen serve; docs/service.md).
//
// Signs in with clinic, user and password (POST /v1/session), then runs on
// the session cookie the service set (HttpOnly: this script never sees it),
// sending the session's csrf value in X-CSRF-Token with every request that
// changes something; the csrf value and who is signed in are kept in
// sessionStorage (this tab only). Lists the open alerts by severity then due
// time, acks and snoozes them (recorded as the signed-in user), shows an
// alert's history, its `explain` text and its patient's timeline, and
// follows the transition stream (an EventSource sends the cookie). Everything that came from a protocol or a clinic is put
// into the page as text (textContent), never parsed as HTML; the one SVG the
// service draws is parsed as SVG and filtered to drawing elements.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const SESSION = 'regimen.session';
  const RANK = { critical: 0, warning: 1, info: 2 };
  const st = {
    me: null, alerts: [], selected: null, es: null, after: null,
    retry: null, refresh: null, poll: null, tab: 'history',
  };

  // ---- small helpers --------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function show(node, on) { node.hidden = !on; }

  function say(node, msg) { node.textContent = msg || ''; show(node, !!msg); }

  // "2026-03-02T14:05:00-05:00" -> "2026-03-02 14:05 -05:00"; UTC says so.
  function fmt(t) {
    if (!t) return '';
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.exec(t);
    if (!m) return String(t);
    return m[1] + ' ' + m[2] + ' ' + (m[3] === 'Z' ? 'UTC' : m[3]);
  }

  // The clinic's local form when the service gives one, else UTC.
  const dueOf = (a) => fmt(a.due_local || a.due);
  const openedOf = (a) => fmt(a.opened_at_local || a.at_local || a.opened_at);
  const atOf = (x) => fmt(x.at_local || x.at);
  const notifyOf = (x) => fmt(x.notify_at_local || x.notify_at);

  function stateOf(a) {
    if (a.state !== 'open') return 'resolved ' + fmt(a.resolved_at_local || a.resolved_at);
    const parts = [];
    if (a.acknowledged_by) parts.push('acknowledged by ' + a.acknowledged_by);
    if (a.snoozed_until && Date.parse(a.snoozed_until) > Date.now())
      parts.push('snoozed until ' + fmt(a.snoozed_until_local || a.snoozed_until));
    return parts.length ? parts.join(', ') : 'open';
  }

  class Unauthorized extends Error {}

  // A request with the session cookie (and, unless it only reads, the csrf
  // value); JSON answers parsed. 401 signs out.
  async function api(method, path, body, as) {
    const headers = {};
    if (method !== 'GET' && st.me) headers['X-CSRF-Token'] = st.me.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method, headers, cache: 'no-store', credentials: 'same-origin', referrerPolicy: 'no-referrer',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error('the service could not be reached (' + e.message + ')');
    }
    if (r.status === 401 && path !== '/v1/session') throw new Unauthorized('session ended');
    const text = await r.text();
    if (as === 'text' && r.ok) return text;
    let j = null;
    try { j = JSON.parse(text); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error((j && j.error) || ('HTTP ' + r.status));
    return j;
  }

  // Every alert of a query: GET /v1/alerts answers a page at a time and
  // names the next page's cursor until the last.
  async function allAlerts(query) {
    const out = [];
    let cursor = null;
    for (let pages = 0; pages < 10000; pages++) {
      const d = await api('GET', '/v1/alerts?' + query + '&limit=1000' +
        (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      out.push(...d.alerts);
      if (!d.next) break;
      cursor = d.next;
    }
    return out;
  }

  function failed(e, where) {
    if (e instanceof Unauthorized) {
      signOut('Your session has ended. Sign in again.');
      return;
    }
    say(where || $('work-error'), String(e.message || e));
  }

  // ---- sign in / out --------------------------------------------------------

  // With clinic, user and password: a new session. Without (a reload of the
  // page): the session this tab already has, if the service still knows it.
  async function signIn(creds) {
    say($('signin-error'), '');
    try {
      if (creds) st.me = await api('POST', '/v1/session', creds);
      st.alerts = await allAlerts('state=open');
    } catch (e) {
      st.me = null;
      sessionStorage.removeItem(SESSION);
      say($('signin-error'), e instanceof Unauthorized
        ? 'Your session has ended. Sign in again.'
        : 'Could not sign in: ' + e.message);
      return;
    }
    sessionStorage.setItem(SESSION, JSON.stringify(st.me));
    $('password').value = '';
    $('clinic').textContent = 'clinic ' + st.me.clinic;
    $('me').textContent = st.me.user + ' (' + st.me.role + ')';
    show($('signin'), false);
    show($('work'), true);
    show($('signout'), true);
    render();
    shadowView().catch((e) => failed(e));
    stream();
    clearInterval(st.poll); // acks by colleagues show within half a minute
    st.poll = setInterval(() => refresh(), 30000);
  }

  function signOut(msg, tell) {
    if (tell && st.me) api('DELETE', '/v1/session').catch(() => {}); // the cookie ends too
    sessionStorage.removeItem(SESSION);
    st.me = null;
    if (st.es) st.es.close();
    st.es = null;
    clearTimeout(st.retry);
    clearInterval(st.poll);
    st.alerts = [];
    st.selected = null;
    show($('work'), false);
    show($('detail'), false);
    show($('signout'), false);
    show($('live'), false);
    $('clinic').textContent = '';
    $('me').textContent = '';
    show($('signin'), true);
    say($('signin-error'), msg || '');
  }

  // ---- the live stream --------------------------------------------------------

  function live(text, ok) {
    const l = $('live');
    l.textContent = text;
    l.className = 'live' + (ok ? ' on' : '');
    show(l, true);
  }

  // The stream runs on the session cookie; on any error it is opened again
  // from the last event seen, once the session is known to be alive (a 401
  // there signs out: an ended session ends its stream too).
  async function stream() {
    if (st.es) st.es.close();
    st.es = null;
    clearTimeout(st.retry);
    if (!st.me) return;
    let url = '/v1/transitions/stream';
    if (st.after !== null) url += '?after=' + encodeURIComponent(st.after);
    const es = new EventSource(url);
    st.es = es;
    es.addEventListener('open', () => { live('live', true); refresh(); });
    es.addEventListener('transition', (ev) => {
      if (ev.lastEventId) st.after = ev.lastEventId;
      clearTimeout(st.refresh); // a burst of transitions: one reload
      st.refresh = setTimeout(refresh, 50);
    });
    es.addEventListener('error', () => {
      if (st.es !== es) return;
      es.close(); // reopened from the last event seen, not from where it began
      st.es = null;
      live('reconnecting…', false);
      st.retry = setTimeout(() => refresh().then(stream), 1000);
    });
  }

  async function refresh() {
    if (!st.me) return;
    try {
      st.alerts = await allAlerts('state=open');
      say($('work-error'), '');
      render();
      if (st.selected) await detail(st.selected, true);
      await shadowView();
    } catch (e) { failed(e); }
  }

  // The clinic's shadow version and what it did beside the active one
  // (GET /v1/protocols/shadow), for prescribers and admins.
  async function shadowView() {
    if (!st.me || (st.me.role !== 'admin' && st.me.role !== 'prescriber')) return;
    const d = await api('GET', '/v1/protocols/shadow');
    const sh = d && d.shadow;
    show($('shadow'), !!sh);
    if (!sh) return;
    let opened = 0, notOpened = 0;
    for (const r of sh.rules) { opened += r.opened_only_by_shadow; notOpened += r.opened_only_by_active; }
    $('shadow-sum').textContent = 'Since ' + fmt(sh.since) + ', version ' + sh.version.slice(0, 12) +
      ' (set by ' + sh.set_by + ') would have opened ' + opened + ' alert' + (opened === 1 ? '' : 's') +
      ' the active version did not, and not opened ' + notOpened + ' that it did (' +
      sh.differences + ' difference' + (sh.differences === 1 ? '' : 's') + ' in all). ' +
      'It notifies nobody.';
    $('shadow-report').textContent = sh.report;
  }

  // ---- the list ---------------------------------------------------------------

  function sorted(list) {
    const rank = (a) => (a.severity in RANK ? RANK[a.severity] : 3);
    const due = (a) => { const t = Date.parse(a.due); return isNaN(t) ? Infinity : t; };
    return list.slice().sort((a, b) => rank(a) - rank(b) || due(a) - due(b) ||
      (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  function fillRules() {
    const sel = $('f-rule'), keep = sel.value;
    const rules = [...new Set(st.alerts.map((a) => a.rule))].sort();
    while (sel.options.length > 1) sel.remove(1);
    for (const r of rules) {
      const o = el('option', null, r);
      o.value = r;
      sel.appendChild(o);
    }
    sel.value = rules.includes(keep) ? keep : '';
  }

  function cell(tr, label, text, cls) {
    const td = el('td', cls, text);
    td.dataset.label = label;
    tr.appendChild(td);
    return td;
  }

  function render() {
    fillRules();
    const pf = $('f-patient').value.trim().toLowerCase(), rf = $('f-rule').value;
    const shown = sorted(st.alerts).filter((a) =>
      (!pf || a.patient.toLowerCase().includes(pf)) && (!rf || a.rule === rf));
    const body = $('alerts').tBodies[0];
    body.replaceChildren();
    for (const a of shown) {
      const tr = el('tr', 'item' + (a.quiet ? ' quiet' : '') + (a.key === st.selected ? ' sel' : ''));
      tr.dataset.key = a.key;
      tr.tabIndex = 0;
      const sev = cell(tr, 'Severity', '');
      sev.appendChild(el('span', 'sev sev-' + (a.severity in RANK ? a.severity : 'other'), a.severity));
      const due = cell(tr, 'Due', dueOf(a), 'when');
      if (a.notify_at && a.notify_at !== a.due) due.appendChild(el('small', 'notify', 'notify ' + notifyOf(a)));
      cell(tr, 'Patient', a.patient || '(clinic)', 'patient'); // "": a system alert of the clinic's
      cell(tr, 'Rule', a.rule, 'rule');
      cell(tr, 'Message', a.message, 'msg');
      cell(tr, 'State', stateOf(a), 'state');
      tr.addEventListener('click', () => detail(a.key));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') detail(a.key); });
      body.appendChild(tr);
    }
    show($('empty'), shown.length === 0);
    $('empty').textContent = st.alerts.length ? 'No open alert matches the filters.' : 'No open alerts.';
    $('count').textContent = shown.length + ' of ' + st.alerts.length + ' open';
  }

  // ---- one alert ----------------------------------------------------------------

  function fact(dl, name, value) {
    if (!value) return;
    dl.appendChild(el('dt', null, name));
    dl.appendChild(el('dd', null, value));
  }

  async function detail(key, quietly) {
    st.selected = key;
    for (const tr of $('alerts').tBodies[0].rows) tr.classList.toggle('sel', tr.dataset.key === key);
    let d;
    try {
      d = await api('GET', '/v1/alerts/' + encodeURIComponent(key));
    } catch (e) { return failed(e, $('d-error')); }
    if (st.selected !== key) return;
    const a = d.alerts.find((x) => x.state === 'open') || d.alerts[d.alerts.length - 1];
    show($('detail'), true);
    say($('d-error'), '');
    $('d-title').textContent = a.rule + ' · ' + (a.patient || '(clinic)');
    $('d-message').textContent = a.message;
    const dl = $('d-facts');
    dl.replaceChildren();
    fact(dl, 'Severity', a.severity);
    fact(dl, 'Due', dueOf(a));
    if (a.notify_at) fact(dl, 'Notify at', notifyOf(a));
    fact(dl, 'Opened', openedOf(a));
    fact(dl, 'State', stateOf(a));
    fact(dl, 'Protocol', a.protocol + ' ' + a.version);
    fact(dl, 'Key', a.key);
    const open = a.state === 'open';
    for (const f of [$('ack-form'), $('snooze-form')]) {
      show(f, open);
      if (!quietly) f.reset();
    }
    if (!quietly) $('snooze-form').until.value = localInput(Date.now() + 3600e3);
    history(d);
    // one column (a phone): the details are under the list, bring them up
    if (!quietly && window.matchMedia('(max-width: 1000px)').matches) $('detail').scrollIntoView({ block: 'start' });
    if (!quietly) tab(st.tab);
    else if (st.tab !== 'history') tab(st.tab);
  }

  function history(d) {
    const items = [];
    for (const t of d.transitions) {
      items.push({ at: t.at, text: atOf(t) + ' — ' + (t.state === 'open' ? 'opened (' + t.severity + '): ' + t.message : t.state === 'reraised' ? 're-raised (snooze expired)' : 'resolved') +
        (t.notify_at ? ' — notify ' + notifyOf(t) : '') + (t.cause ? ' — caused by ' + t.cause : '') });
    }
    for (const x of d.actions) {
      let text = atOf(x) + ' — ' + (x.action === 'ack' ? 'acknowledged' : x.action === 'snooze' ? 'snoozed' : x.action) +
        ' by ' + x.who;
      if (x.until) text += ' until ' + fmt(x.until_local || x.until);
      if (x.note) text += ': ' + x.note;
      items.push({ at: x.at, text });
    }
    // the notification policy's attempts (docs/notifications.md)
    for (const n of d.notifications || []) {
      const outcome = { sent: 'notified', failed: 'notifying failed', retried: 'notifying failed, retried',
        suppressed: 'held back', stopped: 'escalation stopped' }[n.outcome] || n.outcome;
      let text = atOf(n) + ' — ' + outcome + ': ' + n.receiver + (n.on_call ? ' (on call: ' + n.on_call + ')' : '') +
        ' by ' + n.receiver_kind + ', step ' + n.step + (n.round ? ' round ' + n.round : '');
      if (n.alerts) text += ', with ' + (n.alerts - 1) + ' more alert' + (n.alerts > 2 ? 's' : '');
      if (n.reason) text += ' (' + n.reason + ')';
      items.push({ at: n.at, text });
    }
    items.sort((p, q) => Date.parse(p.at) - Date.parse(q.at));
    const ol = $('history');
    ol.replaceChildren(...items.map((i) => el('li', null, i.text)));
    if (!items.length) ol.appendChild(el('li', 'empty', 'Nothing recorded yet.'));
  }

  function tab(name) {
    st.tab = name;
    for (const b of document.querySelectorAll('.tab')) b.classList.toggle('on', b.dataset.tab === name);
    for (const n of ['history', 'explain', 'patient']) show($('t-' + n), n === name);
    const a = st.alerts.find((x) => x.key === st.selected);
    if (name === 'explain') explain(st.selected);
    if (name === 'patient' && a) patient(a.patient);
    else if (name === 'patient') patientOfSelected();
  }

  async function patientOfSelected() {
    try {
      const d = await api('GET', '/v1/alerts/' + encodeURIComponent(st.selected));
      if (d.alerts.length) patient(d.alerts[0].patient);
    } catch (e) { failed(e, $('d-error')); }
  }

  async function explain(key) {
    try {
      const text = await api('GET', '/v1/alerts/' + encodeURIComponent(key) + '/explain', undefined, 'text');
      if (st.selected === key) $('explain').textContent = text;
    } catch (e) { failed(e, $('d-error')); }
  }

  // The service's SVG, parsed as SVG (no script runs in a parsed document)
  // and kept to drawing elements and plain attributes before it is shown.
  const SVG_TAGS = new Set(['svg', 'g', 'line', 'circle', 'rect', 'text', 'title']);
  const SVG_ATTRS = new Set(['xmlns', 'class', 'width', 'height', 'viewBox', 'x', 'y', 'x1', 'x2', 'y1', 'y2',
    'cx', 'cy', 'r', 'rx', 'transform', 'text-anchor']);
  function cleanSvg(node) {
    for (const child of [...node.children]) {
      if (!SVG_TAGS.has(child.localName)) { child.remove(); continue; }
      for (const at of [...child.attributes]) if (!SVG_ATTRS.has(at.name)) child.removeAttribute(at.name);
      cleanSvg(child);
    }
  }

  async function patient(id) {
    const box = $('timeline');
    if (!id) { // a system alert of the clinic's belongs to no patient
      $('p-title').textContent = 'No patient: an alert of the clinic itself';
      box.replaceChildren();
      return;
    }
    $('p-title').textContent = 'Patient ' + id;
    try {
      const [svg, all] = await Promise.all([
        api('GET', '/v1/patients/' + encodeURIComponent(id) + '/timeline', undefined, 'text'),
        allAlerts('patient=' + encodeURIComponent(id)).then((alerts) => ({ alerts })),
      ]);
      const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
      const root = doc.documentElement;
      box.replaceChildren();
      if (root.localName === 'svg' && !doc.querySelector('parsererror')) {
        const holder = doc.createElementNS('http://www.w3.org/2000/svg', 'g');
        holder.appendChild(root.cloneNode(true));
        cleanSvg(holder);
        box.appendChild(document.importNode(holder.firstElementChild, true));
        box.scrollLeft = box.scrollWidth; // now is at the right end
      } else box.appendChild(el('p', 'error', 'The timeline could not be drawn.'));
      const tb = $('p-alerts');
      tb.replaceChildren();
      for (const a of all.alerts.slice().sort((p, q) => Date.parse(q.opened_at) - Date.parse(p.opened_at))) {
        const tr = el('tr');
        cell(tr, 'Opened', openedOf(a));
        cell(tr, 'Rule', a.rule);
        const s = cell(tr, 'Severity', '');
        s.appendChild(el('span', 'sev sev-' + (a.severity in RANK ? a.severity : 'other'), a.severity));
        cell(tr, 'State', stateOf(a));
        tb.appendChild(tr);
      }
    } catch (e) { failed(e, $('d-error')); }
  }

  // ---- ack, snooze ----------------------------------------------------------------

  function localInput(ms) { // a datetime-local value in the browser's zone
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  async function act(kind, form) {
    const key = st.selected;
    const body = {}; // recorded as the signed-in user
    if (kind === 'ack') body.note = form.note.value;
    else {
      const until = new Date(form.until.value);
      if (isNaN(until)) return say($('d-error'), 'Until must be a date and time.');
      body.until = until.toISOString();
      body.reason = form.reason.value;
    }
    try {
      await api('POST', '/v1/alerts/' + encodeURIComponent(key) + '/' + kind, body);
    } catch (e) { return failed(e, $('d-error')); }
    await refresh();
  }

  // ---- wiring -----------------------------------------------------------------------

  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target;
    const creds = { clinic: f.clinic.value.trim(), user: f.user.value.trim(), password: f.password.value };
    if (creds.clinic && creds.user && creds.password) signIn(creds);
  });
  $('signout').addEventListener('click', () => signOut('', true));
  $('f-patient').addEventListener('input', render);
  $('f-rule').addEventListener('change', render);
  $('d-close').addEventListener('click', () => {
    st.selected = null;
    show($('detail'), false);
    render();
  });
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => tab(b.dataset.tab));
  $('ack-form').addEventListener('submit', (e) => { e.preventDefault(); act('ack', e.target); });
  $('snooze-form').addEventListener('submit', (e) => { e.preventDefault(); act('snooze', e.target); });

  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(SESSION) || 'null'); } catch (e) { /* none */ }
  if (saved && saved.csrf) { st.me = saved; signIn(null); }
})();
