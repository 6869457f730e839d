// VR and AR: Enter VR / Enter AR buttons (shown only where supported), the controllers as hands, trigger to
// recolour a cube or grab, squeeze to grab, left thumbstick to walk, right thumbstick to turn in steps.
// Controllers are simple shapes: no controller models are fetched from a CDN. Hand tracking is asked for (as an
// optional feature): tracked hands' joints are read here for the room (see joints.js).
import * as THREE from 'three';
import { ARButton } from 'three/addons/webxr/ARButton.js';
import { VRButton } from 'three/addons/webxr/VRButton.js';

import { handMesh } from './avatars.js';
import { readHand, readJoint } from './joints.js';

const MOVE_SPEED = 1.6; // m/s at full stick
const SNAP_TURN = Math.PI / 6;
const DEAD_ZONE = 0.25;
const NEAR_GRAB = 0.18; // metres from the hand within which an object is grabbed directly
const RAY_LENGTH = 4;
const FORWARD = new THREE.Vector3(0, 0, -1);
const _head = new THREE.Vector3();
const _direction = new THREE.Vector3();

export class XRControls {
  /**
   * @param {{renderer: THREE.WebGLRenderer, scene: THREE.Scene, camera: THREE.Camera, rig: THREE.Group,
   *          objects: import('./objects.js').SharedObjects, environment: {backdrop: THREE.Object3D},
   *          color: string, buttons: HTMLElement}} options
   */
  constructor({ renderer, scene, camera, rig, objects, environment, color, buttons }) {
    Object.assign(this, { renderer, scene, camera, rig, objects, environment });
    this.raycaster = new THREE.Raycaster();
    this.turnLatched = { left: false, right: false };
    this.savedDesktop = null; // the desktop camera while in XR, restored after
    this.saved = null; // the sky and fog while in AR (passthrough shows the real room instead)
    this.hands = [0, 1].map((index) => this.addController(index, color));
    renderer.xr.addEventListener('sessionstart', () => this.sessionStarted());
    renderer.xr.addEventListener('sessionend', () => this.sessionEnded());
    this.addButtons(buttons);
  }

  get presenting() {
    return this.renderer.xr.isPresenting;
  }

  async addButtons(container) {
    if (!navigator.xr) return;
    const [vr, ar] = await Promise.all(
      ['immersive-vr', 'immersive-ar'].map((mode) => navigator.xr.isSessionSupported(mode).catch(() => false)),
    );
    const optionalFeatures = ['hand-tracking']; // VRButton adds 'local-floor' itself; ARButton needs it asked
    if (vr) container.appendChild(withId(VRButton.createButton(this.renderer, { optionalFeatures }), 'enter-vr'));
    if (ar) {
      const init = { optionalFeatures: ['local-floor', ...optionalFeatures] };
      container.appendChild(withId(ARButton.createButton(this.renderer, init), 'enter-ar'));
    }
  }

  /** Controller `index`: its grip carries the hand, its target ray the laser; both live in the rig. */
  addController(index, color) {
    const ray = this.renderer.xr.getController(index);
    const grip = this.renderer.xr.getControllerGrip(index);
    const hand = { ray, grip, handedness: null, gamepad: null, source: null };
    grip.add(handMesh(new THREE.MeshStandardMaterial({ color, roughness: 0.45 })));
    ray.add(laser());
    ray.visible = grip.visible = false;
    ray.addEventListener('connected', (event) => {
      hand.source = event.data;
      hand.handedness = event.data.handedness;
      hand.gamepad = event.data.gamepad ?? null;
      ray.visible = grip.visible = true;
    });
    ray.addEventListener('disconnected', () => {
      hand.handedness = hand.gamepad = hand.source = null;
      ray.visible = grip.visible = false;
      this.release(hand);
    });
    ray.addEventListener('selectstart', () => this.press(hand, true));
    ray.addEventListener('squeezestart', () => this.press(hand, false));
    ray.addEventListener('selectend', () => this.release(hand));
    ray.addEventListener('squeezeend', () => this.release(hand));
    this.rig.add(ray, grip);
    return hand;
  }

  /** Trigger (`select`) recolours a cube or grabs; squeeze grabs. The nearest object in reach wins over the ray. */
  press(hand, select) {
    const near = this.within(hand.grip, NEAR_GRAB);
    if (near) {
      this.objects.grab(near.userData.entityId, hand.grip);
      return;
    }
    hand.ray.updateWorldMatrix(true, false);
    this.raycaster.set(
      new THREE.Vector3().setFromMatrixPosition(hand.ray.matrixWorld),
      FORWARD.clone().transformDirection(hand.ray.matrixWorld),
    );
    this.raycaster.far = RAY_LENGTH;
    const target = this.raycaster.intersectObjects(this.objects.pickable(), false)[0]?.object;
    if (!target) return;
    if (target.userData.action === 'grab') this.objects.grab(target.userData.entityId, hand.ray);
    else if (select && target.userData.action === 'recolour') this.objects.recolour(target.userData.entityId);
  }

  release(hand) {
    this.objects.dropFrom(hand.ray);
    this.objects.dropFrom(hand.grip);
  }

  /** The grabbable object closest to `holder` within `reach` metres, or null. */
  within(holder, reach) {
    holder.getWorldPosition(_head);
    let best = null;
    let bestDistance = reach;
    for (const mesh of this.objects.pickable()) {
      if (mesh.userData.action !== 'grab') continue;
      const distance = mesh.position.distanceTo(_head);
      if (distance < bestDistance) [best, bestDistance] = [mesh, distance];
    }
    return best;
  }

