// worklist.js - the staff worklist (GET / of regimen serve) in a real
// headless chromium (Debian's), driven by puppeteer-core.
//
// Run by make test (tests/browser/run.sh) as: node worklist.js REGIMEN_BIN OUTDIR
// It starts the real binary on a free loopback port, over https with a
// certificate made for the test (openssl req -x509), with a temporary SQLite
// database and the clinic in tests/browser/clinic/ (a nurse, ann, whose
// password hash `regimen passwd` makes; an integration key that posts the
// events), then as a nurse would: a wrong password gets a clear message;
// signed in (a session cookie the page cannot read), an alert that a POST
// opens appears without a reload, a resolved one leaves; ack one, snooze
// another, see them recorded as ann, reload and find them kept; filters,
// explain, the patient's timeline; sign out ends the session. A protocol
// message with markup stays inert text. The service's log holds neither the
// key, the password nor the session. Screenshots at
// 1280x800 and 390 px wide (the list, an alert) go to OUTDIR/worklist-*.png.
// Prints "ok ..." / "FAIL ..." per check and "browser checks: N passed, N failed".
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const net = require('net');
const https = require('https');
const { spawn, execFileSync } = require('child_process');
const crypto = require('crypto');
const puppeteer = require('puppeteer-core');

const root = path.resolve(__dirname, '..', '..');
const bin = path.resolve(process.argv[2] || path.join(root, 'build', 'regimen'));
const outDir = path.resolve(process.argv[3] || path.join(root, 'build'));
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const KEY = 'worklist-feed-key-0123456789abcdef'; // the integration key that posts events
const PASSWORD = 'ann-worklist-password';
const HOSTILE = '<img src=x onerror=alert(1)>';
let passed = 0, failed = 0;

function check(ok, what, detail) {
  if (ok) { passed++; console.log('  ok ' + what); }
  else { failed++; console.log('  FAIL ' + what + (detail !== undefined ? ': ' + detail : '')); }
  return ok;
}

// Waits up to 5 s for fn to hold in the page; the check fails if it never does.
async function waitCheck(page, fn, what) {
  let ok = true;
  try { await page.waitForFunction(fn, { timeout: 5000 }); } catch (e) { ok = false; }
  return check(ok, what, 'not within 5 s');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// The service speaks https with a certificate made for the test: the
// requests of the test trust it (ca), Chromium is told to.
let ca;
// A GET with a cookie: the status.
function getWithCookie(port, p, cookie) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, ca, method: 'GET', path: p, headers: { Cookie: cookie } },
      (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end();
  });
}

function post(port, p, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port, ca, method: 'POST', path: p, headers: {
      Authorization: 'Bearer ' + KEY, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data),
    } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// The list is drawn again on every transition and refresh: click the row
// that is there at that moment, in the page (a handle could be stale).
const clickIn = (page, sel) => page.$eval(sel, (e) => e.click());

