// Shared objects, as Shoal entities: cubes that change colour for everyone when clicked, and balls you pick
// up and carry while everyone watches them move (ownership claimed on grab, released once dropped).
import * as THREE from 'three';

import { restingHeight, TABLES } from './scene.js';

export const PALETTE = ['#e6194b', '#f58231', '#ffe119', '#3cb44b', '#42d4f4', '#4363d8', '#911eb4', '#f032e6'];

const CUBE_SIZE = 0.26;
const BALL_RADIUS = 0.1;
const GRAVITY = 9.8;

/** What each entity kind looks like and what a user does with it. Unknown kinds show as a grey box. */
const KINDS = {
  cube: {
    geometry: () => new THREE.BoxGeometry(CUBE_SIZE, CUBE_SIZE, CUBE_SIZE),
    action: 'recolour',
    halfHeight: CUBE_SIZE / 2,
  },
  ball: { geometry: () => new THREE.SphereGeometry(BALL_RADIUS, 32, 16), action: 'grab', halfHeight: BALL_RADIUS },
};
const UNKNOWN_KIND = { geometry: () => new THREE.BoxGeometry(0.2, 0.2, 0.2), action: null, halfHeight: 0.1 };

/** The objects a new room starts with: four cubes on the long table, three balls on the small one. */
export function defaultObjects() {
  const [long, small] = TABLES;
  const cubes = [-0.75, -0.25, 0.25, 0.75].map((dx, i) => ({
    id: `cube-${i + 1}`,
    kind: 'cube',
    pos: [long.x + dx, long.height + CUBE_SIZE / 2, long.z],
    props: { color: PALETTE[i * 2] },
  }));
  const balls = [-0.45, 0, 0.45].map((dz, i) => ({
    id: `ball-${i + 1}`,
    kind: 'ball',
    pos: [small.x, small.height + BALL_RADIUS, small.z + dz],
    props: { color: PALETTE[i * 2 + 1] },
  }));
  // persistent: the room keeps them after everyone leaves; unowned: anyone may click or claim them
  return [...cubes, ...balls].map((spec) => ({ ...spec, persistent: true, owned: false }));
}

const _matrix = new THREE.Matrix4();
const _position = new THREE.Vector3();
const _quaternion = new THREE.Quaternion();
const _scale = new THREE.Vector3();

export class SharedObjects {
  constructor(scene, client, invalidate = () => {}) {
    this.scene = scene;
    this.client = client;
    this.invalidate = invalidate;
    /** @type {Map<string, THREE.Mesh>} */
    this.views = new Map();
    /** What we carry: entity id -> {holder: Object3D, offset: Matrix4 (the entity in the holder's frame)}. */
    this.held = new Map();
    /** What we dropped and is still falling: entity id -> vertical speed (m/s). */
    this.falling = new Map();
    /** Grabs waiting for the server's answer: holder -> entity id (cleared if the user lets go first). */
    this.reaching = new Map();
    client.on('entity_added', ({ entity }) => this.add(entity));
    client.on('entity_changed', ({ entity }) => this.restyle(entity));
    client.on('entity_removed', ({ entity }) => this.remove(entity.id));
    client.on('state', ({ state }) => {
      if (state !== 'connected') this.held.clear(); // ownership ends with the connection
    });
  }

  /**
   * Create the default objects when the room has none, one at a time: if someone else is doing the same
   * right now, our first `entity_exists` stops us.
   */
  async seedIfEmpty() {
    if (this.client.entities.size > 0) return;
    for (const spec of defaultObjects()) {
      try {
        await this.client.createEntity(spec);
      } catch (error) {
        console.info('not seeding the room:', error.code ?? error);
        return;
      }
    }
  }

  add(entity) {
    this.remove(entity.id);
    const kind = KINDS[entity.kind] ?? UNKNOWN_KIND;
    const mesh = new THREE.Mesh(kind.geometry(), new THREE.MeshStandardMaterial({ roughness: 0.35 }));
    mesh.name = `entity-${entity.id}`;
    mesh.userData = { entityId: entity.id, kind: entity.kind, action: kind.action };
    this.views.set(entity.id, mesh);
    this.scene.add(mesh);
    this.restyle(entity);
    this.place(mesh, entity);
  }

  remove(id) {
    const mesh = this.views.get(id);
    if (!mesh) return;
    this.views.delete(id);
    this.held.delete(id);
    this.falling.delete(id);
    this.scene.remove(mesh);
    mesh.geometry.dispose();
    mesh.material.dispose();
    this.invalidate();
  }

