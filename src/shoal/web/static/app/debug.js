// `window.shoalDebug`: a small read-only view of what this page shows, for browser tests and for curious
// developers in the console. It returns plain copies; nothing here changes the app.
import * as THREE from 'three';

const round = (value) => Math.round(value * 1000) / 1000;
const vector = (v) => [round(v.x), round(v.y), round(v.z)];

export function exposeDebugHook({ client, avatars, objects, camera, renderer, frames, pose }) {
  const hook = {
    /** Connection state, member id, room and round-trip time. */
    connection: () => ({ state: client.state, id: client.id, room: client.room, rtt: client.rtt }),
    /** This user's avatar as sent to the room: head and hand positions (null for an untracked hand). */
    self: () => {
      const sent = pose();
      const position = (part) => (sent?.[part] ? sent[part].pos.map(round) : null);
      return {
        head: vector(camera.getWorldPosition(new THREE.Vector3())),
        left: position('left'),
        right: position('right'),
      };
    },
    /** Every remote avatar as drawn this frame (interpolated): head and hand positions, null for a hidden hand. */
    avatars: () =>
      [...avatars.views.values()].map((view) => ({
        id: view.id,
        name: view.name,
        visible: view.root.visible,
        head: vector(view.head.position),
        left: view.hands.left.visible ? vector(view.hands.left.position) : null,
        right: view.hands.right.visible ? vector(view.hands.right.position) : null,
      })),
    /** Every shared object as drawn: colour (`#rrggbb`), position and owner (null when unowned). */
    entities: () =>
      [...objects.views.entries()].map(([id, mesh]) => ({
        id,
        kind: mesh.userData.kind,
        color: `#${mesh.material.color.getHexString()}`,
        pos: vector(mesh.position),
        owner: client.entities.get(id)?.owner ?? null,
      })),
    /** Where entity `id` appears on screen, in CSS pixels from the top left, or null when not in view. */
    screenPosition: (id) => {
      const mesh = objects.views.get(id);
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
