"""Hand joints in a real browser against a real server: sent through the SDK from a page's own script (binary and
JSON), and from an emulated Quest 3's tracked hands (iwer's hand input) through the app; another page draws them
as spheres in the sender's colour and hides them after the sender's empty `joints` message, or when it leaves."""

from __future__ import annotations

import math
from typing import Any

from support.browser import AppPage, OpenApp
from support.servers import RunningServer

RAISE = 0.3  # metres the emulated right hand is lifted

# Two SDK clients in Ann's page: one speaks binary (shoal.v1.bin), one JSON; both stand somewhere visible.
START_SENDERS = """async (arg) => {
  const { ShoalClient, binaryCodec } = await import('/sdk/shoal.js');
  const start = async (name, codec, x) => {
    const client = new ShoalClient({ name, color: '#e6194b', codec });
    await client.connect();
    await client.join(arg.room);
    client.setPose({ head: { pos: [x, 1.6, -1.5], rot: [0, 0, 0, 1] } });
    return client;
  };
  window.senders = {
    bin: await start('Hands-bin', binaryCodec, -0.4),
    json: await start('Hands-json', undefined, 0.4),
  };
  window.heard = [];
  window.senders.json.on('joints', ({ member, joints }) =>
    window.heard.push({ name: member.name, left: joints.left ?? null, right: joints.right ?? null }));
  return [window.senders.bin.wire.subprotocol, window.senders.json.wire.subprotocol];
}"""

FIND = "const j = shoalDebug.joints().find(j => j.name === arg.name);"
CLOSE = "const close = (a, b, d) => Boolean(a && b) && Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]) < d;"


