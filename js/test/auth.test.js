// The accounts helpers (sdk/auth.js), with the test playing Shoal's REST API through a scripted `fetch`: what
// each call sends, what it makes of the answers and errors, and when a session refreshes its token. The browser
// tests (tests/browser/test_browser_accounts.py) use the same module against a real server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AccountsApi, ApiError, AuthSession } from '../../src/shoal/web/static/sdk/auth.js';

const BASE = 'http://127.0.0.1:9';

/** A `fetch` that records each request and answers with the next of `answers` (a Response, or an Error to throw). */
function scriptedFetch(...answers) {
  const requests = [];
  const fetch = async (url, init) => {
    requests.push({ url, ...init });
    const answer = answers.shift();
    if (answer === undefined) assert.fail(`unexpected request ${init.method} ${url}`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch, requests };
}

const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
const failure = (status, message, headers = {}) => json({ error: { status, message } }, status, headers);
const profile = { id: 'u-1', username: 'ada', name: 'Ada', color: '#3cb44b', avatar: null, provider: 'local' };
const tokens = (n, expiresIn = 900) => ({
  access_token: `access-${n}`,
  refresh_token: `refresh-${n}`,
  expires_in: expiresIn,
  token_type: 'Bearer',
});

describe('AccountsApi', () => {
  test('login posts the credentials as JSON and resolves with the answer', async () => {
    const { fetch, requests } = scriptedFetch(json({ ...tokens(1), user: profile }));
    const api = new AccountsApi({ baseUrl: `${BASE}/`, fetch });
    const answer = await api.login({ username: 'ada', password: 'secret password' });
    assert.equal(answer.access_token, 'access-1');
    assert.deepEqual(answer.user, profile);
    const [request] = requests;
    assert.equal(request.url, `${BASE}/api/auth/login`);
    assert.equal(request.method, 'POST');
    assert.deepEqual(request.headers, { 'Content-Type': 'application/json' });
    assert.deepEqual(JSON.parse(request.body), { username: 'ada', password: 'secret password' });
  });

  test('register leaves out a name not given; profile calls carry the bearer token', async () => {
    const { fetch, requests } = scriptedFetch(json({ ...tokens(1), user: profile }, 201), json(profile), json(profile));
    const api = new AccountsApi({ baseUrl: BASE, fetch });
    await api.register({ username: 'ada', password: 'secret password' });
    await api.me('access-1');
    await api.updateProfile('access-1', { color: '#4363d8' });
    assert.deepEqual(JSON.parse(requests[0].body), { username: 'ada', password: 'secret password' });
    assert.deepEqual(
      requests.slice(1).map((request) => [request.method, request.url, request.headers.Authorization]),
      [
        ['GET', `${BASE}/api/me`, 'Bearer access-1'],
        ['PATCH', `${BASE}/api/me`, 'Bearer access-1'],
      ],
    );
    assert.deepEqual(JSON.parse(requests[2].body), { color: '#4363d8' });
  });

  test('uploadAvatar sends the image as it is, with its type', async () => {
    const { fetch, requests } = scriptedFetch(json({ ...profile, avatar: '/api/users/u-1/avatar?v=1' }));
    const image = new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47])], { type: 'image/png' });
    const answer = await new AccountsApi({ fetch }).uploadAvatar('access-1', image);
    assert.equal(answer.avatar, '/api/users/u-1/avatar?v=1');
    assert.equal(requests[0].url, '/api/me/avatar', 'without a baseUrl: this page’s server');
    assert.equal(requests[0].method, 'PUT');
    assert.equal(requests[0].body, image);
    assert.deepEqual(requests[0].headers, { Authorization: 'Bearer access-1', 'Content-Type': 'image/png' });
  });

  test("errors carry the HTTP status and the server's message; 429 its Retry-After", async () => {
    const { fetch } = scriptedFetch(
      failure(415, 'an avatar image must be PNG, JPEG or WebP (checked by content, not by name)'),
      failure(429, 'too many login attempts', { 'Retry-After': '12' }),
      new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
      new TypeError('fetch failed'),
    );
    const api = new AccountsApi({ baseUrl: BASE, fetch });
    await assert.rejects(api.uploadAvatar('t', new Uint8Array([1, 2, 3])), (error) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 415);
      assert.match(error.message, /PNG, JPEG or WebP/);
      assert.equal(error.refused, false);
      return true;
    });
    await assert.rejects(api.login({ username: 'ada', password: 'x' }), { status: 429, retryAfter: 12 });
    await assert.rejects(api.me('t'), { status: 502, message: 'Bad Gateway' });
    await assert.rejects(api.me('t'), (error) => error.status === 0 && /could not be reached/.test(error.message));
  });

  test('logout sends the refresh token, or else the access token; a 204 resolves', async () => {
    const { fetch, requests } = scriptedFetch(new Response(null, { status: 204 }), new Response(null, { status: 204 }));
    const api = new AccountsApi({ baseUrl: BASE, fetch });
    await api.logout({ refreshToken: 'refresh-1' });
    await api.logout({ accessToken: 'access-1' });
    assert.deepEqual(JSON.parse(requests[0].body), { refresh_token: 'refresh-1' });
    assert.equal(requests[1].headers.Authorization, 'Bearer access-1');
    assert.equal(requests[1].body, undefined);
  });
});

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  const clock = { time: start, now: () => clock.time };
  return clock;
}

