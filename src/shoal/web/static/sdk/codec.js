/**
 * Wire codecs: how a message object becomes one WebSocket frame and back.
 *
 * A codec is chosen when the client is built and offered to the server as a WebSocket subprotocol.
 * Protocol v1 is JSON text; a compact binary codec can be dropped in later with the same shape:
 * `{subprotocol, binary, encode(message), decode(data)}`.
 */

/** Shoal protocol v1 as JSON text frames (`Sec-WebSocket-Protocol: shoal.v1.json`). */
export const jsonCodec = Object.freeze({
  subprotocol: 'shoal.v1.json',
  binary: false,

  /** @param {object} message  @returns {string} */
  encode(message) {
    return JSON.stringify(message);
  },

  /**
   * Parse one frame. Throws on a binary frame or invalid JSON; the client reports that as an `error` event.
   * @param {string | ArrayBuffer} data
   * @returns {object}
   */
  decode(data) {
    if (typeof data !== 'string') throw new TypeError('binary frame on a JSON connection');
    const message = JSON.parse(data);
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
      throw new TypeError('frame is not a Shoal message (no "type")');
    }
    return message;
  },
});
