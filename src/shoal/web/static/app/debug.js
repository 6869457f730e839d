// `window.shoalDebug`: a small read-only view of what this page shows, for browser tests and for curious
// developers in the console. It exists from the lobby on (before any room) and returns plain copies; nothing
// here changes the app, and no token is ever shown.
import * as THREE from 'three';

const round = (value) => Math.round(value * 1000) / 1000;
const vector = (v) => [round(v.x), round(v.y), round(v.z)];

/**
 * @param {object} sources
 * @param {() => ({client, avatars, objects, pose} | null)} sources.room What the joined room shows, or null.
 * @param {() => (import('shoal').ShoalClient | null)} sources.client The latest client, joined or not.
 * @param {import('./account.js').Account} sources.account
 */
export function exposeDebugHook({ room, client: latestClient, account, camera, renderer, frames }) {
  const avatarViews = () => [...(room()?.avatars.views.values() ?? [])];
  const objectViews = () => [...(room()?.objects.views.entries() ?? [])];
  const hook = {
    /**
     * Connection state, member id, room, round-trip time, and how the last connection ended (`close`: code,
     * reason and the server's error code and message), e.g. a refused token: `{code: 4001, error: 'auth_failed'}`.
     */
    connection: () => {
      const client = latestClient();
      if (!client) return { state: 'idle', id: null, room: null, rtt: null, close: null };
      const close = client.lastClose && closeSummary(client.lastClose);
      return { state: client.state, id: client.id, room: client.room, rtt: client.rtt, close };
    },
    /** The account this tab is logged in as (`user`: its profile, null for a guest), and its token's expiry. */
    account: () => {
      const session = account.session;
      return {
        user: session?.user ? { ...session.user } : null,
        expiresAt: session?.expiresAt ?? null,
        refreshes: account.refreshes,
      };
    },
    /**
     * This user's avatar as sent to the room: head and hand positions (null for an untracked hand), and `joints`:
     * the wrists of the hand joints sent last (null for a hand without joints, both null once tracking stopped).
     */
    self: () => {
      const sent = room()?.pose;
      const position = (part) => (sent?.[part] ? sent[part].pos.map(round) : null);
      const joints = room()?.joints.sent;
      return {
        head: vector(camera.getWorldPosition(new THREE.Vector3())),
        left: position('left'),
        right: position('right'),
        joints: { left: wrist(joints?.left), right: wrist(joints?.right) },
      };
    },
    /**
     * Every remote avatar as drawn this frame (interpolated): head and hand positions (null for a hidden hand),
     * its account id, and its profile picture: `image` (URL or null), `imageLoaded` (its texture is shown) and
     * `imageState` ('none', 'loading', 'loaded' or 'failed': without a loaded picture the avatar shows its colour).
     */
    avatars: () =>
      avatarViews().map((view) => ({
        id: view.id,
        name: view.name,
        user: view.user,
        visible: view.root.visible,
        head: vector(view.head.position),
        left: view.hands.left.visible ? vector(view.hands.left.position) : null,
        right: view.hands.right.visible ? vector(view.hands.right.position) : null,
        image: view.image,
        imageLoaded: view.imageState === 'loaded',
        imageState: view.imageState,
      })),
    /**
     * Every remote member's hand joints as drawn this frame (interpolated, on the avatar's hands): whether
     * the spheres show (`visible`: the avatar shows and a hand is tracked), how many (`count`: 25 per tracked hand)
     * and each hand's wrist position as drawn (null when untracked).
     */
    joints: () =>
      avatarViews().map((view) => ({
        id: view.id,
        name: view.name,
        visible: view.root.visible && view.joints.mesh.visible,
        count: view.joints.mesh.count,
        left: wrist(view.joints.hands.left),
        right: wrist(view.joints.hands.right),
      })),
    /** Every shared object as drawn: colour (`#rrggbb`), position and owner (null when unowned). */
    entities: () =>
      objectViews().map(([id, mesh]) => ({
        id,
        kind: mesh.userData.kind,
        color: `#${mesh.material.color.getHexString()}`,
        pos: vector(mesh.position),
        owner: room().client.entities.get(id)?.owner ?? null,
      })),
    /** Where entity `id` appears on screen, in CSS pixels from the top left, or null when not in view. */
    screenPosition: (id) => {
      const mesh = room()?.objects.views.get(id);
      if (!mesh) return null;
      const projected = mesh.getWorldPosition(new THREE.Vector3()).project(camera);
      if (Math.abs(projected.x) > 1 || Math.abs(projected.y) > 1 || projected.z > 1) return null;
      const rect = renderer.domElement.getBoundingClientRect();
      return {
        x: rect.left + ((projected.x + 1) / 2) * rect.width,
        y: rect.top + ((1 - projected.y) / 2) * rect.height,
      };
    },
    /** True while an immersive (VR or AR) session is running. */
    presenting: () => renderer.xr.isPresenting,
    /** Frames rendered so far. */
    frames: () => frames(),
  };
  Object.defineProperty(window, 'shoalDebug', { value: Object.freeze(hook), configurable: false, writable: false });
}

/** The wrist's position of a hand's joints, rounded, or null without a hand. */
function wrist(joints) {
  return joints ? joints[0].slice(0, 3).map(round) : null;
}

function closeSummary({ code, reason, error }) {
  return { code: code ?? null, reason: reason ?? '', error: error?.code ?? null, message: error?.message ?? null };
}