describe('AuthSession', () => {
  test('hands out its token while fresh and refreshes it a little before it expires', async () => {
    const clock = manualClock();
    const { fetch, requests } = scriptedFetch(json(tokens(2)));
    const options = { now: clock.now, autoRefresh: false };
    const session = new AuthSession(new AccountsApi({ fetch }), { ...tokens(1), user: profile }, options);
    const stored = [];
    session.on('tokens', (saved) => stored.push(saved));
    assert.equal(await session.token(), 'access-1');
    clock.time += 839_000; // 14 min later: more than a minute left
    assert.equal(await session.token(), 'access-1');
    assert.equal(requests.length, 0);
    clock.time += 2_000; // less than a minute left
    const [first, second] = await Promise.all([session.token(), session.token()]);
    assert.equal(first, 'access-2');
    assert.equal(second, 'access-2');
    assert.equal(requests.length, 1, 'one refresh for both callers');
    assert.deepEqual(JSON.parse(requests[0].body), { refresh_token: 'refresh-1' });
    assert.equal(stored.length, 1);
    assert.equal(stored[0].refresh_token, 'refresh-2');
    assert.equal(stored[0].expires_at, clock.time + 900_000);
    assert.deepEqual(stored[0].user, profile);
  });

  test('a short-lived token is refreshed a fifth of its lifetime early, by the timer', async () => {
    const { fetch, requests } = scriptedFetch(json(tokens(2, 0.1)), json(tokens(3, 900)));
    const session = new AuthSession(new AccountsApi({ fetch }), tokens(1, 0.05));
    const refreshed = [];
    session.on('tokens', (saved) => refreshed.push(saved.access_token));
    const started = Date.now();
    while (refreshed.length < 2 && Date.now() - started < 2000) await new Promise((resolve) => setTimeout(resolve, 5));
    session.stop();
    assert.deepEqual(refreshed, ['access-2', 'access-3']);
    assert.equal(requests.length, 2);
    assert.equal(session.accessToken, 'access-3');
  });

  test('a refused refresh ends the session: token() rejects with 401 from then on', async () => {
    const clock = manualClock();
    const { fetch } = scriptedFetch(failure(401, 'the refresh token was revoked'));
    const session = new AuthSession(new AccountsApi({ fetch }), tokens(1), { now: clock.now, autoRefresh: false });
    const ended = [];
    session.on('ended', ({ error }) => ended.push(error.message));
    clock.time += 899_000;
    await assert.rejects(session.token(), { status: 401, message: 'the refresh token was revoked' });
    assert.deepEqual(ended, ['the refresh token was revoked']);
    assert.equal(session.active, false);
    await assert.rejects(session.token(), (error) => error.refused);
  });

  test('while the server is unreachable the still-valid token is used; once expired, token() rejects', async () => {
    const clock = manualClock();
    const { fetch } = scriptedFetch(new TypeError('fetch failed'), new TypeError('fetch failed'));
    const session = new AuthSession(new AccountsApi({ fetch }), tokens(1), { now: clock.now, autoRefresh: false });
    clock.time += 850_000;
    assert.equal(await session.token(), 'access-1');
    clock.time += 60_000;
    await assert.rejects(session.token(), (error) => error.status === 0 && !error.refused);
    assert.equal(session.active, true, 'a network failure does not end the session');
  });

  test('a session without a refresh token (a guest) ends when its token expires', async () => {
    const clock = manualClock();
    const guest = { access_token: 'guest-1', token_type: 'Bearer', expires_in: 900, guest: { id: 'g-1', name: 'G' } };
    const session = new AuthSession(new AccountsApi({ fetch: scriptedFetch().fetch }), guest, { now: clock.now });
    assert.equal(session.guest.name, 'G');
    assert.equal(session.user, null);
    clock.time += 899_999;
    assert.equal(await session.token(), 'guest-1');
    clock.time += 1;
    await assert.rejects(session.token(), { status: 401 });
  });

  test('toJSON restores the same session; profile changes update it; logout ends it on the server', async () => {
    const clock = manualClock();
    const renamed = { ...profile, name: 'Ada L.' };
    const { fetch, requests } = scriptedFetch(json(renamed), new Response(null, { status: 204 }));
    const api = new AccountsApi({ fetch });
    const first = new AuthSession(api, { ...tokens(1), user: profile }, { now: clock.now, autoRefresh: false });
    const saved = JSON.parse(JSON.stringify(first));
    clock.time += 10_000;
    const restored = new AuthSession(api, saved, { now: clock.now, autoRefresh: false });
    assert.equal(restored.expiresAt, first.expiresAt, 'the expiry is kept, not restarted');
    assert.equal(await restored.token(), 'access-1');
    const profiles = [];
    restored.on('profile', (changed) => profiles.push(changed.name));
    assert.equal((await restored.updateProfile({ name: 'Ada L.' })).name, 'Ada L.');
    assert.deepEqual(profiles, ['Ada L.']);
    assert.equal(restored.user.name, 'Ada L.');

    const ended = [];
    restored.on('ended', ({ error }) => ended.push(error));
    await restored.logout();
    assert.deepEqual(JSON.parse(requests[1].body), { refresh_token: 'refresh-1' });
    assert.deepEqual(ended, [null]);
    await assert.rejects(restored.token(), { status: 401 });
  });
});
