// The profile panel: display name, colour and avatar image of the logged-in account. An image is uploaded as
// soon as it is chosen, as it is: the server checks it (by content) and its refusal is shown word for word.
import { showPicture } from './picture.js';
import { sentence } from './text.js';

const field = (id) => document.getElementById(id);

export class ProfilePanel {
  /** @param {import('./account.js').Account} account */
  constructor(account) {
    this.account = account;
    this.dialog = field('profile');
    field('profile-form').addEventListener('submit', (event) => {
      event.preventDefault(); // stay open: the outcome is shown here
      this.save();
    });
    field('profile-close').addEventListener('click', () => this.dialog.close());
    field('avatar-file').addEventListener('change', () => this.upload());
    account.on('change', ({ user }) => (user ? this.fill(user) : this.dialog.close()));
  }

  /** Open with the account's current profile (fetched again: it may have changed on another device). */
  async open() {
    const session = this.account.session;
    if (!session) return;
    this.fill(session.user);
    this.status('');
    this.dialog.showModal();
    try {
      await session.me();
    } catch (error) {
      this.status(`Could not load your profile: ${sentence(error.message)}`, 'bad');
    }
  }

  fill(user) {
    field('profile-name').value = user.name;
    field('profile-color').value = user.color;
    showPicture(field('profile-picture'), user);
  }

  async save() {
    await this.attempt('Saved.', 'Could not save', (session) =>
      session.updateProfile({ name: field('profile-name').value.trim(), color: field('profile-color').value }),
    );
  }

  async upload() {
    const input = field('avatar-file');
    const [image] = input.files;
    if (!image) return;
    this.status('Uploading…');
    await this.attempt('Your new picture is saved.', 'The image was refused', (session) => session.uploadAvatar(image));
    input.value = ''; // choosing the same file again is a new attempt
  }

  /** Run a change with the session, then say how it went; Save and the upload wait meanwhile. */
  async attempt(success, failure, change) {
    const session = this.account.session;
    if (!session) return;
    const controls = [field('profile-save'), field('avatar-file')];
    for (const control of controls) control.disabled = true;
    try {
      await change(session);
      this.status(success, 'ok');
    } catch (error) {
      this.status(`${failure}: ${sentence(error.message)}`, 'bad');
    } finally {
      for (const control of controls) control.disabled = false;
    }
  }

  status(text, tone = '') {
    const status = field('profile-status');
    status.textContent = text;
    status.dataset.tone = tone;
    status.hidden = !text;
  }
}
