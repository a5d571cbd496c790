// Gatehouse passkeys: the WebAuthn calls of the login page ("Sign in with a passkey" and the
// browser's passkey autofill) and of the account page (list, add, rename, delete). Served
// from /auth/passkeys.js; the pages allow exactly this script (CSP nonce) and nothing inline.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const status = (m) => { if ($('pk-status')) $('pk-status').textContent = m; };
  const PKC = window.PublicKeyCredential;
  async function call(method, url, body) {
    const r = await fetch(url, {
      method, credentials: 'same-origin',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const j = r.status === 204 ? {} : await r.json();
    if (!r.ok) throw new Error(j.message || 'Error ' + r.status);
    return j;
  }
  const quiet = (e) => e && (e.name === 'AbortError' || e.name === 'NotAllowedError');

  let pending; // the autofill request, ended before a button press starts another
  async function signIn(conditional) {
    if (pending) pending.abort();
    const ctl = pending = new AbortController();
    const options = await call('POST', '/auth/passkeys/login/options', {});
    const cred = await navigator.credentials.get({
      publicKey: PKC.parseRequestOptionsFromJSON(options),
      mediation: conditional ? 'conditional' : 'optional', signal: ctl.signal,
    });
    status('Signing in…');
    const back = new URLSearchParams(location.search).get('return_to');
    const q = back ? '?return_to=' + encodeURIComponent(back) : '';
    const done = await call('POST', '/auth/passkeys/login' + q, cred.toJSON());
    location.assign(done.return_to);
  }

  async function list() {
    const ul = $('pk-list');
    const { passkeys } = await call('GET', '/auth/passkeys');
    ul.replaceChildren(...passkeys.map((p) => {
      const li = document.createElement('li');
      const name = document.createElement('input');
      name.value = p.name; name.maxLength = 64; name.setAttribute('aria-label', 'Passkey name');
      const button = (text, run) => {
        const b = document.createElement('button');
        b.type = 'button'; b.textContent = text;
        b.onclick = () => run().then(list).catch((e) => status(e.message));
        return b;
      };
      const path = '/auth/passkeys/' + encodeURIComponent(p.id);
      li.append(name,
        button('Rename', () => call('PATCH', path, { name: name.value })),
        button('Delete', () => call('DELETE', path)));
      return li;
    }));
    status(passkeys.length ? '' : 'No passkeys yet.');
  }

  async function add() {
    const options = await call('POST', '/auth/passkeys/register/options', {});
    const cred = await navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(options) });
    await call('POST', '/auth/passkeys/register', { ...cred.toJSON(), name: $('pk-name').value });
    $('pk-name').value = '';
    await list();
    status('Passkey added.');
  }

  if (!PKC || !PKC.parseRequestOptionsFromJSON) {
    status('This browser cannot use passkeys.');
    return;
  }
  if ($('pk-signin')) {
    $('pk-signin').onclick = () => signIn(false).catch((e) => status(quiet(e) ? 'Cancelled.' : e.message));
    PKC.isConditionalMediationAvailable?.().then((yes) => yes && signIn(true).catch((e) => quiet(e) || status(e.message)));
  }
  if ($('pk-add')) {
    $('pk-add').onclick = () => add().catch((e) => status(quiet(e) ? 'Cancelled.' : e.message));
    list().catch((e) => status(e.message));
  }
})();
