// Server messages shown in the page's own sentences.

/** `text` with a full stop, unless it already ends with one (or with ? or !). */
export function sentence(text) {
  const trimmed = String(text).trim();
  return /[.!?…]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** `text` as a sentence followed by `advice`, unless the text already gives that advice. */
export function advise(text, advice) {
  const said = sentence(text);
  return said.toLowerCase().includes(advice.replace(/\.$/, '').toLowerCase()) ? said : `${said} ${advice}`;
}
