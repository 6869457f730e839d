// A person's picture in the page's panels: their avatar image in a ring of their colour, or a disc of the
// colour alone when they have no image or it fails to load.

/** Fill `element` with the picture of `{avatar, color}` (any previous picture is replaced). */
export function showPicture(element, { avatar, color }) {
  element.style.setProperty('--colour', color);
  if (!avatar) {
    element.replaceChildren();
    return;
  }
  const image = document.createElement('img');
  image.alt = '';
  image.src = avatar;
  image.onerror = () => image.remove(); // the colour disc underneath shows instead
  element.replaceChildren(image);
}
