// Small DOM helpers shared by the views.

/** An HTML element with attributes and children (strings become text). */
export function el(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name === "text") {
      element.textContent = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      element.append(child);
    }
  }
  return element;
}

/** Replace the children of `parent` with `children`. */
export function fill(parent, children) {
  parent.replaceChildren(...children.filter((child) => child !== null && child !== undefined));
}

/** A scheme's options as words: "mode fan_in, nonlinearity layer" ("" when none). */
export function schemeOptions(scheme) {
  return Object.entries(scheme)
    .filter(([name, value]) => name !== "name" && value !== null && typeof value !== "object")
    .map(([name, value]) => `${name} ${value}`)
    .join(", ");
}

/**
 * An activation and its parameters as words: "leaky_relu (negative_slope 0.01)".
 * The catalogue nests the parameters under `parameters`; the charts list them
 * beside the name.
 */
export function activationText(activation) {
  const { name, parameters: nested, ...flat } = activation;
  const parameters = Object.entries(nested ?? flat)
    .filter(([, value]) => typeof value !== "object")
    .map(([name, value]) => `${name} ${value}`)
    .join(", ");
  return parameters ? `${name} (${parameters})` : name;
}

/** "1 layer", "20 layers". */
export function count(number, word) {
  return `${number} ${word}${number === 1 ? "" : "s"}`;
}
