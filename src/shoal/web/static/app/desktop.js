// Desktop controls: WASD (or arrows) to walk, Q/E to turn, mouse look with pointer lock, and a pointer
// that clicks cubes and carries balls. Before the mouse is captured the pointer follows the cursor, so a
// click lands where you see it; once captured it is the crosshair at the centre of the screen.
import * as THREE from 'three';
import { PointerLockControls } from 'three/addons/controls/PointerLockControls.js';

const WALK_SPEED = 2.2; // m/s
const RUN_SPEED = 4.5; // with Shift
const TURN_SPEED = 1.8; // rad/s, Q/E
const ROOM_RADIUS = 14; // metres from the centre you can walk
const FORWARD = new THREE.Vector3(0, 0, -1);
/** [forward, right] for each key that walks. */
const MOVES = {
  KeyW: [1, 0],
  ArrowUp: [1, 0],
  KeyS: [-1, 0],
  ArrowDown: [-1, 0],
  KeyA: [0, -1],
  ArrowLeft: [0, -1],
  KeyD: [0, 1],
  ArrowRight: [0, 1],
};

export class DesktopControls {
  /**
   * @param {{camera: THREE.Camera, canvas: HTMLCanvasElement, objects: import('./objects.js').SharedObjects,
   *          crosshair: HTMLElement, invalidate: () => void}} options  invalidate: asks for a redraw
   */
  constructor({ camera, canvas, objects, crosshair, invalidate }) {
    this.camera = camera;
    this.objects = objects;
    this.enabled = true;
    this.look = new PointerLockControls(camera, canvas);
    this.look.pointerSpeed = 0.8;
    /** Points where the user aims; what it carries hangs from it. A child of the camera. */
    this.pointer = new THREE.Object3D();
    this.pointer.name = 'desktop-pointer';
    camera.add(this.pointer);
    this.cursor = new THREE.Vector2(0, 0); // normalised device coordinates of the mouse
    this.keys = new Set();
    this.raycaster = new THREE.Raycaster();

    this.look.addEventListener('change', invalidate);
    this.look.addEventListener('lock', () => (crosshair.hidden = false));
    this.look.addEventListener('unlock', () => (crosshair.hidden = true));
    window.addEventListener('keydown', (event) => {
      if (!isTyping(event)) this.keys.add(event.code);
    });
    window.addEventListener('keyup', (event) => this.keys.delete(event.code));
    window.addEventListener('blur', () => this.keys.clear());
    canvas.addEventListener('mousemove', (event) => this.moveCursor(event, canvas));
    canvas.addEventListener('mousedown', (event) => this.press(event, canvas));
    window.addEventListener('mouseup', () => this.objects.dropFrom(this.pointer));
  }

  moveCursor(event, canvas) {
    if (this.look.isLocked) return;
    const rect = canvas.getBoundingClientRect();
    this.cursor.set(
      ((event.clientX - rect.left) / rect.width) * 2 - 1,
      -((event.clientY - rect.top) / rect.height) * 2 + 1,
    );
  }

  press(event, canvas) {
    if (!this.enabled || event.button !== 0) return;
    this.moveCursor(event, canvas);
    this.aim();
    const target = this.target();
    if (target?.userData.action === 'recolour') this.objects.recolour(target.userData.entityId);
    else if (target?.userData.action === 'grab') this.objects.grab(target.userData.entityId, this.pointer);
    else if (!this.look.isLocked) this.look.lock();
  }

  /** Turn the pointer towards the cursor (or straight ahead, when the mouse is captured). */
  aim() {
    if (this.look.isLocked) this.cursor.set(0, 0);
    const direction = new THREE.Vector3(this.cursor.x, this.cursor.y, 0.5).applyMatrix4(
      this.camera.projectionMatrixInverse,
    );
    this.pointer.quaternion.setFromUnitVectors(FORWARD, direction.normalize());
  }

  /** The nearest shared object under the pointer, or null. */
  target() {
    this.pointer.updateWorldMatrix(true, false);
    const origin = new THREE.Vector3().setFromMatrixPosition(this.pointer.matrixWorld);
    const direction = FORWARD.clone().transformDirection(this.pointer.matrixWorld);
    this.raycaster.set(origin, direction);
    return this.raycaster.intersectObjects(this.objects.pickable(), false)[0]?.object ?? null;
  }

  /** Once per frame: walk and turn from the keys held down. True if the camera moved. */
  update(dt) {
    if (!this.enabled) return false;
    this.aim();
    let forward = 0;
    let right = 0;
    for (const code of this.keys) {
      const move = MOVES[code];
      if (move) [forward, right] = [forward + move[0], right + move[1]];
    }
    const speed = (this.keys.has('ShiftLeft') || this.keys.has('ShiftRight') ? RUN_SPEED : WALK_SPEED) * dt;
    const length = Math.hypot(forward, right);
    if (length > 0) {
      this.look.moveForward((forward / length) * speed);
      this.look.moveRight((right / length) * speed);
      const position = this.camera.position;
      const distance = Math.hypot(position.x, position.z);
      if (distance > ROOM_RADIUS) {
        position.x *= ROOM_RADIUS / distance;
        position.z *= ROOM_RADIUS / distance;
      }
    }
    const turn = (this.keys.has('KeyQ') ? 1 : 0) - (this.keys.has('KeyE') ? 1 : 0);
    if (turn !== 0) this.camera.rotateOnWorldAxis(THREE.Object3D.DEFAULT_UP, turn * TURN_SPEED * dt);
    return length > 0 || turn !== 0;
  }
}

function isTyping(event) {
  const target = event.target;
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))
  );
}
