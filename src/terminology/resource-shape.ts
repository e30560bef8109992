// A CodeSystem or ValueSet sent inside a Parameters body has not been through the write path's schema validation:
// the parts the terminology engine walks are checked here, so a malformed one is a 400 naming the element.
import { FhirError } from '../core/errors.js';

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function fail(what: string, where: string): never {
  throw new FhirError('invalid', `${what} is malformed`, { code: 'PARAMETERS_INVALID', expression: [where] });
}

function arrayOf(v: unknown, where: string, each: (x: unknown, at: string) => void): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) fail(where, where);
  v.forEach((x, i) => each(x, `${where}[${i}]`));
}

function text(v: unknown, where: string): void {
  if (v !== undefined && typeof v !== 'string') fail(where, where);
}

function concepts(v: unknown, where: string): void {
  arrayOf(v, where, (c, at) => {
    if (!isObject(c)) fail(at, at);
    text(c.code, `${at}.code`);
    text(c.display, `${at}.display`);
    arrayOf(c.property, `${at}.property`, (p, pat) => (isObject(p) ? text(p.code, `${pat}.code`) : fail(pat, pat)));
    arrayOf(c.designation, `${at}.designation`, (d, dat) => (isObject(d) ? text(d.value, `${dat}.value`) : fail(dat, dat)));
    concepts(c.concept, `${at}.concept`);
  });
}

/** Checks a CodeSystem given in a body; `where` is its FHIRPath (e.g. Parameters.parameter[0].resource). */
export function assertCodeSystemShape(cs: Record<string, unknown>, where: string): void {
  text(cs.url, `${where}.url`);
  text(cs.content, `${where}.content`);
  arrayOf(cs.property, `${where}.property`, (p, at) => (isObject(p) ? text(p.code, `${at}.code`) : fail(at, at)));
  concepts(cs.concept, `${where}.concept`);
}

/** Checks a ValueSet given in a body: compose include/exclude (system, concept, filter, valueSet) and expansion. */
export function assertValueSetShape(vs: Record<string, unknown>, where: string): void {
  text(vs.url, `${where}.url`);
  if (vs.compose !== undefined) {
    if (!isObject(vs.compose)) fail(`${where}.compose`, `${where}.compose`);
    for (const part of ['include', 'exclude'] as const) {
      arrayOf(vs.compose[part], `${where}.compose.${part}`, (inc, at) => {
        if (!isObject(inc)) fail(at, at);
        text(inc.system, `${at}.system`);
        text(inc.version, `${at}.version`);
        concepts(inc.concept, `${at}.concept`);
        arrayOf(inc.filter, `${at}.filter`, (f, fat) => {
          if (!isObject(f)) fail(fat, fat);
          for (const k of ['property', 'op', 'value']) text(f[k], `${fat}.${k}`);
        });
        arrayOf(inc.valueSet, `${at}.valueSet`, text);
      });
    }
  }
  if (vs.expansion !== undefined) {
    if (!isObject(vs.expansion)) fail(`${where}.expansion`, `${where}.expansion`);
    const contains = (v: unknown, at: string): void =>
      arrayOf(v, at, (c, cat) => {
        if (!isObject(c)) fail(cat, cat);
        text(c.system, `${cat}.system`);
        text(c.code, `${cat}.code`);
        contains(c.contains, `${cat}.contains`);
      });
    contains(vs.expansion.contains, `${where}.expansion.contains`);
  }
}
