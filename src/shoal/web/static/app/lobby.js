// The lobby: the room (from `?room=` when the link has one), then either a guest's name and colour, or the
// account this tab is logged in as (log in or register below; name, colour and picture then come from the
// account, editable in the profile panel). A guest's name and colour are remembered in this browser.
import { PALETTE } from './objects.js';
import { showPicture } from './picture.js';
import { advise, sentence } from './text.js';

const REMEMBERED = 'shoal.profile';

const field = (id) => document.getElementById(id);

export class Lobby {
  /**
   * @param {import('./account.js').Account} account
   * @param {{openProfile: () => void}} actions
   */
  constructor(account, { openProfile }) {
    this.account = account;
    account.on('change', ({ user, reason }) => {
      this.render();
      if (!user && reason && reason !== 'logged out')
        this.error(`You were logged out: ${advise(reason, 'Log in again.')}`);
    });
    field('account-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.logIn(event.submitter?.value === 'register' ? 'register' : 'login');
    });
    field('logout').addEventListener('click', () => account.logOut());
    field('edit-profile').addEventListener('click', openProfile);
  }

  /** Fill the form and explain the missing HTTPS when it matters. */
  show() {
    const saved = remembered();
    field('room').value = new URLSearchParams(location.search).get('room') || 'lobby';
    field('name').value = saved.name ?? '';
    field('color').value = saved.color ?? PALETTE[Math.floor(Math.random() * PALETTE.length)];
    field('insecure').hidden = window.isSecureContext;
    field('lobby').hidden = false;
    this.render();
  }

  /** Show the guest fields or the logged-in account, and say on the button who joins. */
  render() {
    const user = this.account.user;
    field('guest-fields').hidden = Boolean(user);
    field('account').hidden = Boolean(user);
    field('signed-in').hidden = !user;
    field('join').textContent = user ? `Join as ${user.name}` : 'Join as guest';
    field('join').disabled = false;
    if (!user) return;
    field('me-name').textContent = user.name;
    field('me-username').textContent = user.username ? `@${user.username}` : '';
    showPicture(field('me-picture'), user);
  }

  /** The next submitted choice `{room, name, color}`; the button stays disabled until `error`. */
  choice() {
    return new Promise((resolve) => {
      field('lobby-form').addEventListener(
        'submit',
        (event) => {
          event.preventDefault();
          field('join').disabled = true;
          this.error('');
          const choice = {
            room: field('room').value.trim(),
            name: field('name').value.trim(),
            color: field('color').value,
          };
          if (!this.account.user)
            localStorage.setItem(REMEMBERED, JSON.stringify({ name: choice.name, color: choice.color }));
          resolve(choice);
        },
        { once: true },
      );
    });
  }

  /** Show why joining (or logging in) failed, and let the user try again; '' clears the message. */
  error(message) {
    if (message) field('join').disabled = false;
    field('lobby-error').textContent = message;
    field('lobby-error').hidden = !message;
  }

  hide(room) {
    field('lobby').hidden = true;
    const url = new URL(location.href);
    url.searchParams.set('room', room);
    history.replaceState(null, '', url); // the address bar is now a link to this room
  }

  async logIn(mode) {
    const credentials = { username: field('username').value.trim(), password: field('password').value };
    const buttons = [field('login'), field('register')];
    for (const button of buttons) button.disabled = true;
    this.error('');
    try {
      if (mode === 'register') await this.account.register(credentials);
      else await this.account.logIn(credentials);
      field('password').value = '';
    } catch (error) {
      const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : '';
      this.error(
        `${mode === 'register' ? 'Could not register' : 'Could not log in'}: ${sentence(error.message)}${wait}`,
      );
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(REMEMBERED)) ?? {};
  } catch {
    return {};
  }
}
