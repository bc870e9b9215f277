// Values that JSON cannot hold exactly (Map, Set, Date, RegExp, BigInt,
// typed arrays, ArrayBuffer, cycles...) travel as the structured-clone
// records of @ungap/structured-clone (vendored in vendor/structured-clone,
// pinned in package.json; TestVendoredClone checks the copy), after a text
// message's first character U+001F. What the platform's structured clone
// refuses (functions, symbols, MessagePorts and other host objects, a
// transfer list) throws a DOMException named DataCloneError: never a
// silent loss. See README "Values on the wire".
import { serialize } from './vendor/structured-clone/serialize.js';
import { deserialize } from './vendor/structured-clone/deserialize.js';

export const US = '\u001f';

// Object kinds structured clone keeps (toString tags).
const CLONABLE = new Set(['Object', 'Array', 'Date', 'RegExp', 'Map', 'Set', 'Error', 'ArrayBuffer', 'DataView',
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'Boolean', 'Number', 'String']);

function dataCloneError(what) {
  return new DOMException(`${what} could not be cloned: it cannot cross a network`, 'DataCloneError');
}

/** checkTransfer throws DataCloneError for a non-empty transfer list (ports cannot cross). */
export function checkTransfer(transfer) {
  if (transfer != null && [...transfer].length > 0) throw dataCloneError('a transfer list (MessagePort, ArrayBuffer transfer)');
}

/**
 * exactJSON reports whether JSON carries v exactly (so plain clients can
 * read it): plain objects and arrays of strings, finite numbers, booleans
 * and null, without cycles or undefined. It throws DataCloneError for what
 * structured clone refuses.
 */
export function exactJSON(v, seen = new Set()) {
  switch (typeof v) {
    case 'string': case 'boolean': return true;
    case 'number': return Number.isFinite(v) && !Object.is(v, -0);
    case 'undefined': case 'bigint': return false;
    case 'function': case 'symbol': throw dataCloneError(typeof v === 'function' ? `function ${v.name || '(anonymous)'}` : String(v));
  }
  if (v === null) return true;
  const tag = Object.prototype.toString.call(v).slice(8, -1);
  if (!CLONABLE.has(tag)) throw dataCloneError(tag);
  if (seen.has(v)) return false; // a cycle, or a shared reference JSON would duplicate
  seen.add(v);
  let exact = tag === 'Array' || (tag === 'Object' && Object.getPrototypeOf(v) === Object.prototype);
  const items = tag === 'Map' ? [...v].flat() : tag === 'Set' ? [...v]
    : (tag === 'Array' || tag === 'Object' || tag === 'Error') ? Object.values(v) : [];
  if (tag === 'Array' && Object.keys(v).length !== v.length) exact = false; // holes
  for (const x of items) if (!exactJSON(x, seen)) exact = false;
  return exact;
}

/** encodeClone returns the text of a structured value (after US). */
export function encodeClone(v) {
  try {
    return US + JSON.stringify(serialize(v), keepNumbers);
  } catch (err) {
    if (err instanceof DOMException) throw err;
    throw dataCloneError(`the value (${err.message})`);
  }
}

// JSON has no NaN, Infinity or -0: they travel as {"$n": "NaN"} inside the
// records (which hold no object in a primitive's place otherwise).
function keepNumbers(_, v) {
  return typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0)) ? { $n: Object.is(v, -0) ? '-0' : String(v) } : v;
}

function restoreNumbers(_, v) {
  return v && typeof v === 'object' && !Array.isArray(v) && typeof v.$n === 'string' && Object.keys(v).length === 1 ? Number(v.$n) : v;
}

/** decodeClone reads the text after US. */
export function decodeClone(text) { return deserialize(JSON.parse(text, restoreNumbers)); }
