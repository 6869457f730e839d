// Remote avatars: a head whose visor shows where it faces, a name tag with the member's profile picture above
// it, a body that turns with the head, and two hands (or, while hand tracking, the hands' joints), all in the
// member's colour. Poses come from the SDK interpolated ~100 ms behind; joints (at 10 Hz) one joints interval further
// back, so that they never stand still waiting for the next, and put on the pose's hands (a tracked hand's pose is
// its wrist: see xr.js handPoses), so the fingers move as smoothly as the hands and stay on them.
import * as THREE from 'three';

import { JointSpheres } from './joints.js';
import { contactShadow } from './scene.js';

const HEAD_RADIUS = 0.13;
const NAME_TAG_HEIGHT = 0.13; // metres, up close
const NAME_TAG_GROWS_BEYOND = 2.5; // metres away; further off the tag grows (up to 3x) so it stays legible
const PICTURE_SIZE = 0.26; // metres, up close: the profile picture's diameter, ring included
const PICTURE_RING = 0.08; // of the diameter, on each side: the ring in the member's colour
const _euler = new THREE.Euler(0, 0, 0, 'YXZ');
const textures = new THREE.TextureLoader();

/** One member's avatar. `root` holds everything, in world coordinates. `changed` is called when it must be redrawn. */
export class AvatarView {
  constructor(member, changed = () => {}) {
    this.id = member.id;
    this.name = member.name;
    this.user = member.user ?? null;
    this.changed = changed;
    this.root = new THREE.Group();
    this.root.name = `avatar-${member.id}`;
    this.root.visible = false; // until the first pose arrives

    const colour = new THREE.Color(member.color);
    const skin = new THREE.MeshStandardMaterial({ color: colour, roughness: 0.45 });
    const cloth = new THREE.MeshStandardMaterial({ color: colour.clone().multiplyScalar(0.72), roughness: 0.8 });
    this.materials = [skin, cloth];

    this.head = new THREE.Group();
    this.head.add(new THREE.Mesh(new THREE.SphereGeometry(HEAD_RADIUS, 32, 16), skin));
    this.head.add(visor());
    this.root.add(this.head);

    this.body = new THREE.Mesh(new THREE.CapsuleGeometry(0.13, 0.3, 6, 16), cloth);
    this.root.add(this.body);

    this.hands = { left: hand(skin, 'left'), right: hand(skin, 'right') };
    this.root.add(this.hands.left, this.hands.right);
    this.joints = new JointSpheres(skin);
    this.root.add(this.joints.mesh);
    /** The joints drawn (`client.remoteJoints`): an unchanged object is not drawn again. */
    this.drawnJoints = null;

    this.tag = nameTag(member.name, member.color);
    this.tagAspect = this.tag.scale.x / this.tag.scale.y;
    this.root.add(this.tag);

    /** The profile picture's URL (same origin only), or null; `imageState` says whether it shows. */
    this.image = sameOriginUrl(member.avatar);
    /** 'none' | 'loading' | 'loaded' | 'failed': while not 'loaded', the avatar shows its colour alone. */
    this.imageState = this.image ? 'loading' : 'none';
    this.picture = null;
    if (this.image) this.loadPicture(colour);

    this.shadow = contactShadow(0, 0, 0.6, 0.6);
    this.root.add(this.shadow);
  }

  /**
   * Place the avatar at `pose` ({head, left?, right?}) as seen from `viewer` (a world position); a missing
   * hand is hidden. True if anything moved.
   */
  update(pose, viewer) {
    const scaled = this.scaleTag(viewer);
    if (!pose || pose === this.drawn) return scaled; // the interpolation buffer hands back the same pose at rest
    this.drawn = pose;
    const [x, y, z] = pose.head.pos;
    this.head.position.set(x, y, z);
    this.head.quaternion.fromArray(pose.head.rot);
    // the body hangs below the head and turns with it, but does not tilt or roll
    _euler.setFromQuaternion(this.head.quaternion);
    this.body.position.set(x, y - 0.46, z);
    this.body.rotation.set(0, _euler.y, 0);
    this.placeLabels();
    this.shadow.position.set(x, 0.005, z);
    for (const side of ['left', 'right']) {
      const transform = pose[side];
      const mesh = this.hands[side];
      mesh.visible = this.showsHand(side);
      if (transform) {
        mesh.position.fromArray(transform.pos);
        mesh.quaternion.fromArray(transform.rot);
      }
    }
    this.root.visible = true;
    this.scaleTag(viewer);
    return true;
  }