  /** Colour from `props.color`; a glow in the holder's colour while someone else owns it. */
  restyle(entity) {
    const mesh = this.views.get(entity.id);
    if (!mesh) return;
    mesh.material.color.set(typeof entity.props?.color === 'string' ? entity.props.color : '#9aa3ad');
    const holder =
      entity.owner !== undefined && entity.owner !== this.client.id ? this.client.members.get(entity.owner) : null;
    mesh.material.emissive.set(holder ? holder.color : '#000000');
    mesh.material.emissiveIntensity = holder ? 0.35 : 0;
    mesh.userData.drawn = null; // the change may have moved it too
    this.invalidate();
  }

  /** Put `mesh` at `transform`; true if that moved it (the SDK hands back the same object at rest). */
  place(mesh, transform) {
    if (!transform || transform === mesh.userData.drawn) return false;
    mesh.userData.drawn = transform;
    mesh.position.fromArray(transform.pos);
    mesh.quaternion.fromArray(transform.rot);
    if (transform.scale) mesh.scale.fromArray(transform.scale);
    return true;
  }

  /** Meshes a pointer can hit, for raycasting. */
  pickable() {
    return [...this.views.values()];
  }

  /** Click on a cube: the next colour of the palette, for everyone. */
  recolour(id) {
    const entity = this.client.entities.get(id);
    if (!entity) return;
    const next = PALETTE[(PALETTE.indexOf(entity.props?.color) + 1) % PALETTE.length];
    this.client
      .updateEntity(id, { props: { color: next } })
      .catch((error) => console.warn('recolour refused:', error.code));
  }

  /**
   * Pick up entity `id` with `holder` (a controller, or the desktop pointer): ask for ownership, then keep
   * the object where it is relative to the holder until `drop`. Resolves with whether we got it.
   */
  async grab(id, holder) {
    const mesh = this.views.get(id);
    if (!mesh || this.held.has(id)) return false;
    this.reaching.set(holder, id);
    let granted = false;
    try {
      granted = await this.client.claim(id);
    } catch (error) {
      console.warn('claim failed:', error.code ?? error);
    }
    const stillReaching = this.reaching.get(holder) === id;
    if (stillReaching) this.reaching.delete(holder);
    if (!granted || !this.views.has(id)) return false;
    if (!stillReaching) {
      this.falling.set(id, 0); // let go before the server answered: ours now, so settle it and release
      return false;
    }
    this.falling.delete(id);
    holder.updateWorldMatrix(true, false);
    const offset = holder.matrixWorld.clone().invert().multiply(mesh.matrixWorld);
    this.held.set(id, { holder, offset });
    return true;
  }

  /** Let go of whatever `holder` carries: it falls to the table or floor below, then ownership is released. */
  dropFrom(holder) {
    this.reaching.delete(holder);
    for (const [id, hold] of this.held) {
      if (hold.holder !== holder) continue;
      this.held.delete(id);
      this.falling.set(id, 0);
    }
  }

  /**
   * Once per frame: carried and falling objects follow us (streamed to the room), the rest follow the SDK.
   * True if any moved.
   */
  update(dt) {
    const client = this.client;
    const now = client.serverNow();
    let moved = false;
    for (const [id, mesh] of this.views) {
      const entity = client.entities.get(id);
      if (this.held.has(id) && entity?.owner !== client.id) this.held.delete(id); // someone took it over
      if (this.held.has(id) || this.falling.has(id)) {
        mesh.userData.drawn = null;
        if (this.held.has(id)) this.carry(id, mesh);
        else this.fall(id, mesh, dt);
        moved = true;
      } else {
        moved = this.place(mesh, client.entityTransform(id, now)) || moved;
      }
    }
    return moved;
  }

  carry(id, mesh) {
    const { holder, offset } = this.held.get(id);
    holder.updateWorldMatrix(true, false);
    _matrix.multiplyMatrices(holder.matrixWorld, offset).decompose(_position, _quaternion, _scale);
    _position.y = Math.max(_position.y, this.halfHeight(mesh)); // never through the floor
    mesh.position.copy(_position);
    mesh.quaternion.copy(_quaternion);
    this.client.streamEntity(id, { pos: _position.toArray(), rot: _quaternion.toArray() });
  }

  fall(id, mesh, dt) {
    const speed = this.falling.get(id) + GRAVITY * dt;
    const rest = restingHeight(mesh.position.x, mesh.position.z) + this.halfHeight(mesh);
    mesh.position.y = Math.max(rest, mesh.position.y - speed * dt);
    const landed = mesh.position.y <= rest;
    if (landed) mesh.quaternion.identity();
    this.client.streamEntity(id, { pos: mesh.position.toArray(), rot: mesh.quaternion.toArray() });
    if (!landed) {
      this.falling.set(id, speed);
      return;
    }
    this.falling.delete(id);
    this.client.release(id).catch((error) => console.warn('release failed:', error.code ?? error));
  }

  halfHeight(mesh) {
    return (KINDS[mesh.userData.kind] ?? UNKNOWN_KIND).halfHeight * mesh.scale.y;
  }
}
