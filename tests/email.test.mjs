// The `email` provider kind through the real Worker (wrangler dev / workerd, local D1 and KV)
// and the real `send_email` binding: under wrangler dev the binding writes each message's
// text and HTML parts to files and logs their paths, and these tests read the code and the
// link back from those files, as a person reads their mail.
//
// - the link signs in the browser that asked; in another browser it spends nothing and says
//   to type the code; the code signs in (form or JSON);
// - five wrong codes end the request (link included); a replayed code and two concurrent
//   redemptions give one sign-in;
// - every address gets the same answer; sends are limited per address and per network;
// - the address is escaped in the HTML part; no code, link token or cookie in the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startGatehouse, Client, readEmails, neverLog, freshRateWindow } from './support/harness.mjs';

const FORM = 'application/x-www-form-urlencoded';
let gh;
before(async () => {
  gh = await startGatehouse({
    vars: { PROVIDERS: { mail: { kind: 'email', from: 'login@gatehouse.test', display_name: 'Email' } } },
    sendEmail: ['EMAIL'],
  });
});
after(async () => { await gh?.stop(); });

let net = 0;
/** A client network of its own per call, so each test meets only the limits it means to. */
const freshIp = () => { net += 1; return `203.0.${Math.floor(net / 250)}.${(net % 250) + 1}`; };
const uniq = (who) => `${who}-${randomBytes(4).toString('hex')}@example.com`;
const spentRows = async () => (await gh.d1('SELECT COUNT(*) AS n FROM spent'))[0].n;
const sessions = async () => (await gh.kv.list('s:')).length;

/** The code and the link of a message. */
function secretsOf(mail) {
  const code = mail.text.match(/^\s+(\d{6})$/m)?.[1];
  const link = mail.text.match(/^(http\S+)$/m)?.[1];
  assert.ok(code && link, mail.text);
  neverLog(new URL(link).searchParams.get('token'), 'an email link token');
  return { code, link };
}

/** Asks for a sign-in in `browser` as a form; returns the answer and the message sent. */
async function ask(browser, email, ip = freshIp()) {
  const since = gh.mark();
  const res = await browser.fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: { origin: gh.url, 'content-type': FORM, accept: 'text/html', 'cf-connecting-ip': ip },
    body: new URLSearchParams({ email }),
  });
  const page = await res.text();
  assert.equal(res.status, 200, page);
  const [mail] = await readEmails(gh, since);
  return { page, mail, ...secretsOf(mail) };
}

function typeCode(browser, code, { json = false, ip = freshIp() } = {}) {
  return browser.fetch(`${gh.url}/auth/magic-link/verify`, {
    method: 'POST',
    headers: json
      ? { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip }
      : { origin: gh.url, 'content-type': FORM, accept: 'text/html', 'cf-connecting-ip': ip },
    body: json ? JSON.stringify({ code }) : new URLSearchParams({ code }),
  });
}

const open = (browser, link) => browser.fetch(link, { headers: { accept: 'text/html', 'cf-connecting-ip': freshIp() } });

async function assertSignedIn(browser, res, email) {
  assert.equal(res.status, 302, await res.clone().text());
  assert.ok(browser.cookie(gh.url, 'gh_session'), 'a session cookie');
  const me = await browser.fetch(`${gh.url}/auth/me`);
  assert.equal(me.status, 200);
  assert.equal((await me.json()).email, email.toLowerCase());
  const [row] = await gh.d1(
    'SELECT u.email, u.email_verified, i.issuer, i.sub FROM identities i JOIN users u ON u.id = i.user_id WHERE i.issuer = ? AND i.sub = ?',
    ['email', email.toLowerCase()],
  );
  assert.deepEqual(row, { email: email.toLowerCase(), email_verified: 1, issuer: 'email', sub: email.toLowerCase() });
}

