// check.js - the HTTP contract: docs/openapi.yaml is a valid OpenAPI 3.1
// document, and the real `regimen serve` answers every documented operation
// as the document says (status documented, content type, body valid against
// the response schema). Also runs `promtool check metrics` on /metrics.
//
// Run by make test (tests/contract/run.sh) as: node check.js REGIMEN_BIN
// It starts the real binary on a free loopback port with a temporary
// database, sends real requests, and fails (exit 1) naming each mismatch.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const net = require('net');
const http = require('http');
const { spawn, spawnSync, execFileSync } = require('child_process');
const crypto = require('crypto');
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats');
const { Validator } = require('@seriousme/openapi-schema-validator');

const root = path.resolve(__dirname, '..', '..');
const bin = path.resolve(process.argv[2] || path.join(root, 'build', 'regimen'));
const specFile = path.join(root, 'docs', 'openapi.yaml');
const failures = [];
const fail = (msg) => { failures.push(msg); console.log('  FAIL ' + msg); };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function request(port, method, p, { token, body, headers = {}, stream } = {}) {
  return new Promise((resolve, reject) => {
    const h = Object.assign({}, headers);
    if (token) h.Authorization = 'Bearer ' + token;
    const data = body === undefined ? null : (typeof body === 'string' ? body : JSON.stringify(body));
    if (data !== null) { h['Content-Type'] = 'application/json'; h['Content-Length'] = Buffer.byteLength(data); }
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: h }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        text += c;
        // a stream stays open: stop once `stream` SSE events have arrived
        if (stream && (text.match(/\n\n/g) || []).length >= stream) { req.destroy(); done(); }
      });
      let finished = false;
      const done = () => { if (!finished) { finished = true; resolve({ status: res.statusCode, type: res.headers['content-type'] || '', text, headers: res.headers }); } };
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', (e) => (stream ? null : reject(e)));
    req.setTimeout(10000, () => { req.destroy(new Error(`${method} ${p}: no answer in 10 s`)); });
    if (data !== null) req.write(data);
    req.end();
  });
}

// The operation's response object for a status, $refs of components followed.
function responseOf(spec, tmpl, method, status) {
  const op = spec.paths[tmpl] && spec.paths[tmpl][method.toLowerCase()];
  if (!op) return null;
  let r = op.responses[String(status)];
  if (r && r.$ref) r = r.$ref.split('/').slice(1).reduce((o, k) => o[k], spec);
  return r || null;
}

