// fixed[x] and pattern[x] comparison (elementdefinition-definitions.html#ElementDefinition.fixed_x_ and .pattern_x_):
// a fixed value must equal the instance exactly; a pattern must be contained in it (each pattern property present
// with a matching value, each pattern array item matched by some instance item).

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Does `instance` contain `pattern`? */
export function matchesPattern(instance: unknown, pattern: unknown): boolean {
  if (pattern === null || typeof pattern !== 'object') return instance === pattern || (typeof instance === 'number' && instance === pattern);
  if (Array.isArray(pattern)) {
    if (!Array.isArray(instance)) return pattern.length === 1 && matchesPattern(instance, pattern[0]);
    return pattern.every((p) => instance.some((i) => matchesPattern(i, p)));
  }
  if (instance === null || typeof instance !== 'object' || Array.isArray(instance)) return false;
  return Object.entries(pattern).every(([k, v]) => matchesPattern((instance as Record<string, unknown>)[k], v));
}

/** A short rendering of a value for a message. */
export function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}
