/**
 * Accounts over Shoal's REST API (docs/accounts.md): `AccountsApi`, thin `fetch` wrappers, and `AuthSession`,
 * which keeps one login's access token fresh and hands it to a `ShoalClient` for each connection.
 *
 *   import { AccountsApi, AuthSession, ShoalClient } from '/sdk/shoal.js';
 *   const api = new AccountsApi();                              // this page's server; or { baseUrl }
 *   const session = new AuthSession(api, await api.login({ username: 'ada', password }));
 *   const client = new ShoalClient({ getToken: () => session.token() });
 *
 * A failed request rejects with an `ApiError`: the HTTP status and the server's message (its JSON error body),
 * `retryAfter` on a 429, status 0 when the server could not be reached.
 */

import { Emitter } from './events.js';

const REFRESH_MARGIN = 60_000; // refresh this long before the access token expires...
const REFRESH_FRACTION = 0.2; // ...or this fraction of its lifetime before, when that is shorter
const RETRY_REFRESH_AFTER = 10_000; // after a refresh failed for a reason other than a refusal

/** A refused or failed request: `status` (0 when the server was not reached) and the server's message. */
export class ApiError extends Error {
  constructor(status, message, { retryAfter = null } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    /** Seconds to wait before trying again (from `Retry-After`, on a 429), or null. */
    this.retryAfter = retryAfter;
  }

  /** True when the server refused the credentials (401, 403): trying again with them cannot help. */
  get refused() {
    return this.status === 401 || this.status === 403;
  }
}

/** Shoal's account endpoints, one method each. Tokens are passed in; nothing is stored here. */
export class AccountsApi {
  /**
   * @param {{baseUrl?: string, fetch?: typeof fetch}} [options] `baseUrl` is the server's HTTP origin (default
   *   '': this page's server); `fetch` defaults to the global one.
   */
  constructor({ baseUrl = '', fetch = (...args) => globalThis.fetch(...args) } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.fetch = fetch;
  }

  /** `POST /api/auth/register`: a new account, logged in (201). */
  register({ username, password, name }) {
    return this.request('POST', '/api/auth/register', { json: { username, password, name } });
  }

  /** `POST /api/auth/login`: tokens and the profile; 401 for a wrong password, 429 past the attempt limits. */
  login({ username, password }) {
    return this.request('POST', '/api/auth/login', { json: { username, password } });
  }

  /** `POST /api/auth/refresh`: new tokens; the refresh token given stops working. */
  refresh(refreshToken) {
    return this.request('POST', '/api/auth/refresh', { json: { refresh_token: refreshToken } });
  }

  /** `POST /api/auth/logout`: ends the session of `refreshToken` (or of `accessToken`) on every server. */
  async logout({ refreshToken, accessToken }) {
    if (refreshToken) await this.request('POST', '/api/auth/logout', { json: { refresh_token: refreshToken } });
    else await this.request('POST', '/api/auth/logout', { token: accessToken });
  }

  /** `POST /api/auth/guest`: a guest token with the given (or a generated) name; 403 when the server wants accounts. */
  guest(name) {
    return this.request('POST', '/api/auth/guest', { json: { name } });
  }

  /** `POST /api/auth/ticket`: a single-use WebSocket ticket valid for 60 s, for `?token=` in a URL. */
  ticket(accessToken) {
    return this.request('POST', '/api/auth/ticket', { token: accessToken });
  }

  /** `GET /api/me`: the profile of the token's account. */
  me(accessToken) {
    return this.request('GET', '/api/me', { token: accessToken });
  }

  /** `PATCH /api/me`: change the display name and/or colour (`#rrggbb`); resolves with the new profile. */
  updateProfile(accessToken, { name, color }) {
    return this.request('PATCH', '/api/me', { token: accessToken, json: { name, color } });
  }

  /**
   * `PUT /api/me/avatar`: the image (a `Blob`/`File`, or bytes) as it is; resolves with the new profile. The
   * server checks it by content: 415 unless PNG, JPEG or WebP, 413 over its size limit.
   */
  uploadAvatar(accessToken, image) {
    return this.request('PUT', '/api/me/avatar', { token: accessToken, body: image, type: image.type });
  }

  /** `GET /api/users/{id}`: anyone's public profile (name, colour, avatar URL). */
  user(id) {
    return this.request('GET', `/api/users/${encodeURIComponent(id)}`);
  }

  /**
   * One request: `json` is sent as a JSON body (undefined fields left out), `body` as it is with `type`.
   * Resolves with the parsed JSON answer (null for 204); rejects with `ApiError`.
   */
  async request(method, path, { token, json, body, type } = {}) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      body = JSON.stringify(json);
      type = 'application/json';
    }
    if (body !== undefined) headers['Content-Type'] = type || 'application/octet-stream';
    let response;
    try {
      response = await this.fetch(this.baseUrl + path, { method, headers, body });
    } catch (error) {
      throw new ApiError(0, `the server could not be reached (${error?.message ?? error})`);
    }
    const answer = await parsedJson(response);
    if (response.ok) return answer;
    const retryAfter = Number(response.headers.get('Retry-After')) || null;
    const message = answer?.error?.message || response.statusText || `HTTP ${response.status}`;
    throw new ApiError(response.status, message, { retryAfter });
  }
}

