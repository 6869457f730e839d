// The Shoal web app: lobby (as a guest or logged in), then a shared room for desktop, VR and AR users.
// Networking and accounts are the SDK (/sdk/shoal.js); this file wires them to the scene, the controls and the HUD.
import * as THREE from 'three';

import { binaryCodec, CloseCode, ShoalClient } from 'shoal';

import { Account } from './account.js';
import { Avatars } from './avatars.js';
import { exposeDebugHook } from './debug.js';
import { DesktopControls } from './desktop.js';
import { Hud } from './hud.js';
import { JointsSender } from './joints.js';
import { Lobby } from './lobby.js';
import { SharedObjects } from './objects.js';
import { ProfilePanel } from './profile.js';
import { createWorld, placeAtSeat } from './scene.js';
import { advise, sentence } from './text.js';
import { XRControls } from './xr.js';

const world = createWorld();
const timer = new THREE.Timer();
const account = new Account();
const profile = new ProfilePanel(account);
const lobby = new Lobby(account, { openProfile: () => profile.open() });
let frames = 0;
let room = null; // {client, avatars, objects, desktop, xr, joints} once joined
let latestClient = null; // the client of the last attempt to join, joined or not

document.getElementById('hud-logout').addEventListener('click', logOut);
exposeDebugHook({
  room: () => room,
  client: () => latestClient,
  account,
  camera: world.camera,
  renderer: world.renderer,
  frames: () => frames,
});

world.renderer.setAnimationLoop((time) => {
  timer.update(time);
  const dt = Math.min(timer.getDelta(), 0.1); // a stalled tab must not teleport anyone
  const moved = room ? update(room, dt) : false;
  if (!moved && !world.dirty && !world.renderer.xr.isPresenting) return; // nothing new to draw
  world.dirty = false;
  world.renderer.render(world.scene, world.camera);
  frames += 1;
});

/**
 * Connect, join the chosen room and build everything that depends on it. Throws if the server refuses. Logged in,
 * the name and colour are the account's (the server takes them from the token); as a guest, the lobby's.
 */
async function enter({ room: name, name: displayName, color }) {
  const user = account.user;
  const client = new ShoalClient({
    name: displayName,
    color,
    getToken: account.getToken, // a fresh access token for every connection, reconnects included
    codec: binaryCodec, // compact poses (shoal.v1.bin); the SDK falls back to JSON if the server declines
  });
  latestClient = client;
  const avatars = new Avatars(world.scene, client, world.invalidate);
  const objects = new SharedObjects(world.scene, client, world.invalidate);
  client.on('error', (error) => console.warn('server:', error.code, error.message));
  client.on('state', ({ state, code, error }) => {
    // the server refused the login (expired, revoked, forged): this tab is a guest again until it logs in
    if (state === 'closed' && code === CloseCode.AUTH_FAILED) account.forget(error?.message ?? 'login refused');
  });
  let joined;
  try {
    await client.connect();
    joined = await client.join(name);
  } catch (error) {
    client.close();
    for (const view of [...avatars.views.keys()]) avatars.remove(view);
    for (const id of [...objects.views.keys()]) objects.remove(id);
    throw error;
  }
  placeAtSeat(world.camera, joined.members.length - 1);
  world.invalidate();
  lobby.hide(name);
  new Hud(client, user).show(name);
  objects.seedIfEmpty();
  const desktop = new DesktopControls({
    camera: world.camera,
    canvas: world.renderer.domElement,
    objects,
    crosshair: document.getElementById('crosshair'),
    invalidate: world.invalidate,
  });
  const xr = new XRControls({
    ...world,
    objects,
    color: user?.color ?? color,
    buttons: document.getElementById('xr-buttons'),
  });
  window.addEventListener('pagehide', () => client.close(1000, 'page closed'));
  return { client, avatars, objects, desktop, xr, joints: new JointsSender(client, xr) };
}

/** One frame of the room; true if anything on screen moved. */
function update(room, dt) {
  const { client, avatars, objects, desktop, xr } = room;
  desktop.enabled = !xr.presenting;
  const walked = desktop.update(dt);
  xr.update(dt);
  room.pose = localPose(desktop, xr);
  client.setPose(room.pose);
  room.joints.update(performance.now());
  const objectsMoved = objects.update(dt);
  const avatarsMoved = avatars.update(world.camera.getWorldPosition(_viewer));
  return walked || objectsMoved || avatarsMoved;
}

const _position = new THREE.Vector3();
const _viewer = new THREE.Vector3();
const _rotation = new THREE.Quaternion();
const _yaw = new THREE.Quaternion();
const _euler = new THREE.Euler(0, 0, 0, 'YXZ');
const DESKTOP_HANDS = { left: new THREE.Vector3(-0.24, -0.52, -0.22), right: new THREE.Vector3(0.24, -0.52, -0.22) };

/** Our avatar in world coordinates: the head, and the controllers in XR or resting hands on the desktop. */
function localPose(desktop, xr) {
  world.camera.getWorldPosition(_position);
  world.camera.getWorldQuaternion(_rotation);
  const pose = { head: { pos: _position.toArray(), rot: _rotation.toArray() } };
  if (xr.presenting) return Object.assign(pose, xr.handPoses());
  // desktop: hands at the sides, turned with the body (yaw only) so they do not swing with the mouse
  _euler.setFromQuaternion(_rotation);
  _yaw.setFromAxisAngle(THREE.Object3D.DEFAULT_UP, _euler.y);
  for (const side of ['left', 'right']) {
    const offset = DESKTOP_HANDS[side].clone().applyQuaternion(_yaw).add(_position);
    pose[side] = { pos: offset.toArray(), rot: _yaw.toArray() };
  }
  return pose;
}

/** Show the lobby until joining a room succeeds. */
async function start() {
  lobby.show();
  while (room === null) {
    const choice = await lobby.choice();
    const loggedIn = account.user !== null;
    try {
      room = await enter(choice);
    } catch (error) {
      lobby.error(joinFailure(error, loggedIn));
    }
  }
}

/** Why joining failed, for the lobby; a refused login says to log in again. */
function joinFailure(error, loggedIn) {
  const why = error.message ?? String(error);
  if (error.code !== 'auth_failed') return `Could not join: ${sentence(why)}`;
  return loggedIn
    ? `Your login was refused: ${advise(why, 'Log in again.')}`
    : `Could not join: ${advise(why, 'Log in or register.')}`;
}

/** Leave the room, end the session on the server, and start again from the lobby as a guest. */
async function logOut() {
  room?.client.close(1000, 'logged out');
  await account.logOut();
  location.reload();
}

start();
