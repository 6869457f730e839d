// The world everyone shares the look of: renderer, camera rig, lights, floor, and the two tables the
// default objects sit on. Nothing here is networked.
import * as THREE from 'three';

export const EYE_HEIGHT = 1.6;
const SKY = 0xb9cde0;

/** A table top the default objects rest on: centre `x, z`, size `width` x `depth`, top at `height`. */
export const TABLES = [
  { x: 0, z: -2.6, width: 2.2, depth: 0.8, height: 0.8 },
  { x: 2.6, z: -0.6, width: 0.9, depth: 1.6, height: 0.7 },
];

/**
 * Build the renderer (WebXR enabled, transparent for AR passthrough), the scene and a camera inside a rig.
 * Locomotion moves the rig; in XR the headset moves the camera within it.
 *
 * Outside XR the app draws a frame only when something changed (`invalidate()` or an update that moved
 * something): an idle room costs no CPU, which laptops' fans and batteries notice.
 */
export function createWorld(container = document.body) {
  const renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setSize(window.innerWidth, window.innerHeight);
  renderer.outputColorSpace = THREE.SRGBColorSpace;
  renderer.xr.enabled = true;
  container.appendChild(renderer.domElement);

  const scene = new THREE.Scene();
  scene.background = new THREE.Color(SKY);
  scene.fog = new THREE.Fog(SKY, 8, 36);

  const camera = new THREE.PerspectiveCamera(70, window.innerWidth / window.innerHeight, 0.05, 100);
  placeAtSeat(camera, 0);
  const rig = new THREE.Group();
  rig.name = 'rig';
  rig.add(camera);
  scene.add(rig);

  addLights(scene);
  const environment = addEnvironment(scene);

  const world = {
    renderer,
    scene,
    camera,
    rig,
    environment,
    /** True when the next frame must be drawn. */
    dirty: true,
    invalidate: () => (world.dirty = true),
  };
  renderer.xr.addEventListener('sessionend', world.invalidate); // back to the desktop view
  window.addEventListener('resize', () => {
    camera.aspect = window.innerWidth / window.innerHeight;
    camera.updateProjectionMatrix();
    renderer.setSize(window.innerWidth, window.innerHeight);
    world.invalidate();
  });
  return world;
}

const SEAT_CENTRE = new THREE.Vector3(0.3, 0, -0.4);
const SEAT_RADIUS = 1.4;
const SEAT_ANGLES = [0, 180, 90, 270, 45, 225, 135, 315].map((degrees) => (degrees * Math.PI) / 180);

/**
 * Stand the camera at seat `index` of a circle in front of the tables, facing its centre: the first person
 * looks at the tables, the second stands across from the first, and so on, so people who arrive together
 * see each other at once instead of standing inside one another. Past eight seats, anywhere on the circle.
 */
export function placeAtSeat(camera, index) {
  const angle = SEAT_ANGLES[index] ?? Math.random() * Math.PI * 2;
  const offset = new THREE.Vector3(Math.sin(angle), 0, Math.cos(angle)).multiplyScalar(SEAT_RADIUS);
  camera.position.copy(SEAT_CENTRE).add(offset).setY(EYE_HEIGHT);
  const ahead = SEAT_CENTRE.clone().sub(offset); // look across the circle, at the faces there
  camera.lookAt(ahead.x, EYE_HEIGHT - 0.1, ahead.z);
}

function addLights(scene) {
  // a bright sky above and a warm bounce from the floor: every side of an avatar reads, no black faces
  scene.add(new THREE.HemisphereLight(0xf4f8ff, 0x8a7f70, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(4, 8, 5);
  scene.add(sun);
}

/** Floor, grid, tables and soft contact shadows. Returns the parts hidden in AR (`backdrop`). */
function addEnvironment(scene) {
  const backdrop = new THREE.Group();
  backdrop.name = 'backdrop';
  const floor = new THREE.Mesh(
    new THREE.CircleGeometry(40, 64).rotateX(-Math.PI / 2),
    new THREE.MeshStandardMaterial({ color: 0xd2d9e1, roughness: 0.95 }),
  );
  backdrop.add(floor);
  const grid = new THREE.GridHelper(30, 30, 0x7d8b9e, 0x9eaabb);
  grid.position.y = 0.002;
  backdrop.add(grid);
  scene.add(backdrop);

  const furniture = new THREE.Group();
  furniture.name = 'furniture';
  const wood = new THREE.MeshStandardMaterial({ color: 0x9a7b5c, roughness: 0.7 });
  const legs = new THREE.MeshStandardMaterial({ color: 0x4b505a, roughness: 0.5, metalness: 0.3 });
  for (const table of TABLES) {
    const top = new THREE.Mesh(new THREE.BoxGeometry(table.width, 0.05, table.depth), wood);
    top.position.set(table.x, table.height - 0.025, table.z);
    furniture.add(top);
    for (const sx of [-1, 1]) {
      for (const sz of [-1, 1]) {
        const leg = new THREE.Mesh(new THREE.CylinderGeometry(0.025, 0.025, table.height - 0.05), legs);
        leg.position.set(
          table.x + sx * (table.width / 2 - 0.08),
          (table.height - 0.05) / 2,
          table.z + sz * (table.depth / 2 - 0.08),
        );
        furniture.add(leg);
      }
    }
    furniture.add(contactShadow(table.x, table.z, table.width + 0.3, table.depth + 0.3));
  }
  scene.add(furniture);

  // a ring of columns far off: something to judge distance and direction by, softened by the fog
  const stone = new THREE.MeshStandardMaterial({ color: 0xf1ede6, roughness: 0.9 });
  const column = new THREE.CylinderGeometry(0.3, 0.36, 3, 20);
  for (let i = 0; i < 16; i += 1) {
    const angle = ((i + 0.5) / 16) * Math.PI * 2; // none straight behind the seats
    const pillar = new THREE.Mesh(column, stone);
    pillar.position.set(Math.sin(angle) * 13, 1.5, Math.cos(angle) * 13);
    backdrop.add(pillar);
  }
  return { backdrop, furniture };
}

let shadowTexture = null;

/** A soft dark ellipse on the floor: cheap grounding for things without real shadows. */
export function contactShadow(x, z, width, depth) {
  shadowTexture ??= radialTexture();
  const shadow = new THREE.Mesh(
    new THREE.PlaneGeometry(width, depth).rotateX(-Math.PI / 2),
    new THREE.MeshBasicMaterial({ map: shadowTexture, transparent: true, depthWrite: false, opacity: 0.45 }),
  );
  shadow.position.set(x, 0.004, z);
  shadow.renderOrder = 1;
  return shadow;
}

function radialTexture() {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 64;
  const context = canvas.getContext('2d');
  const gradient = context.createRadialGradient(32, 32, 0, 32, 32, 32);
  gradient.addColorStop(0, 'rgba(20, 28, 40, 0.9)');
  gradient.addColorStop(1, 'rgba(20, 28, 40, 0)');
  context.fillStyle = gradient;
  context.fillRect(0, 0, 64, 64);
  return new THREE.CanvasTexture(canvas);
}

/** The height something resting at `x, z` settles on: a table top under it, or the floor. */
export function restingHeight(x, z) {
  for (const table of TABLES) {
    if (Math.abs(x - table.x) <= table.width / 2 && Math.abs(z - table.z) <= table.depth / 2) return table.height;
  }
  return 0;
}
