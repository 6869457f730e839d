// The heads-up display: connection state, round-trip time, the room and who is in it (with their pictures),
// the account logged in, and a banner that says clearly when the connection dropped and when the next reconnect
// attempt comes, or why the server refused us for good.
import { CloseCode } from 'shoal';

import { showPicture } from './picture.js';
import { advise, sentence } from './text.js';

const STATE_LABELS = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

export class Hud {
  /** `user`: the logged-in account's profile (null for a guest), shown above the "Log out" button. */
  constructor(client, user = null, elements = hudElements()) {
    this.client = client;
    this.elements = elements;
    this.countdown = null;
    this.bannerTimer = null;
    client.on('state', (change) => this.stateChanged(change));
    client.on('clock', ({ rtt }) => (elements.rtt.textContent = `${Math.round(rtt)} ms`));
    for (const event of ['joined', 'member_joined', 'member_left', 'member_updated', 'left']) {
      client.on(event, () => this.listPeople());
    }
    elements.account.hidden = !user;
    if (user) elements.user.textContent = user.username ? `@${user.username}` : user.name;
  }

  show(room) {
    this.elements.room.textContent = room;
    this.elements.hud.hidden = false;
    this.stateChanged({ state: this.client.state });
    this.listPeople();
  }

  stateChanged({ state, previous, retryIn, code, reason, error }) {
    const { state: label, rtt } = this.elements;
    label.textContent = STATE_LABELS[state] ?? state;
    label.className = `state ${state}`;
    clearInterval(this.countdown);
    if (state === 'reconnecting' && retryIn !== undefined) {
      const at = performance.now() + retryIn;
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((at - performance.now()) / 1000));
        this.banner(seconds > 0 ? `Connection lost. Reconnecting in ${seconds} s…` : 'Connection lost. Reconnecting…');
      };
      tick();
      this.countdown = setInterval(tick, 250);
      rtt.textContent = '';
    } else if (state === 'connected' && previous === 'reconnecting') {
      this.banner('Reconnected', 2500, 'ok');
    } else if (state === 'closed') {
      this.banner(farewell({ code, reason, error }));
    }
  }

  /** Show `text`; hide it after `hideAfter` ms when given. */
  banner(text, hideAfter = 0, tone = 'bad') {
    const { banner } = this.elements;
    clearTimeout(this.bannerTimer);
    banner.textContent = text;
    banner.dataset.tone = tone;
    banner.hidden = false;
    if (hideAfter) this.bannerTimer = setTimeout(() => (banner.hidden = true), hideAfter);
  }

  listPeople() {
    const { people } = this.elements;
    const members = [...this.client.members.values()].sort((a, b) =>
      a.id === this.client.id ? -1 : b.id === this.client.id ? 1 : a.name.localeCompare(b.name),
    );
    people.replaceChildren(
      ...members.map((member) => {
        const item = document.createElement('li');
        const picture = document.createElement('span');
        picture.className = 'picture small';
        showPicture(picture, member);
        const name = document.createElement('span');
        name.textContent = member.name;
        item.append(picture, name);
        if (member.id === this.client.id) {
          const you = document.createElement('span');
          you.className = 'you';
          you.textContent = '(you)';
          item.append(you);
        }
        return item;
      }),
    );
    this.elements.count.textContent = `${members.length} ${members.length === 1 ? 'person' : 'people'}`;
  }
}

/** What to tell the user when the connection ended for good. */
function farewell({ code, reason, error }) {
  const why = error?.message || reason;
  if (code === CloseCode.AUTH_FAILED)
    return `Your login was refused: ${advise(why, 'Reload the page to log in again.')}`;
  if (code === CloseCode.UNSUPPORTED_VERSION) return 'This page is older than the server: reload it.';
  const detail = why ? `: ${sentence(why)}` : code ? ` (${code}).` : '.';
  return `Disconnected${detail} Reload the page to join again.`;
}

function hudElements() {
  const byId = (id) => document.getElementById(id);
  return {
    hud: byId('hud'),
    state: byId('hud-state'),
    rtt: byId('hud-rtt'),
    room: byId('hud-room'),
    people: byId('hud-people'),
    count: byId('hud-count'),
    banner: byId('banner'),
    account: byId('hud-account'),
    user: byId('hud-user'),
  };
}