async function main() {
  const specText = fs.readFileSync(specFile, 'utf8');
  const spec = YAML.parse(specText);

  // 1. the document itself, with a validator of the OpenAPI 3.1 schema
  const v = new Validator();
  const res = await v.validate(spec);
  if (!res.valid) fail('docs/openapi.yaml is not valid OpenAPI ' + v.version + ': ' + JSON.stringify(res.errors, null, 1));
  else console.log('docs/openapi.yaml: valid OpenAPI ' + v.version);
  if (spec.openapi !== '3.1.0') fail('docs/openapi.yaml must be OpenAPI 3.1.0');

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(spec, 'openapi.yaml'); // response schemas' $refs resolve in it

  // 2. the real service
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regimen-contract-'));
  const port = await freePort();
  const hookPort = await freePort(); // nobody listens: deliveries fail and queue
  const north = 'contract-north-0123456789abcdef', south = 'contract-south-0123456789abcdef';
  const feed = 'contract-feed-key-0123456789abcdef', prom = 'contract-prometheus-0123456789abcdef';
  const audk = 'contract-auditor-key-0123456789abcdef';
  const sha = (k) => crypto.createHash('sha256').update(k).digest('hex');
  const pw = (p) => execFileSync(bin, ['passwd'], { input: p + '\n' }).toString().trim();
  fs.writeFileSync(path.join(dir, 'serve.json'), JSON.stringify({
    listen: '127.0.0.1:' + port,
    clinics: {
      north: { protocols: path.join(root, 'examples/clinics/north'), tokens: [north],
               users: [{ name: 'ann', role: 'nurse', password: pw('ann-contract-pw') },
                       { name: 'pat', role: 'prescriber', password: pw('pat-contract-pw') },
                       { name: 'adam', role: 'admin', password: pw('adam-contract-pw') }],
               api_keys: [{ name: 'feed', role: 'integration', sha256: sha(feed) },
                          { name: 'audit', role: 'auditor', sha256: sha(audk) }],
               webhook: 'http://127.0.0.1:' + hookPort + '/hook' },
      south: { protocols: path.join(root, 'examples/clinics/south'), tokens: [south] },
    },
    api_keys: [{ name: 'prometheus', role: 'metrics', sha256: sha(prom) }],
    limits: { max_events_per_request: 50 },
  }));
  // a protocol version proposed by carol, for the versions' endpoints
  const propose = (d) => execFileSync(bin, ['protocols', 'propose', '--db', path.join(dir, 'c.db'), '--clinic', 'north',
    '--by', 'carol', path.join(root, d)]).toString().split('\n')[0].split(' ')[1];
  const proposed = propose('examples/clinics/north'), second = propose('examples/clinics/south');
  const third = propose('examples/clinics/west');
  const srv = spawn(bin, ['serve', '--config', path.join(dir, 'serve.json'), '--db', path.join(dir, 'c.db')],
                    { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'serve.log'), 'w')] });
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    try { up = (await request(port, 'GET', '/healthz')).status === 200; } catch (e) { await new Promise((r) => setTimeout(r, 100)); }
  }
  if (!up) { fail('regimen serve did not start: ' + fs.readFileSync(path.join(dir, 'serve.log'), 'utf8')); return finish(srv, dir); }

  const seen = new Set(); // "method tmpl" with a 2xx answer checked
  async function check(method, tmpl, p, opts = {}, want) {
    const r = await request(port, method, p, opts);
    const what = `${method} ${p} -> ${r.status}`;
    if (want !== undefined && r.status !== want) fail(`${what}: expected ${want}: ${r.text.slice(0, 300)}`);
    const resp = responseOf(spec, tmpl, method, r.status);
    if (!resp) { fail(`${what}: status ${r.status} is not documented for ${method} ${tmpl}`); return r; }
    const types = Object.keys(resp.content || {});
    const type = types.find((t) => r.type.split(';')[0].trim() === t);
    if (!type) { fail(`${what}: content type '${r.type}' is not one of ${types.join(', ')}`); return r; }
    const ptr = ['paths', tmpl, method.toLowerCase(), 'responses', String(r.status)]
      .map((k) => k.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
    let body = r.text;
    if (type === 'application/json') {
      try { body = JSON.parse(r.text); } catch (e) { fail(`${what}: body is not JSON: ${r.text.slice(0, 200)}`); return r; }
    }
    // the schema by pointer into the document (through a response $ref if any)
    const op = spec.paths[tmpl][method.toLowerCase()].responses[String(r.status)];
    const base = op.$ref ? op.$ref.slice(1) : '/' + ptr;
    const validate = ajv.getSchema('openapi.yaml#' + base + '/content/' + type.replace(/\//g, '~1') + '/schema');
    if (!validate(body)) fail(`${what}: body does not match the schema: ${ajv.errorsText(validate.errors)}: ${r.text.slice(0, 300)}`);
    else console.log(`  ok ${what} (${type})`);
    if (type === 'text/event-stream') {
      const ev = ajv.getSchema('openapi.yaml#/components/schemas/Transition');
      for (const m of r.text.matchAll(/^data: (.*)$/gm))
        if (!ev(JSON.parse(m[1]))) fail(`${what}: stream event does not match Transition: ${ajv.errorsText(ev.errors)}`);
      if (!/^id: \d+$/m.test(r.text)) fail(`${what}: no 'id: SEQ' line in the stream`);
    }
    r.body = body;
    if (r.status < 300) seen.add(`${method.toLowerCase()} ${tmpl}`);
    return r;
  }

  const timeline = fs.readFileSync(path.join(root, 'examples/clinics/north/timeline.jsonl'), 'utf8')
    .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const ev = '/v1/events';
  await check('GET', '/healthz', '/healthz', {}, 200);
  await check('POST', ev, ev, { token: north, body: timeline[0] }, 200);
  await check('POST', ev, ev, { token: north, body: timeline.slice(0, 40) }, 200);
  await check('POST', ev, ev, { token: north, body: timeline.slice(40) }, 200);
  await check('POST', ev, ev, { token: north, body: [{ id: 'x1', clinic: 'north', patient: 'p', type: 'vitals', at: 'soon' }, 7] }, 200);
  await check('POST', ev, ev, { token: north, body: Object.assign({}, timeline[0], { data: { systolic: 1 } }) }, 200);
  await check('POST', ev, ev, { token: north, body: 'not json' }, 400);
  await check('POST', ev, ev, { token: north, body: Array(51).fill(timeline[0]) }, 413);
  await check('POST', ev, ev, { body: timeline[0] }, 401);
  await check('POST', ev, ev, { token: 'wrong-token-0123456789abcdef', body: timeline[0] }, 401);

  const F = '/v1/fhir', fx = (f) => JSON.parse(fs.readFileSync(path.join(root, 'tests/fhir', f), 'utf8'));
  await check('POST', F, F, { token: north, body: fx('bundle-hl7-examples.json') }, 200);
  await check('POST', F, F, { token: north, body: fx('bundle-malformed.json') }, 200);
  await check('POST', F, F, { token: north, body: fx('observation-example-bloodpressure.json') }, 400);
  await check('POST', F, F, { token: north, body: 'not json' }, 400);
  const many = { resourceType: 'Bundle', type: 'batch', entry: Array.from({ length: 51 }, (_, i) =>
    ({ resource: Object.assign(fx('observation-example-bloodpressure.json'), { id: 'bp-' + i }) })) };
  await check('POST', F, F, { token: north, body: many }, 413);
  await check('POST', F, F, { body: fx('bundle-hl7-examples.json') }, 401);

  const all = (await check('GET', '/v1/alerts', '/v1/alerts', { token: north }, 200)).body.alerts;
  await check('GET', '/v1/alerts', '/v1/alerts?state=open&patient=p-100', { token: north }, 200);
  await check('GET', '/v1/alerts', '/v1/alerts?state=maybe', { token: north }, 400);
  // pages: limit=1 walks every alert once by its cursor, the last page's next is null
  {
    const keys = [];
    let cursor = null;
    for (let i = 0; i <= all.length; i++) {
      const page = (await check('GET', '/v1/alerts', '/v1/alerts?limit=1' +
        (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''), { token: north }, 200)).body;
      keys.push(...page.alerts.map((a) => a.key + ' ' + a.opened_at));
      cursor = page.next;
      if (!cursor) break;
    }
    if (cursor !== null) fail('GET /v1/alerts?limit=1: the last page should have next: null');
    const want = all.map((a) => a.key + ' ' + a.opened_at);
    if (JSON.stringify(keys) !== JSON.stringify(want))
      fail(`GET /v1/alerts?limit=1: the pages do not give every alert once, in order (${keys.length} of ${want.length})`);
  }
  await check('GET', '/v1/alerts', '/v1/alerts?limit=0', { token: north }, 400);
  await check('GET', '/v1/alerts', '/v1/alerts?limit=1001', { token: north }, 400);
  await check('GET', '/v1/alerts', '/v1/alerts?cursor=x', { token: north }, 400);
  await check('GET', '/v1/alerts', '/v1/alerts', {}, 401);
  const open = all.find((a) => a.state === 'open'), resolved = all.find((a) => a.state === 'resolved');
  if (!open || !resolved) fail('the north timeline should give open and resolved alerts');
  const A = '/v1/alerts/{key}';
  await check('GET', A, '/v1/alerts/' + (resolved || all[0]).key, { token: north }, 200);
  await check('GET', A, '/v1/alerts/' + (open || all[0]).key, { token: south }, 404);
  await check('GET', A, '/v1/alerts/nosuchkey', { token: north }, 404);
  if (open) {
    const k = open.key;
    await check('POST', A + '/ack', `/v1/alerts/${k}/ack`, { token: north, body: { who: 'nurse ann', note: 'seen' } }, 200);
    await check('POST', A + '/ack', `/v1/alerts/${k}/ack`, { token: north, body: { note: 'who?' } }, 400);
    await check('POST', A + '/snooze', `/v1/alerts/${k}/snooze`, { token: north, body: { who: 'nurse ann', until: '2099-01-01T00:00:00Z', reason: 'after the call' } }, 200);
    await check('POST', A + '/snooze', `/v1/alerts/${k}/snooze`, { token: north, body: { who: 'nurse ann', until: 'later' } }, 400);
    await check('POST', A + '/snooze', `/v1/alerts/${k}/snooze`, { token: north, body: { who: 'nurse ann', until: '2001-01-01T00:00:00Z' } }, 400);
    const after = await check('GET', A, '/v1/alerts/' + k, { token: north }, 200);
    if (after.body.actions.length !== 2) fail(`GET /v1/alerts/${k}: expected the ack and the snooze in actions`);
    if (!Array.isArray(after.body.notifications) || after.body.notifications.length !== 0)
      fail(`GET /v1/alerts/${k}: a clinic without a notify policy has no notifications`);
  }
  // people and keys: sign in, roles, csrf, sign out (docs/service.md)
  const SE = '/v1/session';
  const si = await check('POST', SE, SE, { body: { clinic: 'north', user: 'ann', password: 'ann-contract-pw' } }, 200);
  const cookie = String(si.headers['set-cookie'] || '').split(';')[0];
  const ann = { Cookie: cookie, 'X-CSRF-Token': si.body.csrf };
  await check('POST', SE, SE, { body: { clinic: 'north', user: 'ann', password: 'wrong' } }, 401);
  await check('POST', SE, SE, { body: { clinic: 'north' } }, 400);
  for (let i = 0; i < 3; i++) await check('POST', SE, SE, { body: { clinic: 'north', user: 'nobody', password: 'x' } }, 401);
  await check('POST', SE, SE, { body: { clinic: 'north', user: 'nobody', password: 'x' } }, 429);
  if (open) {
    const k = open.key;
    await check('POST', A + '/ack', `/v1/alerts/${k}/ack`, { headers: ann, body: { who: 'not ann', note: 'seen' } }, 200);
    await check('POST', A + '/ack', `/v1/alerts/${k}/ack`, { headers: { Cookie: cookie }, body: {} }, 403);
    await check('POST', A + '/ack', `/v1/alerts/${k}/ack`, { token: feed, body: {} }, 403);
    await check('POST', A + '/snooze', `/v1/alerts/${k}/snooze`, { headers: ann, body: { until: '2099-01-01T00:00:00Z' } }, 200);
  }
  await check('POST', ev, ev, { headers: ann, body: timeline[0] }, 403);
  await check('POST', ev, ev, { token: feed, body: timeline[0] }, 200);
  await check('GET', '/v1/alerts', '/v1/alerts', { headers: ann }, 200);
  await check('GET', '/v1/alerts', '/v1/alerts', { token: prom }, 403);
  const ad = await check('POST', SE, SE, { body: { clinic: 'north', user: 'adam', password: 'adam-contract-pw' } }, 200);
  const adam = { Cookie: String(ad.headers['set-cookie'] || '').split(';')[0], 'X-CSRF-Token': ad.body.csrf };
  await check('POST', '/v1/admin/reload', '/v1/admin/reload', { headers: adam }, 200);
  // protocol versions (docs/governance.md)
  const PV = '/v1/protocols/versions', PA = PV + '/{id}/approve', PC = PV + '/{id}/activate', PR = PV + '/{id}/rollback';
  const ps = await check('POST', SE, SE, { body: { clinic: 'north', user: 'pat', password: 'pat-contract-pw' } }, 200);
  const pat = { Cookie: String(ps.headers['set-cookie'] || '').split(';')[0], 'X-CSRF-Token': ps.body.csrf };
  await check('GET', PV, PV, { headers: ann }, 200);
  await check('POST', PA, `${PV}/${proposed}/approve`, { headers: ann }, 403);
  await check('POST', PA, `${PV}/ffff/approve`, { headers: pat }, 404);
  await check('POST', PC, `${PV}/${proposed}/activate`, { headers: adam }, 409);
  await check('POST', PA, `${PV}/${proposed}/approve`, { headers: pat }, 200);
  await check('POST', PA, `${PV}/${proposed}/approve`, { headers: pat }, 409);
  await check('POST', PC, `${PV}/${proposed}/activate`, { headers: adam, body: { at: 'soon' } }, 400);
  await check('POST', PC, `${PV}/${proposed}/activate`, { headers: adam, body: { at: '2026-01-01T00:00:00Z' } }, 200);
  await check('POST', PR, `${PV}/${proposed}/rollback`, { headers: adam }, 409);
  await check('POST', PR, `${PV}/ffff/rollback`, { headers: adam }, 404);
  await check('POST', PA, `${PV}/${second}/approve`, { headers: pat }, 200);
  await check('POST', PC, `${PV}/${second}/activate`, { headers: adam }, 200);
  await check('POST', PR, `${PV}/${proposed}/rollback`, { headers: adam }, 200);
  const listed = await check('GET', PV, PV, { headers: ann }, 200);
  if (!listed.body.versions.length || listed.body.versions[0].state !== 'active') fail('GET /v1/protocols/versions: the activated version should be active');
  // a proposal over HTTP: the files of a clinic directory
  const lua = fs.readFileSync(path.join(root, 'examples/clinics/north/clinic.lua'), 'utf8');
  await check('POST', PV, PV, { headers: ann, body: { files: { 'clinic.lua': lua } } }, 403);
  await check('POST', PV, PV, { headers: adam, body: { files: { '../clinic.lua': lua } } }, 400);
  await check('POST', PV, PV, { headers: adam, body: { files: { 'clinic.lua': lua + '\nthis is not lua\n' } } }, 409);
  const posted = await check('POST', PV, PV, { headers: adam, body: { message: 'over HTTP', until: '2026-07-01T00:00:00Z',
    files: { 'clinic.lua': lua.replace('bp_systolic_max = 150', 'bp_systolic_max = 140') } } }, 201);
  if (!posted.body.version || !/difference/.test(posted.body.diff)) fail('POST /v1/protocols/versions: no version or diff: ' + JSON.stringify(posted.body));
  // a shadow version (docs/governance.md, "Shadow")
  const PS = PV + '/{id}/shadow', SH = '/v1/protocols/shadow';
  await check('POST', PS, `${PV}/${third}/shadow`, { headers: ann }, 403);
  await check('POST', PS, `${PV}/ffff/shadow`, { headers: pat }, 404);
  await check('POST', PS, `${PV}/${proposed}/shadow`, { headers: pat }, 409);
  await check('POST', PS, `${PV}/${third}/shadow`, { headers: pat }, 200);
  await check('POST', PS, `${PV}/${third}/shadow`, { headers: pat }, 409);
  const shadow = await check('GET', SH, SH, { headers: ann }, 200);
  if (!shadow.body.shadow || shadow.body.shadow.version !== third) fail('GET /v1/protocols/shadow: the shadow should be the version just set');
  await check('DELETE', SH, SH, { headers: ann }, 403);
  await check('DELETE', SH, SH, { headers: pat }, 200);
  await check('DELETE', SH, SH, { headers: pat }, 409);
  await check('GET', SH, SH, { headers: ann }, 200);
  await check('POST', '/v1/admin/reload', '/v1/admin/reload', { headers: ann }, 403);
  await check('POST', '/v1/admin/reload', '/v1/admin/reload', {}, 401);
  await check('GET', '/metrics', '/metrics', { headers: adam }, 200);
  await check('GET', '/metrics', '/metrics', { headers: ann }, 403);
  await check('DELETE', SE, SE, { headers: { Cookie: cookie } }, 403);
  await check('DELETE', SE, SE, { headers: ann }, 200);
  await check('DELETE', SE, SE, { headers: ann }, 401);
  await check('DELETE', SE, SE, { token: feed }, 400);

  await check('POST', A + '/ack', '/v1/alerts/' + (resolved || all[0]).key + '/ack', { token: north, body: { who: 'x' } }, 404);
  await check('POST', A + '/snooze', '/v1/alerts/nosuchkey/snooze', { token: north, body: { who: 'x', until: '2099-01-01T00:00:00Z' } }, 404);

  const T = '/v1/transitions';
  const tr = await check('GET', T, T, { token: north }, 200);
  await check('GET', T, T + '?after=2&limit=3', { token: north }, 200);
  await check('GET', T, T + '?after=zz', { token: north }, 400);
  await check('GET', T, T, {}, 401);
  const S = '/v1/transitions/stream';
  await check('GET', S, S + '?after=' + Math.max(0, tr.body.last - 2), { token: north, stream: 2 }, 200);
  await check('GET', S, S, { token: north, headers: { 'Last-Event-ID': String(Math.max(0, tr.body.last - 1)) }, stream: 1 }, 200);
  await check('GET', S, S + '?after=x', { token: north }, 400);

  // stream tickets: one stream each, once, for the token's clinic
  const PT = '/v1/stream-tickets';
  const tk = (await check('POST', PT, PT, { token: north }, 201)).body.ticket;
  await check('POST', PT, PT, {}, 401);
  await check('GET', S, S + '?after=' + Math.max(0, tr.body.last - 1) + '&ticket=' + tk, { stream: 1 }, 200);
  await check('GET', S, S + '?ticket=' + tk, {}, 401);
  await check('GET', S, S + '?ticket=' + 'f'.repeat(64), {}, 401);
  // explain, the patient's timeline
  const E = '/v1/alerts/{key}/explain';
  await check('GET', E, `/v1/alerts/${(resolved || all[0]).key}/explain`, { token: north }, 200);
  await check('GET', E, `/v1/alerts/${(resolved || all[0]).key}/explain`, { token: south }, 404);
  await check('GET', E, '/v1/alerts/nosuchkey/explain', {}, 401);
  const PTL = '/v1/patients/{patient}/timeline';
  await check('GET', PTL, `/v1/patients/${encodeURIComponent((resolved || all[0]).patient)}/timeline`, { token: north }, 200);
  await check('GET', PTL, `/v1/patients/${encodeURIComponent((resolved || all[0]).patient)}/timeline`, { token: south }, 404);
  await check('GET', PTL, '/v1/patients/p-100/timeline', {}, 401);
  // the worklist's page and assets, without a token
  for (const p of ['/', '/app.js', '/app.css', '/timeline.css', '/favicon.svg']) await check('GET', p, p, {}, 200);
  // the esketamine compliance report, in its three formats
  const CR = '/v1/reports/compliance', period = 'from=2026-03-01T00:00:00Z&to=2026-05-01T00:00:00Z';
  for (const f of ['text', 'csv', 'html']) await check('GET', CR, `${CR}?${period}&format=${f}`, { token: north }, 200);
  await check('GET', CR, `${CR}?${period}`, { token: south }, 200);
  await check('GET', CR, `${CR}?from=2026-03-01T00:00:00Z`, { token: north }, 400);
  await check('GET', CR, `${CR}?${period}&format=pdf`, { token: north }, 400);
  await check('GET', CR, `${CR}?${period}`, {}, 401);

  // the audit trail of the requests above: an auditor's, not a nurse's
  const AU = '/v1/audit';
  const au = await check('GET', AU, `${AU}?since=2026-01-01T00:00:00Z&limit=50`, { token: audk }, 200);
  if (!au.body.entries || !au.body.entries.length) fail('GET /v1/audit: no entries for the requests made');
  await check('GET', AU, `${AU}?since=yesterday`, { token: audk }, 400);
  await check('GET', AU, AU, { token: north }, 403);
  await check('GET', AU, AU, {}, 401);

  const m = await check('GET', '/metrics', '/metrics', { token: prom }, 200);
  await check('GET', '/metrics', '/metrics', { token: north }, 200); // a legacy token: its clinic's
  await check('GET', '/metrics', '/metrics', {}, 401);
  // 3. /metrics is valid Prometheus text (promtool's parser and lint)
  const pt = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
  if (pt.error) fail('promtool: ' + pt.error.message + ' (Debian package prometheus, installed by .ci/install-deps)');
  else if (pt.status !== 0) fail('promtool check metrics on /metrics: ' + (pt.stdout + pt.stderr).trim());
  else console.log('  ok promtool check metrics: /metrics (' + m.text.split('\n').length + ' lines)');
  for (const name of ['regimen_events_total', 'regimen_history_cache_bytes', 'regimen_webhook_backlog', 'regimen_open_alerts'])
    if (!new RegExp('^' + name + '[{ ]', 'm').test(m.text)) fail('/metrics has no ' + name);

  // every documented operation was answered successfully at least once
  for (const [tmpl, item] of Object.entries(spec.paths))
    for (const method of Object.keys(item).filter((k) => ['get', 'post', 'put', 'delete', 'patch'].includes(k)))
      if (!seen.has(`${method} ${tmpl}`)) fail(`${method.toUpperCase()} ${tmpl} is documented but was not exercised with a 2xx answer`);
  // and every route the service has is documented: an undocumented path is 404
  await check('GET', '/v1/alerts/{key}', '/v1/alerts/k/other', { token: north }, 404);
  return finish(srv, dir);
}

function finish(srv, dir) {
  return new Promise((resolve) => {
    srv.once('exit', () => resolve());
    srv.kill('SIGTERM');
  }).then(() => {
    if (failures.length) console.log(`contract: ${failures.length} FAILED (server log kept in ${dir})`);
    else { fs.rmSync(dir, { recursive: true, force: true }); console.log('contract: passed'); }
    process.exit(failures.length ? 1 : 0);
  });
}

main().catch((e) => { console.log('contract: FAILED: ' + (e.stack || e)); process.exit(1); });