test('one message with a code and a link, the code page, then the link signs in the browser that asked', async () => {
  const alice = new Client();
  const email = uniq('Alice');
  const { page, mail, code, link } = await ask(alice, email);
  assert.match(page, /action="\/auth\/magic-link\/verify"/);
  assert.match(page, /autocomplete="one-time-code"/);
  assert.equal(mail.from, 'login@gatehouse.test');
  assert.equal(mail.to, email);
  assert.equal(mail.subject, 'Your sign-in code for 127.0.0.1');
  assert.ok(!mail.subject.includes(code), 'the code stays out of the subject');
  assert.ok(link.startsWith(`${gh.url}/auth/callback/mail?gh_state=`), link);
  assert.ok(mail.html.includes(code) && mail.html.includes(link.replaceAll('&', '&amp;')));
  assert.doesNotMatch(mail.html, /<img|src=/, 'no images, no remote content');
  assert.equal(mail.html.match(/href=/g).length, 1, 'one link, no tracking');
  await assertSignedIn(alice, await open(alice, link), email);
  // Single use: the link again, and the code after it.
  assert.equal((await open(alice, link)).status, 400);
  assert.equal((await typeCode(alice, code)).status, 400);
});

test('the code signs in the browser that asked, as a form or as JSON; a replay is refused', async () => {
  const bob = new Client();
  const email = uniq('bob');
  const { code } = await ask(bob, email);
  const res = await typeCode(bob, code);
  await assertSignedIn(bob, res, email);
  const replay = await typeCode(bob, code);
  assert.equal(replay.status, 400);

  const api = new Client();
  const second = await ask(api, email);
  const wrong = await typeCode(api, second.code === '000000' ? '111111' : '000000', { json: true });
  assert.equal(wrong.status, 400);
  assert.deepEqual(await wrong.json(), { error: 'invalid_code', message: 'That code is not right. 4 tries left.' });
  const r = await typeCode(api, second.code, { json: true });
  assert.equal(r.status, 302);
  assert.equal(r.headers.get('location'), '/');
  assert.ok(api.cookie(gh.url, 'gh_session'));
  const [{ n }] = await gh.d1("SELECT COUNT(*) AS n FROM identities WHERE issuer = 'email' AND sub = ?", [email]);
  assert.equal(n, 1, 'the same identity, the same user');
});

test('the link opened in another browser signs nothing in and says to type the code there', async () => {
  const carol = new Client();
  const email = uniq('carol');
  const { code, link } = await ask(carol, email);
  const spent = await spentRows();
  const phone = new Client();
  const res = await open(phone, link);
  const page = await res.text();
  assert.equal(res.status, 400);
  assert.match(page, /Type the 6-digit code from the email/);
  assert.equal(phone.cookie(gh.url, 'gh_session'), undefined);
  assert.equal(await spentRows(), spent, 'nothing spent');
  await assertSignedIn(carol, await typeCode(carol, code), email);
});

test('five wrong codes end the request, link included', async () => {
  const dave = new Client();
  const { code, link } = await ask(dave, uniq('dave'));
  const wrong = code === '000000' ? '111111' : '000000';
  for (let left = 4; left >= 1; left--) {
    const r = await typeCode(dave, wrong);
    assert.equal(r.status, 400);
    assert.match(await r.text(), new RegExp(`${left} tr`));
  }
  const last = await typeCode(dave, wrong);
  assert.match(await last.text(), /Too many wrong codes/);
  const right = await typeCode(dave, code);
  assert.equal(right.status, 400);
  assert.equal((await open(dave, link)).status, 400);
  assert.equal(dave.cookie(gh.url, 'gh_session'), undefined);
});

test('concurrent wrong guesses are each counted before they are compared: the right code comes too late', async () => {
  const erin = new Client();
  const { code } = await ask(erin, uniq('erin'));
  const cookie = `gh_txn=${erin.cookie(gh.url, 'gh_txn')}`;
  const wrong = code === '000000' ? '111111' : '000000';
  const post = (c) => fetch(`${gh.url}/auth/magic-link/verify`, {
    method: 'POST', redirect: 'manual',
    headers: { origin: gh.url, 'content-type': FORM, cookie, 'cf-connecting-ip': freshIp() },
    body: new URLSearchParams({ code: c }),
  });
  // Concurrent wrong guesses: each is counted before it is compared.
  const guesses = await Promise.all(Array.from({ length: 8 }, () => post(wrong)));
  assert.ok(guesses.every((r) => r.status === 400));
  const r = await post(code);
  assert.equal(r.status, 400, 'the right code after five wrong ones');
  assert.ok(!r.headers.getSetCookie().some((c) => c.startsWith('gh_session=')));
});

