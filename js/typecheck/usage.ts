// How a page author uses the SDK, type-checked against shoal.d.ts by `npm run typecheck` (tsc --noEmit).
// It is never run; a type error here means the declarations and the documented usage disagree.
import {
  AccountsApi,
  ApiError,
  AuthSession,
  CloseCode,
  HAND_JOINTS,
  InterpolationBuffer,
  ShoalClient,
  ShoalError,
  lerpJoints,
  lerpPose,
  type Entity,
  type Hands,
  type Joint,
  type Pose,
  type Profile,
  type SavedSession,
  type StateChange,
} from '../../src/shoal/web/static/sdk/shoal.js';

export async function example(): Promise<void> {
  const client = new ShoalClient({ url: 'ws://127.0.0.1:8080/ws', name: 'Ada', color: '#3cb44b', token: 'secret' });
  const offState = client.on('state', (change: StateChange) => console.log(change.state, change.retryIn ?? 0));
  client.on('member_joined', ({ member }) => console.log(member.name, member.color.toUpperCase()));
  client.on('pose', ({ member, pose, time }) => console.log(member.id, pose.head.pos[1], time));
  client.on('entity_changed', ({ entity, previous, local }) => console.log(entity.v > previous.v, local));
  client.on('message', (message) => console.log(message.topic, message.from, message.data));
  client.on('error', (error: ShoalError) => console.log(error.code, error.ref, error.seq));

  const welcome = await client.connect();
  const joined = await client.join('lobby');
  console.log(welcome.tick_rate, joined.members.length, joined.entities?.length ?? 0, client.rtt);

  const pose: Pose = {
    head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] },
    right: { pos: [0.3, 1.1, -0.3], rot: [0, 0, 0, 1] },
  };
  client.setPose(pose);
  for (const id of client.members.keys()) {
    const seen: Pose | null = client.remotePose(id);
    if (seen) console.log(seen.head.rot[3]);
  }
  client.send('chat', { text: 'hello' });

  // hand tracking: 25 joints per tracked hand, at most `client.jointsRate` a second; `{}` once when tracking stops
  const still: Joint = [0, 1.2, -0.3, 0, 0, 0, 1];
  const hand: Joint[] = HAND_JOINTS.map((): Joint => [...still]);
  const sent: boolean = client.sendJoints({ left: hand, right: null });
  client.sendJoints({});
  console.log(sent, client.jointsRate);
  client.on('joints', ({ member, joints, time }) => {
    const wrist: Joint | undefined = joints.left?.[0];
    console.log(member.joints?.right?.length ?? 0, wrist?.[1], time);
  });
  // each frame: the joints at the moment the poses show, so the fingers stay on the interpolated hands
  for (const id of client.members.keys()) {
    const hands: Hands | null = client.remoteJoints(id, client.serverNow());
    const wrist: Joint | undefined = hands?.right?.[0];
    console.log(hands?.left?.length ?? 0, wrist?.[6]);
  }
  const halfway: Hands = lerpJoints({ left: hand }, { left: hand, right: hand }, 0.5);
  const jointsBuffer = new InterpolationBuffer<Hands>({ interval: 1000 / client.jointsRate, interpolate: lerpJoints });
  jointsBuffer.push(client.serverNow(), halfway);

  const id: string = await client.createEntity({
    kind: 'cube',
    pos: [0, 1, -2],
    props: { color: '#ff0000' },
    owned: false,
  });
  await client.updateEntity(id, { props: { color: '#00ff00', label: null } });
  if (await client.claim(id)) {
    client.streamEntity(id, { pos: [0, 1.2, -2] });
    await client.release(id);
  }
  const entity: Entity | undefined = client.entities.get(id);
  const drawn = client.entityTransform(id);
  console.log(entity?.owner, drawn?.pos[0]);
  await client.deleteEntity(id);

  const buffer = new InterpolationBuffer<Pose>({ delay: 100, interpolate: lerpPose });
  buffer.push(client.serverNow(), pose);
  console.log(buffer.sample(client.serverNow())?.head.pos);

  offState();
  await client.leave();
  client.close();
}

export async function loggedIn(password: string, avatar: Blob): Promise<void> {
  const api = new AccountsApi({ baseUrl: 'http://127.0.0.1:8080' });
  let session: AuthSession;
  try {
    session = new AuthSession(api, await api.login({ username: 'ada', password }));
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) console.log('wait', error.retryAfter ?? 1, 's');
    throw error;
  }
  session.on('tokens', (saved: SavedSession) => sessionStorage.setItem('session', JSON.stringify(saved)));
  session.on('ended', ({ error }) => console.log('log in again', error?.status));
  const profile: Profile = await session.updateProfile({ name: 'Ada L.', color: '#3cb44b' });
  const withImage = await session.uploadAvatar(avatar);
  console.log(profile.name, withImage.avatar ?? 'no image', session.user?.username, session.expiresAt);

  const client = new ShoalClient({ getToken: () => session.token() });
  client.on('state', ({ state, code, error }) => {
    if (state === 'closed' && code === CloseCode.AUTH_FAILED) console.log('refused:', error?.message);
  });
  client.on('member_joined', ({ member }) => console.log(member.name, member.user ?? 'guest', member.avatar));
  client.on('member_updated', ({ member, previous }) => console.log(previous.role, '->', member.role));
  await client.connect();
  console.log(client.lastClose?.code);

  const restored = new AuthSession(api, JSON.parse(sessionStorage.getItem('session') ?? 'null') as SavedSession);
  const guest = new AuthSession(api, await api.guest('Visitor'));
  console.log(restored.guest, guest.guest?.name, (await api.user(profile.id)).avatar);
  await session.logout();
}