async function parsedJson(response) {
  if (response.status === 204 || !response.headers.get('Content-Type')?.includes('application/json')) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/**
 * One login: its tokens, kept fresh, and its profile. The access token is refreshed a little before it
 * expires (a minute, or a fifth of its lifetime when shorter), by a timer and again on demand in `token()`,
 * since background tabs delay timers. A session without a refresh token (a guest or an external provider's
 * token) simply ends when its token expires.
 *
 * Events: `tokens` (after each refresh: `toJSON()`, to store it), `profile` (the new profile), `ended`
 * (`{error}`: the server refused the refresh, or `logout()`; log in again).
 */
export class AuthSession extends Emitter {
  /**
   * @param {AccountsApi} api
   * @param {object} tokens A token answer (`login`, `register`, `refresh`, `guest`) or a saved `toJSON()`.
   * @param {{now?: () => number, autoRefresh?: boolean}} [options] `autoRefresh` (default true) runs the timer.
   */
  constructor(api, tokens, { now = Date.now, autoRefresh = true } = {}) {
    super();
    this.api = api;
    this.now = now;
    this.autoRefresh = autoRefresh;
    /** The account's profile `{id, username, name, color, avatar, provider}`; null for a guest token. */
    this.user = tokens.user ?? null;
    /** For a guest token: `{id, name, color}`. */
    this.guest = tokens.guest ?? null;
    /** False once the session ended (refused refresh, or logout). */
    this.active = true;
    this._timer = null;
    this._refreshing = null;
    this._take(tokens);
  }

  /** The access token, refreshed first if it is about to expire. Rejects with `ApiError` (401) once it cannot be. */
  async token() {
    if (!this.active) throw new ApiError(401, 'the session has ended: log in again');
    if (this.now() < this.refreshAt) return this.accessToken;
    if (this.refreshToken) {
      try {
        await this.refresh();
      } catch (error) {
        if (!this.active || this.now() >= this.expiresAt) throw error; // else the current one still works a while
      }
    } else if (this.now() >= this.expiresAt) {
      throw new ApiError(401, 'the access token has expired: log in again');
    }
    return this.accessToken;
  }

  /** Swap the refresh token for new tokens now. Concurrent calls share one request. */
  refresh() {
    if (!this.active) return Promise.reject(new ApiError(401, 'the session has ended: log in again'));
    if (!this.refreshToken) return Promise.reject(new ApiError(401, 'this session cannot be refreshed'));
    this._refreshing ??= this.api
      .refresh(this.refreshToken)
      .then(
        (tokens) => {
          this._take(tokens);
          this.emit('tokens', this.toJSON());
        },
        (error) => {
          if (error instanceof ApiError && error.refused) this._end(error);
          else this._schedule(RETRY_REFRESH_AFTER);
          throw error;
        },
      )
      .finally(() => (this._refreshing = null));
    return this._refreshing;
  }

  /** `GET /api/me`: the current profile (also kept in `user`). */
  async me() {
    return this._profile(await this.api.me(await this.token()));
  }

  /** `PATCH /api/me {name?, color?}`. Rooms show the change from the next connection. */
  async updateProfile(changes) {
    return this._profile(await this.api.updateProfile(await this.token(), changes));
  }

  /** `PUT /api/me/avatar`. Rooms show the new image from the next connection. */
  async uploadAvatar(image) {
    return this._profile(await this.api.uploadAvatar(await this.token(), image));
  }

  /** End the session on the server (its tokens stop working everywhere) and here. */
  async logout() {
    const { refreshToken, accessToken } = this;
    this._end(null);
    await this.api.logout(refreshToken ? { refreshToken } : { accessToken });
  }

  /** Stop the refresh timer without ending the session (e.g. before dropping this object). */
  stop() {
    clearTimeout(this._timer);
    this._timer = null;
  }

  /** What to store to restore the session later (`new AuthSession(api, saved)`): tokens are secrets. */
  toJSON() {
    return {
      access_token: this.accessToken,
      refresh_token: this.refreshToken,
      expires_in: this.lifetime / 1000,
      expires_at: this.expiresAt,
      user: this.user,
      guest: this.guest,
    };
  }

  _take(tokens) {
    this.accessToken = tokens.access_token;
    this.refreshToken = tokens.refresh_token ?? null;
    this.lifetime = tokens.expires_in * 1000;
    /** When the access token expires, in ms since the epoch (by this machine's clock). */
    this.expiresAt = tokens.expires_at ?? this.now() + this.lifetime;
    this.refreshAt = this.expiresAt - Math.min(REFRESH_MARGIN, this.lifetime * REFRESH_FRACTION);
    if (this.refreshToken) this._schedule(this.refreshAt - this.now());
  }

  _schedule(delay) {
    this.stop();
    if (!this.autoRefresh || !this.active) return;
    this._timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(0, delay));
  }

  _profile(profile) {
    this.user = profile;
    this.emit('profile', profile);
    return profile;
  }

  _end(error) {
    if (!this.active) return;
    this.active = false;
    this.stop();
    this.emit('ended', { error });
  }
}