test('two concurrent redemptions (code and code, code and link) give exactly one sign-in', async () => {
  for (const pair of ['codes', 'code+link']) {
    const frank = new Client();
    const { code, link } = await ask(frank, uniq(`frank-${pair.replace('+', '')}`));
    const before = await sessions();
    const cookie = `gh_txn=${frank.cookie(gh.url, 'gh_txn')}`;
    const viaCode = () => fetch(`${gh.url}/auth/magic-link/verify`, {
      method: 'POST', redirect: 'manual',
      headers: { origin: gh.url, 'content-type': FORM, cookie, 'cf-connecting-ip': freshIp() },
      body: new URLSearchParams({ code }),
    });
    const viaLink = () => fetch(link, { redirect: 'manual', headers: { cookie, 'cf-connecting-ip': freshIp() } });
    const results = await Promise.all(pair === 'codes' ? [viaCode(), viaCode()] : [viaCode(), viaLink()]);
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [302, 400], `${pair}: ${statuses}`);
    const withSession = results.filter((r) => r.headers.getSetCookie().some((c) => c.startsWith('gh_session=') && !/Max-Age=0/i.test(c)));
    assert.equal(withSession.length, 1, pair);
    assert.equal(await sessions(), before + 1, pair);
  }
});

test('every address gets the same answer, known or not', async () => {
  const known = uniq('known');
  const first = new Client();
  const { code } = await ask(first, known);
  await assertSignedIn(first, await typeCode(first, code), known);

  const ip = freshIp();
  const since = gh.mark();
  const post = (email, json) => fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: json
      ? { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip }
      : { origin: gh.url, 'content-type': FORM, accept: 'text/html', 'cf-connecting-ip': ip },
    body: json ? JSON.stringify({ email }) : new URLSearchParams({ email }),
  });
  for (const json of [false, true]) {
    const [a, b] = [await post(known, json), await post(uniq('unknown'), json)];
    assert.equal(a.status, b.status);
    assert.equal(a.status, json ? 202 : 200);
    assert.equal(await a.text(), await b.text());
  }
  const mails = await readEmails(gh, since, 4);
  assert.equal(mails.length, 4, 'each of them is sent a message');
});

test('sends are limited per address (5 per 15 minutes) and per network (20 per 15 minutes)', async () => {
  await freshRateWindow(900, 120);
  const email = uniq('limited');
  for (let i = 0; i < 5; i++) await ask(new Client(), email);
  const since = gh.mark();
  const over = await new Client().fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': freshIp() },
    body: JSON.stringify({ email: email.toUpperCase() }),
  });
  assert.equal(over.status, 429);
  assert.equal(over.headers.getSetCookie().length, 0, 'no login transaction');

  const ip = freshIp();
  for (let i = 0; i < 20; i++) await ask(new Client(), uniq(`net${i}`), ip);
  const mark = gh.mark();
  const net = await new Client().fetch(`${gh.url}/auth/magic-link`, {
    method: 'POST',
    headers: { origin: gh.url, 'content-type': 'application/json', 'cf-connecting-ip': ip },
    body: JSON.stringify({ email: uniq('net-over') }),
  });
  assert.equal(net.status, 429);
  // Nothing was sent past either limit.
  await new Promise((r) => setImmediate(r));
  assert.doesNotMatch(gh.logs().slice(mark), /send_email binding called/);
  assert.equal((gh.logs().slice(since, mark).match(/send_email binding called/g) ?? []).length, 20);
});

test('the address is escaped in the HTML part and plain in the text part', async () => {
  const email = `o'brien&co+${randomBytes(3).toString('hex')}@example.com`;
  const { mail } = await ask(new Client(), email);
  assert.ok(mail.html.includes(email.replace('&', '&amp;').replace("'", '&#39;')), mail.html);
  assert.ok(!mail.html.includes("o'brien&co"));
  assert.ok(mail.text.includes(email));
});

test("no code, link token or cookie reaches the Worker's own log", async () => {
  const { code } = await ask(new Client(), uniq('quiet'));
  const own = gh.logs().split('\n').filter((l) => !/^\s*\[wrangler:/.test(l) && !/^\s*(Text|HTML): /.test(l));
  assert.ok(!own.some((l) => l.includes(code) && /gatehouse/.test(l)), 'the code is not logged');
  assert.deepEqual(gh.leaks(), []);
});
