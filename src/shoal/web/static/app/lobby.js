// The lobby: room name, display name and colour, then "Join as guest". The room comes from `?room=` when
// the link has one; name and colour are remembered in this browser.
import { PALETTE } from './objects.js';

const REMEMBERED = 'shoal.profile';

const form = () => document.getElementById('lobby-form');
const field = (name) => document.getElementById(name);

/** Fill the form (`?room=`, then what this browser remembers) and explain the missing HTTPS when it matters. */
export function showLobby() {
  const saved = remembered();
  field('room').value = new URLSearchParams(location.search).get('room') || 'lobby';
  field('name').value = saved.name ?? '';
  field('color').value = saved.color ?? PALETTE[Math.floor(Math.random() * PALETTE.length)];
  document.getElementById('insecure').hidden = window.isSecureContext;
  field('join').disabled = false;
}

/** The next submitted choice `{room, name, color}`; the button stays disabled until `lobbyError`. */
export function lobbyChoice() {
  return new Promise((resolve) => {
    form().addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        field('join').disabled = true;
        const choice = {
          room: field('room').value.trim(),
          name: field('name').value.trim(),
          color: field('color').value,
        };
        localStorage.setItem(REMEMBERED, JSON.stringify({ name: choice.name, color: choice.color }));
        resolve(choice);
      },
      { once: true },
    );
  });
}

/** Show why joining failed and let the user try again. */
export function lobbyError(message) {
  field('join').disabled = false;
  let note = document.getElementById('lobby-error');
  if (!note) {
    note = document.createElement('p');
    note.id = 'lobby-error';
    note.className = 'note';
    document.getElementById('lobby-form').after(note);
  }
  note.textContent = message;
}

export function hideLobby(room) {
  document.getElementById('lobby').hidden = true;
  const url = new URL(location.href);
  url.searchParams.set('room', room);
  history.replaceState(null, '', url); // the address bar is now a link to this room
}

function remembered() {
  try {
    return JSON.parse(localStorage.getItem(REMEMBERED)) ?? {};
  } catch {
    return {};
  }
}
