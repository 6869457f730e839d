// The heads-up display: connection state, round-trip time, the room and who is in it, and a banner that
// says clearly when the connection dropped and when the next reconnect attempt comes.

const STATE_LABELS = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

export class Hud {
  constructor(client, elements = hudElements()) {
    this.client = client;
    this.elements = elements;
    this.countdown = null;
    this.bannerTimer = null;
    client.on('state', (change) => this.stateChanged(change));
    client.on('clock', ({ rtt }) => (elements.rtt.textContent = `${Math.round(rtt)} ms`));
    for (const event of ['joined', 'member_joined', 'member_left', 'left']) client.on(event, () => this.listPeople());
  }

  show(room) {
    this.elements.room.textContent = room;
    this.elements.hud.hidden = false;
    this.stateChanged({ state: this.client.state });
  }

  stateChanged({ state, previous, retryIn, code, reason }) {
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
      const why = reason ? `: ${reason}` : code ? ` (${code})` : '';
      this.banner(`Disconnected${why}. Reload the page to join again.`);
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
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = member.color;
        const name = document.createElement('span');
        name.textContent = member.name;
        item.append(swatch, name);
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
  };
}