  /**
   * Show the member's hand joints (`{left?, right?}`; null or neither hand hides them). A hand with joints shows no
   * mitten. True if anything changed: the SDK hands back the same object while the hands rest.
   */
  showJoints(joints) {
    if (joints === this.drawnJoints) return false;
    this.drawnJoints = joints;
    this.joints.show(joints);
    for (const side of ['left', 'right']) this.hands[side].visible = this.showsHand(side);
    return true;
  }

  /** The mitten of `side` shows while the pose has that hand and its joints are not drawn instead. */
  showsHand(side) {
    return Boolean(this.drawn?.[side]) && !this.joints.hands[side];
  }

  /** Keep the name tag readable from afar: past a few metres it grows with distance. True if it changed. */
  scaleTag(viewer) {
    const factor = Math.min(3, Math.max(1, this.tag.position.distanceTo(viewer) / NAME_TAG_GROWS_BEYOND));
    if (Math.abs(factor - (this.tagFactor ?? 0)) < 0.01) return false;
    this.tagFactor = factor;
    this.tag.scale.set(this.tagAspect * NAME_TAG_HEIGHT * factor, NAME_TAG_HEIGHT * factor, 1);
    this.picture?.scale.setScalar(PICTURE_SIZE * factor);
    this.placeLabels();
    return true;
  }

  /** The name tag just above the head, and the picture (when it has one) just above the tag. */
  placeLabels() {
    const factor = this.tagFactor ?? 1;
    const head = this.head.position;
    this.tag.position.set(head.x, head.y + HEAD_RADIUS + 0.02 + (NAME_TAG_HEIGHT * factor) / 2, head.z);
    this.picture?.position.set(
      head.x,
      this.tag.position.y + ((NAME_TAG_HEIGHT + PICTURE_SIZE) / 2 + 0.02) * factor,
      head.z,
    );
  }

  /**
   * Load the profile picture with three.js's TextureLoader, then show it round, in a ring of `colour`. If it
   * fails the avatar keeps its colour alone.
   */
  loadPicture(colour) {
    textures.load(
      this.image,
      (texture) => {
        if (this.disposed) return texture.dispose();
        texture.colorSpace = THREE.SRGBColorSpace;
        texture.anisotropy = 4;
        this.picture = pictureSprite(texture, colour);
        this.picture.scale.setScalar(PICTURE_SIZE * (this.tagFactor ?? 1));
        this.root.add(this.picture);
        this.placeLabels();
        this.imageState = 'loaded';
        this.changed();
      },
      undefined,
      () => {
        this.imageState = 'failed';
        console.warn(`avatar image of ${this.name} could not be loaded: ${this.image}`);
      },
    );
  }

  dispose() {
    this.disposed = true;
    this.root.traverse((node) => {
      node.geometry?.dispose();
      if (node.material?.map) node.material.map.dispose();
    });
    for (const material of [...this.materials, this.tag.material]) material.dispose();
    this.joints.dispose();
    this.picture?.traverse((node) => node.material?.dispose());
  }
}

/** `url` resolved against this page if it is on this page's origin; anything else is not loaded. */
function sameOriginUrl(url) {
  if (!url) return null;
  const resolved = new URL(url, location.href);
  return resolved.origin === location.origin ? resolved.href : null;
}

let roundMask = null;

/** A white disc on black, as an alpha map: what it is applied to shows as a circle. */
function discAlphaMap() {
  if (roundMask) return roundMask;
  const size = 128;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const context = canvas.getContext('2d');
  context.fillStyle = '#000';
  context.fillRect(0, 0, size, size);
  context.fillStyle = '#fff';
  context.beginPath();
  context.arc(size / 2, size / 2, size / 2 - 1, 0, Math.PI * 2);
  context.fill();
  roundMask = new THREE.CanvasTexture(canvas);
  return roundMask;
}

/** The picture as a round sprite facing the viewer, in a ring of `colour`; unit diameter (scale it). */
function pictureSprite(texture, colour) {
  const disc = (material) =>
    new THREE.Sprite(
      new THREE.SpriteMaterial({ alphaMap: discAlphaMap(), transparent: true, depthWrite: false, ...material }),
    );
  const ring = disc({ color: colour });
  ring.renderOrder = 10;
  const image = disc({ map: texture });
  image.scale.setScalar(1 - 2 * PICTURE_RING);
  image.renderOrder = 11; // over the ring
  ring.add(image);
  ring.name = 'profile-picture';
  return ring;
}