let n = 0;
const event = (patient, type, data) => ({
  id: 'e' + (++n), clinic: 'wl', patient, type, at: new Date(Date.now() - 60000 + n).toISOString(), data,
});

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'regimen-browser-'));
  const port = await freePort();
  const base = 'https://127.0.0.1:' + port;
  const log = path.join(dir, 'serve.log');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
                           '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'),
                           '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  fs.writeFileSync(path.join(dir, 'serve.json'), JSON.stringify({
    listen: { address: '127.0.0.1:' + port, certificate: 'cert.pem', key: 'key.pem' },
    clinics: { wl: {
      protocols: path.join(__dirname, 'clinic'),
      users: [{ name: 'ann', role: 'nurse',
                password: execFileSync(bin, ['passwd'], { input: PASSWORD + '\n' }).toString().trim() }],
      api_keys: [{ name: 'feed', role: 'integration', sha256: crypto.createHash('sha256').update(KEY).digest('hex') }],
    } },
  }));
  const srv = spawn(bin, ['serve', '--config', path.join(dir, 'serve.json'), '--db', path.join(dir, 'w.db')],
                    { stdio: ['ignore', 'ignore', fs.openSync(log, 'w')] });
  let browser;
  try {
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try { up = (await post(port, '/v1/events', [])).status === 200; } catch (e) { await new Promise((r) => setTimeout(r, 100)); }
    }
    if (!check(up, 'regimen serve started', fs.readFileSync(log, 'utf8'))) return;
    // open before the page loads: a warning to snooze later
    const warn = event('p-200', 'flag', { severity: 'warning', message: 'pressure check overdue' });
    await post(port, '/v1/events', [warn]);

    browser = await puppeteer.launch({
      executablePath: chromium, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
             '--ignore-certificate-errors'], // the test's own certificate (trusted by post() above)
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const dialogs = [], errors = [], urls = [];
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('request', (r) => urls.push(r.url()));

    const res = await page.goto(base + '/', { waitUntil: 'load' });
    const h = res.headers();
    check(/default-src 'none'/.test(h['content-security-policy'] || '') && /script-src 'self'/.test(h['content-security-policy']) &&
          !/unsafe-inline/.test(h['content-security-policy']), 'GET / has a strict Content-Security-Policy', h['content-security-policy']);
    check(h['x-content-type-options'] === 'nosniff' && h['referrer-policy'] === 'no-referrer', 'nosniff and no-referrer');

    // a wrong password: a clear message, nothing kept
    await page.type('#clinic-in', 'wl');
    await page.type('#user', 'ann');
    await page.type('#password', 'not-the-password');
    await page.click('#signin-form button');
    await page.waitForSelector('#signin-error:not([hidden])', { timeout: 5000 });
    const msg = await page.$eval('#signin-error', (e) => e.textContent);
    check(/wrong clinic, user or password/.test(msg), 'a wrong password gets a clear message', msg);
    check(await page.evaluate(() => sessionStorage.length === 0) && (await page.cookies()).length === 0,
          'a wrong password makes no session');
    errors.length = 0; // the console's line for that 401

    // sign in
    await page.$eval('#password', (e) => { e.value = ''; });
    await page.type('#password', PASSWORD);
    await page.click('#signin-form button');
    await page.waitForSelector('#alerts tbody tr', { timeout: 5000 });
    await page.waitForSelector('#live.on', { timeout: 5000 });
    const cookies = await page.cookies();
    const sc = cookies.find((c) => c.name === 'regimen_session');
    check(sc && sc.httpOnly && sc.sameSite === 'Strict' && await page.evaluate(() => document.cookie === ''),
          'signed in: an HttpOnly, SameSite=Strict session cookie the page cannot read', JSON.stringify(cookies));
    check(await page.evaluate(() => /"csrf":"[0-9a-f]{64}"/.test(sessionStorage.getItem('regimen.session') || '')) &&
          (await page.$eval('#me', (e) => e.textContent)) === 'ann (nurse)', 'the page knows who is signed in and the csrf value');
    await page.evaluate(() => { window.__sameDocument = true; });

    // live: a POST opens a critical alert with a hostile message
    const crit = event('p-100', 'flag', { severity: 'critical', message: HOSTILE });
    const t0 = Date.now();
    await post(port, '/v1/events', [crit]);
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 2, { timeout: 5000 });
    const ms = Date.now() - t0;
    check(ms < 1000, `the alert a POST opened appeared without reload in ${ms} ms (< 1000)`);
    check(await page.evaluate(() => window.__sameDocument === true), 'the page was not reloaded');
    const rows = await page.$$eval('#alerts tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    check(rows[0][0] === 'critical' && rows[1][0] === 'warning', 'sorted by severity: critical first', JSON.stringify(rows));
    check(rows[0][4] === HOSTILE, 'the hostile message is shown literally', rows[0][4]);
    check(rows.every((r) => / -0[45]:00$/.test(r[1])), "due times are the clinic's local time (America/New_York)",
          JSON.stringify(rows.map((r) => r[1])));
    check(await page.evaluate(() => document.querySelectorAll('img').length === 0 && !window.__pwned), 'the hostile markup made no element');

    // a resolve leaves the list live too
    const note = event('p-300', 'note', { message: 'call back' });
    await post(port, '/v1/events', [note]);
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 3, { timeout: 5000 });
    const t1 = Date.now();
    await post(port, '/v1/events', [event('p-300', 'clear', { of: note.id })]);
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 2, { timeout: 5000 });
    check(Date.now() - t1 < 1000, `a resolved alert left the list in ${Date.now() - t1} ms (< 1000)`);

    // filters
    await page.type('#f-patient', 'p-200');
    let shown = await page.$$eval('#alerts tbody tr', (trs) => trs.map((tr) => tr.cells[2].textContent));
    check(shown.length === 1 && shown[0] === 'p-200', 'the patient filter', JSON.stringify(shown));
    await page.$eval('#f-patient', (e) => { e.value = ''; e.dispatchEvent(new Event('input')); });
    await post(port, '/v1/events', [event('p-300', 'note', { message: 'bring the consent form' })]);
    await page.waitForFunction(() => document.querySelectorAll('#alerts tbody tr').length === 3, { timeout: 5000 });
    await page.select('#f-rule', 'wl.note');
    shown = await page.$$eval('#alerts tbody tr', (trs) => trs.map((tr) => tr.cells[3].textContent));
    check(shown.length === 1 && shown[0] === 'wl.note', 'the rule filter', JSON.stringify(shown));
    await page.select('#f-rule', '');

    // ack the critical one
    await clickIn(page, '#alerts tbody tr:nth-child(1)');
    await page.waitForSelector('#detail:not([hidden]) #ack-form:not([hidden])', { timeout: 5000 });
    check((await page.$eval('#d-message', (e) => e.textContent)) === HOSTILE, 'the details show the message as text');
    await page.type('#ack-form [name=note]', 'called the patient');
    await page.click('#ack-form button');
    await waitCheck(page, () => /acknowledged by ann \(nurse\)/.test(document.querySelector('#alerts tbody tr:nth-child(1) td:last-child').textContent),
                    'ack: the state shows "acknowledged by ann (nurse)", the signed-in user');
    await waitCheck(page, () => /acknowledged by ann \(nurse\): called the patient/.test(document.querySelector('#history').textContent),
                    'the history lists the ack with its note');
    await waitCheck(page, () => /: desk by webhook, step 1 \(/.test(document.querySelector('#history').textContent),
                    "the history lists the notification policy's attempts (a webhook nobody listens on)");
    const facts = await page.$$eval('#d-facts dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
    const local = (t) => / -0[45]:00$/.test(t);
    check(facts.length >= 4 && facts.filter(([n]) => ['Due', 'Notify at', 'Opened'].includes(n)).every(([, v]) => local(v)) &&
          facts.some(([n]) => n === 'Notify at'),
          "the alert's due, notify and opened times are the clinic's local time", JSON.stringify(facts));
    const hist = await page.$$eval('#history li', (lis) => lis.map((li) => li.textContent));
    check(hist.length >= 2 && hist.every((h) => /^\d{4}-\d\d-\d\d \d\d:\d\d -0[45]:00 /.test(h) && !/UTC/.test(h)),
          "the history's times (transitions, notify, the ack) are the clinic's local time", JSON.stringify(hist));

    // explain and the patient's timeline
    await page.click('.tab[data-tab=explain]');
    await page.waitForFunction(() => /events the rule looked at/.test(document.querySelector('#explain').textContent), { timeout: 5000 });
    const ex = await page.$eval('#explain', (e) => e.textContent);
    check(ex.includes(HOSTILE) && ex.includes('rule wl.flag'), 'explain shows `regimen explain`\'s text');
    await page.click('.tab[data-tab=patient]');
    await page.waitForSelector('#timeline svg rect.bar.sev-critical', { timeout: 5000 });
    check(await page.evaluate(() => document.querySelectorAll('#timeline svg .ev circle').length >= 1 &&
                              document.querySelector('#timeline').querySelectorAll('img, script, image').length === 0),
          'the patient view draws the timeline SVG (bars and event marks)');
    await page.screenshot({ path: path.join(outDir, 'worklist-1280.png') });

    // snooze the warning
    const wi = await page.$$eval('#alerts tbody tr', (trs) => trs.findIndex((tr) => tr.cells[2].textContent === 'p-200'));
    await clickIn(page, `#alerts tbody tr:nth-child(${wi + 1})`);
    await page.waitForFunction(() => /p-200/.test(document.querySelector('#d-title').textContent), { timeout: 5000 });
    await page.type('#snooze-form [name=reason]', 'waiting for the lab');
    await page.click('#snooze-form button');
    await waitCheck(page, () => [...document.querySelectorAll('#alerts tbody tr')].some((tr) =>
      tr.cells[2].textContent === 'p-200' && /snoozed until/.test(tr.cells[5].textContent)),
                    'snooze: the state shows "snoozed until"');

    // reload: still signed in (this tab's session), the states kept
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#alerts tbody tr', { timeout: 5000 });
    const states = await page.$$eval('#alerts tbody tr', (trs) => Object.fromEntries(trs.map((tr) => [tr.cells[2].textContent, tr.cells[5].textContent])));
    check(/acknowledged by ann \(nurse\)/.test(states['p-100']) && /snoozed until/.test(states['p-200']),
          'after a reload the ack and the snooze are kept', JSON.stringify(states));
    await page.waitForSelector('#live.on', { timeout: 5000 });

    // a phone's width
    // (isMobile would make puppeteer reload the page: the width is what counts)
    await page.setViewport({ width: 390, height: 844 });
    await page.waitForSelector('#alerts tbody tr', { timeout: 5000 });
    await clickIn(page, '#alerts tbody tr:nth-child(1)');
    await page.waitForSelector('#detail:not([hidden])', { timeout: 5000 });
    await page.click('.tab[data-tab=patient]');
    await page.waitForSelector('#timeline svg', { timeout: 5000 });
    const wideAlert = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wideAlert <= 390, `at 390 px an alert's details fit the screen (${wideAlert} px)`);
    await page.screenshot({ path: path.join(outDir, 'worklist-390-alert.png'), fullPage: true });
    await page.click('#d-close');
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 390, `at 390 px nothing is wider than the screen (${wide} px)`);
    await page.screenshot({ path: path.join(outDir, 'worklist-390.png'), fullPage: true });

    check(dialogs.length === 0, 'no script of a protocol ran (no dialog)', JSON.stringify(dialogs));
    check(errors.length === 0, 'no page errors, no CSP violations', JSON.stringify(errors));
    const streams = urls.filter((u) => u.includes('/v1/transitions/stream'));
    check(streams.length >= 2 && !urls.some((u) => u.includes('ticket=')),
          `the stream ran on the session cookie (${streams.length} opened, no ticket)`);
    check(!urls.some((u) => u.includes(PASSWORD) || u.includes(sc.value)), 'neither the password nor the session is in a URL');
    const text = fs.readFileSync(log, 'utf8');
    check(!text.includes(KEY) && !text.includes(PASSWORD) && !text.includes(sc.value) && /acknowledged by ann \(nurse\)/.test(text),
          'the service log names ann and has neither the key, the password nor the session');

    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
    check(await page.evaluate(() => sessionStorage.getItem('regimen.session') === null), 'sign out forgets the session in the page');
    let ended = false;
    for (let i = 0; i < 50 && !ended; i++) {
      ended = (await getWithCookie(port, '/v1/alerts', 'regimen_session=' + sc.value)) === 401;
      if (!ended) await new Promise((r) => setTimeout(r, 100));
    }
    check(ended, 'sign out ends the session in the service: its cookie is refused');
  } finally {
    if (browser) await browser.close();
    const code = await new Promise((resolve) => { srv.once('exit', (c) => resolve(c)); srv.kill('SIGTERM'); });
    const text = fs.readFileSync(log, 'utf8');
    check(code === 0 && !/Sanitizer|runtime error:/.test(text), `the service stopped cleanly (exit ${code}, no sanitizer report)`,
          text.slice(-2000));
    if (failed) console.log('  (service log kept in ' + log + ')');
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { check(false, 'the browser test ran to its end', e.stack || e); }).then(() => {
  console.log(`browser checks: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
