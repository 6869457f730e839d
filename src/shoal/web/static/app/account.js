// Who this tab is logged in as: an `AuthSession` (the SDK refreshes its access token before it expires), kept
// in sessionStorage so that a reload stays logged in. Per tab on purpose: two tabs sharing one refresh token
// would both refresh it, and the server reads the second use of a refresh token as theft and ends the session.
import { AccountsApi, AuthSession, Emitter } from 'shoal';

const STORAGE_KEY = 'shoal.session';

/** The tab's login. Emits `change` (`{user, reason}`) when someone logs in or out, or the session ends by itself. */
export class Account extends Emitter {
  constructor({ api = new AccountsApi(), storage = sessionStorage } = {}) {
    super();
    this.api = api;
    this.storage = storage;
    /** @type {AuthSession | null} */
    this.session = null;
    /** Access tokens refreshed so far in this page (shown by `shoalDebug.account()`). */
    this.refreshes = 0;
    const saved = this.saved();
    if (saved) this.adopt(new AuthSession(api, saved));
  }

  /** The logged-in account's profile, or null for a guest. */
  get user() {
    return this.session?.user ?? null;
  }

  /** `ShoalClient`'s `getToken` while logged in, else undefined (a guest connects without a token). */
  get getToken() {
    const session = this.session;
    return session ? () => session.token() : undefined;
  }

  /** Log in; rejects with the server's `ApiError` (401 wrong username or password, 429 too many attempts). */
  async logIn(credentials) {
    this.adopt(new AuthSession(this.api, await this.api.login(credentials)));
  }

  /** Create an account and log in to it. */
  async register(credentials) {
    this.adopt(new AuthSession(this.api, await this.api.register(credentials)));
  }

  /** End the session on the server too, so its tokens stop working everywhere. */
  async logOut() {
    const session = this.session;
    this.forget('logged out');
    await session?.logout().catch((error) => console.warn('logout:', error.message)); // it is over here anyway
  }

  /** Drop the session here (the server refused it): the tab is a guest again. */
  forget(reason) {
    if (!this.session) return;
    this.session.stop();
    this.session = null;
    this.storage.removeItem(STORAGE_KEY);
    this.emit('change', { user: null, reason });
  }

  adopt(session) {
    this.session?.stop();
    this.session = session;
    const save = () => this.storage.setItem(STORAGE_KEY, JSON.stringify(session));
    session.on('tokens', () => {
      this.refreshes += 1;
      save();
    });
    session.on('profile', (user) => {
      save();
      this.emit('change', { user, reason: 'profile' });
    });
    session.on('ended', ({ error }) => this.session === session && this.forget(error?.message ?? 'logged out'));
    save();
    this.emit('change', { user: session.user, reason: 'logged in' });
  }

  saved() {
    try {
      const saved = JSON.parse(this.storage.getItem(STORAGE_KEY));
      return typeof saved?.access_token === 'string' ? saved : null;
    } catch {
      return null;
    }
  }
}