/** A dark visor across the front of the head (-Z, where a three.js camera looks), with two bright eyes. */
function visor() {
  const group = new THREE.Group();
  const glass = new THREE.Mesh(
    new THREE.BoxGeometry(0.2, 0.075, 0.08),
    new THREE.MeshStandardMaterial({ color: 0x141a24, roughness: 0.2, metalness: 0.4 }),
  );
  glass.position.set(0, 0.015, -0.095);
  group.add(glass);
  const eyeMaterial = new THREE.MeshBasicMaterial({ color: 0xe8f4ff });
  for (const side of [-1, 1]) {
    const eye = new THREE.Mesh(new THREE.CircleGeometry(0.016, 16), eyeMaterial);
    eye.position.set(side * 0.045, 0.015, -0.1355);
    eye.rotation.y = Math.PI; // face forward (-Z)
    group.add(eye);
  }
  return group;
}

/** A hand (or a controller held in it): a mitten, a flattened sphere pointing forward (-Z). */
export function handMesh(material) {
  const mesh = new THREE.Mesh(new THREE.SphereGeometry(0.05, 20, 12), material);
  mesh.scale.set(0.85, 0.6, 1.35);
  return mesh;
}

function hand(material, side) {
  const mesh = handMesh(material);
  mesh.name = `hand-${side}`;
  mesh.visible = false;
  return mesh;
}

/** The member's name on a dark rounded label with a dot of their colour, always facing the viewer. */
export function nameTag(name, color) {
  const fontSize = 56;
  const font = `600 ${fontSize}px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  const measure = document.createElement('canvas').getContext('2d');
  measure.font = font;
  const padding = 26;
  const dot = 30;
  const width = Math.ceil(measure.measureText(name).width + padding * 3 + dot);
  const height = fontSize + padding * 1.6;

  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  context.fillStyle = 'rgba(16, 22, 34, 0.88)';
  context.beginPath();
  context.roundRect(0, 0, width, height, height / 2);
  context.fill();
  context.fillStyle = color;
  context.beginPath();
  context.arc(padding + dot / 2, height / 2, dot / 2, 0, Math.PI * 2);
  context.fill();
  context.font = font;
  context.fillStyle = '#ffffff';
  context.textBaseline = 'middle';
  context.fillText(name, padding * 2 + dot, height / 2 + 2);

  const texture = new THREE.CanvasTexture(canvas);
  texture.colorSpace = THREE.SRGBColorSpace;
  texture.anisotropy = 4;
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, depthWrite: false }));
  sprite.scale.set((NAME_TAG_HEIGHT * width) / height, NAME_TAG_HEIGHT, 1);
  sprite.renderOrder = 10;
  sprite.name = 'name-tag';
  return sprite;
}

/** Every remote member's avatar, kept in step with the SDK's presence events. */
export class Avatars {
  constructor(scene, client, invalidate = () => {}) {
    this.scene = scene;
    this.client = client;
    this.invalidate = invalidate;
    /** @type {Map<number, AvatarView>} */
    this.views = new Map();
    client.on('member_joined', ({ member }) => this.add(member));
    client.on('member_left', ({ member }) => this.remove(member.id));
  }

  add(member) {
    if (member.id === this.client.id || this.views.has(member.id)) return;
    const view = new AvatarView(member, this.invalidate);
    this.views.set(member.id, view);
    this.scene.add(view.root);
    this.invalidate();
  }

  remove(id) {
    const view = this.views.get(id);
    if (!view) return;
    this.views.delete(id);
    this.scene.remove(view.root);
    view.dispose();
    this.invalidate();
  }

  /**
   * Once per frame: move every avatar to its interpolated pose and hand joints (for the same frame time: the SDK puts
   * the joints on that pose's hands), as seen from `viewer`. True if any moved.
   */
  update(viewer) {
    const now = this.client.serverNow();
    let moved = false;
    for (const view of this.views.values()) {
      moved = view.update(this.client.remotePose(view.id, now), viewer) || moved;
      moved = view.showJoints(this.client.remoteJoints(view.id, now)) || moved;
    }
    return moved;
  }
}