  /**
   * The tracked hands as world transforms, for the pose we send: each controller's grip, or for a tracked hand its
   * wrist joint. Others draw our hands' joints on the pose's hands, wrist on wrist (`client.remoteJoints`): the grip
   * (`XRInputSource.gripSpace`, in the fist and turned as the palm) would put them off by its offset.
   */
  handPoses() {
    const pose = {};
    const frame = this.renderer.xr.getFrame();
    const space = this.renderer.xr.getReferenceSpace();
    this.rig.updateWorldMatrix(true, false); // joint poses are in the reference space, which the rig carries
    for (const hand of this.hands) {
      if (!hand.handedness || hand.handedness === 'none') continue;
      const joints = hand.source?.hand;
      if (joints) {
        // a hand whose wrist is not tracked this frame is left out, not put at its grip: off by the grip's offset
        const wrist = frame && space && readJoint(frame, joints.get('wrist'), space, this.rig.matrixWorld);
        if (wrist) pose[hand.handedness] = wrist;
        continue;
      }
      if (!hand.grip.visible) continue;
      hand.grip.updateWorldMatrix(true, false);
      const position = new THREE.Vector3();
      const rotation = new THREE.Quaternion();
      hand.grip.matrixWorld.decompose(position, rotation, new THREE.Vector3());
      pose[hand.handedness] = { pos: position.toArray(), rot: rotation.toArray() };
    }
    return pose;
  }

  /**
   * The joints of every tracked hand in this XR frame, world coordinates: `{left?, right?}`, each 25
   * `[x, y, z, qx, qy, qz, qw]`; a hand whose joints are not all tracked is left out.
   */
  handJoints() {
    const frame = this.renderer.xr.getFrame();
    const space = this.renderer.xr.getReferenceSpace();
    const session = this.renderer.xr.getSession();
    const joints = {};
    if (!frame || !space || !session) return joints;
    // joint poses are in the reference space, which the rig carries through the world (locomotion)
    this.rig.updateWorldMatrix(true, false);
    for (const source of session.inputSources) {
      if (!source.hand || (source.handedness !== 'left' && source.handedness !== 'right')) continue;
      const hand = readHand(frame, source.hand, space, this.rig.matrixWorld);
      if (hand) joints[source.handedness] = hand;
    }
    return joints;
  }

  /** Once per XR frame: thumbstick locomotion. Left stick walks where you look; right stick turns in steps. */
  update(dt) {
    if (!this.presenting) return;
    for (const hand of this.hands) {
      const axes = hand.gamepad?.axes;
      if (!axes || axes.length < 4) continue;
      const [x, y] = [axes[2], axes[3]]; // xr-standard mapping: the thumbstick is axes 2 and 3
      if (hand.handedness === 'left') this.walk(x, y, dt);
      else if (hand.handedness === 'right') this.turn(x, hand.handedness);
    }
  }

  walk(x, y, dt) {
    if (Math.hypot(x, y) < DEAD_ZONE) return;
    this.camera.getWorldDirection(_direction);
    _direction.y = 0;
    if (_direction.lengthSq() < 1e-6) return;
    _direction.normalize();
    const right = new THREE.Vector3(-_direction.z, 0, _direction.x);
    this.rig.position.addScaledVector(_direction, -y * MOVE_SPEED * dt).addScaledVector(right, x * MOVE_SPEED * dt);
  }

  turn(x, side) {
    if (Math.abs(x) < 0.6) {
      this.turnLatched[side] = false;
      return;
    }
    if (this.turnLatched[side]) return;
    this.turnLatched[side] = true;
    // turn around the head, not the rig's origin, so the view does not swing sideways
    this.camera.getWorldPosition(_head);
    const angle = -Math.sign(x) * SNAP_TURN;
    this.rig.position.sub(_head).applyAxisAngle(THREE.Object3D.DEFAULT_UP, angle).add(_head);
    this.rig.rotateY(angle);
  }

  sessionStarted() {
    // stand where the desktop camera stood, facing the same way; the headset supplies height and tilt
    const desktopCamera = this.camera;
    const yaw = new THREE.Euler().setFromQuaternion(desktopCamera.quaternion, 'YXZ').y;
    this.savedDesktop = { position: desktopCamera.position.clone(), quaternion: desktopCamera.quaternion.clone() };
    this.rig.position.set(desktopCamera.position.x, 0, desktopCamera.position.z);
    this.rig.rotation.set(0, yaw, 0);
    if (this.renderer.xr.getEnvironmentBlendMode?.() && this.renderer.xr.getEnvironmentBlendMode() !== 'opaque') {
      // AR: the real room is the backdrop
      this.saved = { background: this.scene.background, fog: this.scene.fog };
      this.scene.background = null;
      this.scene.fog = null;
      this.environment.backdrop.visible = false;
    }
  }

  sessionEnded() {
    if (this.saved) {
      Object.assign(this.scene, this.saved);
      this.environment.backdrop.visible = true;
      this.saved = null;
    }
    this.rig.position.set(0, 0, 0);
    this.rig.rotation.set(0, 0, 0);
    if (this.savedDesktop) {
      this.camera.position.copy(this.savedDesktop.position);
      this.camera.quaternion.copy(this.savedDesktop.quaternion);
    }
    for (const hand of this.hands) this.release(hand);
  }
}

function withId(element, id) {
  element.id = id;
  return element;
}

function laser() {
  const geometry = new THREE.BufferGeometry().setFromPoints([
    new THREE.Vector3(),
    new THREE.Vector3(0, 0, -RAY_LENGTH),
  ]);
  const line = new THREE.Line(
    geometry,
    new THREE.LineBasicMaterial({ color: 0xffffff, transparent: true, opacity: 0.5 }),
  );
  line.name = 'laser';
  return line;
}