def hand(wrist: list[float]) -> list[list[float]]:
    """25 joints: the wrist, then five per finger fanned out in front of it, unrotated."""
    x, y, z = wrist
    return [[x + 0.02 * (i % 5), y + 0.02 * (i // 5), z - 0.01 * (i % 3), 0.0, 0.0, 0.0, 1.0] for i in range(25)]


def near(a: list[float] | None, b: list[float] | None, tolerance: float = 0.002) -> bool:
    return a is not None and b is not None and math.dist(a, b) < tolerance


async def drawn(
    page: AppPage, name: str, expression: str, arg: dict[str, Any] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """Wait until `name`'s joints as `page` draws them (`j`, from `shoalDebug.joints()`) satisfy the JavaScript
    `expression` (with `arg`, and `close(a, b, d)`: points a and b within d metres); return them."""
    return await page.wait_for(
        f"(() => {{ {FIND} {CLOSE} return j && ({expression}) ? j : null; }})()",
        {"name": name, **(arg or {})},
        timeout=timeout,
    )


async def test_joints_sent_through_the_sdk_are_drawn_on_the_other_page_until_the_empty_message(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    bob = await open_app(server.url, room, "joints-bob")
    await bob.join("Bob", "#4363d8")
    ann = await open_app(server.url, room, "joints-ann")
    await ann.join("Ann", "#3cb44b")
    wires = await ann.page.evaluate(START_SENDERS, {"room": room})
    assert wires == ["shoal.v1.bin", "shoal.v1.json"]
    assert await ann.page.evaluate("() => window.senders.bin.jointsRate") > 0

    left, right, other = hand([-0.6, 1.2, -1.2]), hand([-0.2, 1.2, -1.2]), hand([0.5, 1.1, -1.3])
    await ann.page.evaluate(
        "(arg) => [window.senders.bin.sendJoints({ left: arg.left, right: arg.right }),"
        " window.senders.json.sendJoints({ right: arg.other })]",
        {"left": left, "right": right, "other": other},
    )

    # Bob's page (binary, like every app page) draws both senders: 50 spheres and 25
    both = await drawn(bob, "Hands-bin", "j.visible && j.count === 50")
    assert near(both["left"], left[0][:3]) and near(both["right"], right[0][:3])
    one = await drawn(bob, "Hands-json", "j.visible && j.count === 25")
    assert one["left"] is None and near(one["right"], other[0][:3])
    # the JSON client got the binary sender's hands decoded, every joint within the 0.1 mm steps
    heard = await ann.page.wait_for_function(
        "() => window.heard.find(h => h.name === 'Hands-bin' && h.left && h.right)", timeout=5000
    )
    heard = await heard.json_value()
    for sent, received in ((left, heard["left"]), (right, heard["right"])):
        assert len(received) == 25
        assert all(near(s[:3], r[:3], 2e-4) for s, r in zip(sent, received, strict=True))
    await bob.screenshot("joints-sdk")

    # an empty joints message: the hands are gone on Bob's page; the other sender's stay
    await ann.page.evaluate("() => window.senders.bin.sendJoints({})")
    gone = await drawn(bob, "Hands-bin", "!j.visible && j.count === 0")
    assert gone["left"] is None and gone["right"] is None
    assert (await drawn(bob, "Hands-json", "j.visible"))["count"] == 25

    # a member that leaves takes its joints along
    await ann.page.evaluate("() => window.senders.json.close()")
    await bob.wait_for("!shoalDebug.joints().some(j => j.name === 'Hands-json')")
    await ann.page.evaluate("() => window.senders.bin.close()")


async def test_tracked_hands_of_an_emulated_headset_are_drawn_on_the_other_page(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    vera = await open_app(server.url, room, "joints-vera", headset=True)
    await vera.join("Vera", "#f58231")
    bob = await open_app(server.url, room, "joints-bob")
    await bob.join("Bob", "#4363d8")

    # the emulated Quest tracks hands instead of controllers; the app asked for 'hand-tracking', so it gets them
    await vera.page.evaluate("() => { xrDevice.primaryInputMode = 'hand'; }")
    enter_vr = vera.page.locator("#enter-vr")
    await enter_vr.wait_for(timeout=5000)
    await enter_vr.click()
    await vera.wait_for("shoalDebug.presenting()", timeout=10)
    sent = await vera.wait_for(
        "(() => { const s = shoalDebug.self().joints; return s.left && s.right ? s : null; })()", timeout=10
    )
    assert math.dist(sent["left"], sent["right"]) > 0.1, "two separate wrists"

    seen = await drawn(
        bob,
        "Vera",
        "j.visible && j.count === 50 && close(j.left, arg.left, 0.01) && close(j.right, arg.right, 0.01)",
        {"left": sent["left"], "right": sent["right"]},
        timeout=10,
    )
    avatar = await bob.avatar("Vera")
    assert avatar and avatar["left"] is None and avatar["right"] is None, "tracked hands show joints, not mittens"

    # the right hand moves up: Bob sees its joints follow, the left ones stay
    await vera.page.evaluate(f"() => {{ xrDevice.hands.right.position.y += {RAISE}; }}")
    raised = await drawn(bob, "Vera", f"j.right && j.right[1] > arg.y + {RAISE - 0.05}", {"y": seen["right"][1]}, 10)
    assert raised["right"][1] - seen["right"][1] < RAISE + 0.05
    assert math.dist(raised["left"], seen["left"]) < 0.01, "only the right hand moved"
    await vera.screenshot("joints-vr")
    await bob.screenshot("joints-vr")

    # back to controllers: no hand is tracked any more, Vera says so once and Bob hides the joints
    await vera.page.evaluate("() => { xrDevice.primaryInputMode = 'controller'; }")
    await vera.wait_for("shoalDebug.self().joints.left === null && shoalDebug.self().joints.right === null", timeout=10)
    hidden = await drawn(bob, "Vera", "!j.visible")
    assert hidden["count"] == 0 and hidden["left"] is None and hidden["right"] is None
    # and the controllers are Vera's hands again
    await bob.wait_for(
        "(() => { const v = shoalDebug.avatars().find(a => a.name === 'Vera'); return v.left && v.right; })()"
    )
