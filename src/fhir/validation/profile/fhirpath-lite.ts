// A fast evaluator for the FHIRPath most invariants are written in: paths (choice elements found by their JSON
// suffix), literals, `$this`, %resource / %rootResource / %context / %ucum, the operators and / or / xor / implies /
// not(), = != ~ !~, < <= > >= on numbers, in / contains, | and the functions empty, exists, hasValue, count, where, all,
// first, last, not, matches, startsWith, endsWith, length, distinct, isDistinct, ofType (right after an element name).
// @medplum/core's engine, without type information loaded, costs 20-90 µs per evaluation on a lab Observation (it
// probes ~60 type suffixes for every absent element); this costs about one. Anything outside the subset fails to
// compile (the caller then uses the full engine), and values it cannot compare (dates, quantities) throw Fallback at
// run time, with the same effect.
import { suffixType } from './instance.js';
import { deepEqual } from './values.js';

export class Fallback extends Error {}

export interface LiteEnv {
  resource: unknown;
  rootResource: unknown;
  context: unknown;
}

type Fn = (input: unknown[], env: LiteEnv, self: unknown) => unknown[];

/** Compiled expression: evaluates on one value; undefined when the expression is outside the subset. */
export type LiteExpression = (value: unknown, env: LiteEnv) => unknown[];

const UCUM = 'http://unitsofmeasure.org';

interface Token {
  kind: 'id' | 'str' | 'num' | 'op' | 'var';
  text: string;
  /** A `quoted` name: never a keyword. */
  quoted?: boolean;
}

function tokenize(src: string): Token[] | undefined {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'") {
      let s = '';
      i++;
      while (i < src.length && src[i] !== "'") {
        if (src[i] === '\\') {
          const n = src[i + 1];
          s += n === 'n' ? '\n' : n === 't' ? '\t' : n === 'r' ? '\r' : n;
          i += 2;
        } else s += src[i++];
      }
      if (i >= src.length) return undefined;
      i++;
      out.push({ kind: 'str', text: s });
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) return undefined;
      out.push({ kind: 'id', text: src.slice(i + 1, end), quoted: true });
      i = end + 1;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i))!;
      out.push({ kind: 'num', text: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ kind: 'id', text: m[0] });
      i += m[0].length;
    } else if (c === '%') {
      const m = /^%[A-Za-z][A-Za-z0-9_-]*/.exec(src.slice(i));
      if (!m) return undefined;
      out.push({ kind: 'var', text: m[0] });
      i += m[0].length;
    } else {
      const two = src.slice(i, i + 2);
      if (['!=', '<=', '>=', '!~'].includes(two)) {
        out.push({ kind: 'op', text: two });
        i += 2;
      } else if ('=<>~|().,{}+-&'.includes(c)) {
        out.push({ kind: 'op', text: c });
        i++;
      } else return undefined;
    }
  }
  return out;
}

class Unsupported extends Error {}

/** true / false / undefined (empty) of a collection in a boolean context. */
function truth(c: unknown[]): boolean | undefined {
  if (c.length === 0) return undefined;
  if (c.length > 1) throw new Fallback('boolean of a collection');
  return typeof c[0] === 'boolean' ? c[0] : true;
}

function bool(b: boolean | undefined): unknown[] {
  return b === undefined ? [] : [b];
}

/** The children named `name` of each item (choice elements by their type suffix; arrays flattened). */
function child(items: unknown[], name: string): unknown[] {
  const out: unknown[] = [];
  for (const it of items) {
    if (!it || typeof it !== 'object' || Array.isArray(it)) continue;
    const o = it as Record<string, unknown>;
    const v = o[name];
    if (v !== undefined) {
      push(out, v);
      continue;
    }
    for (const k in o) {
      if (k.length > name.length && k.startsWith(name) && k[name.length] >= 'A' && k[name.length] <= 'Z' && suffixType(k.slice(name.length))) push(out, o[k]);
    }
  }
  return out;
}

function push(out: unknown[], v: unknown): void {
  if (Array.isArray(v)) {
    for (const x of v) if (x !== null && x !== undefined) out.push(x);
  } else if (v !== null) out.push(v);
}

function compare(a: unknown[], b: unknown[], op: string): unknown[] {
  if (a.length === 0 || b.length === 0) return [];
  if (a.length > 1 || b.length > 1) throw new Fallback('comparison of collections');
  const x = a[0];
  const y = b[0];
  if (typeof x !== 'number' || typeof y !== 'number') throw new Fallback('comparison of non-numbers');
  return [op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y];
}

function equals(a: unknown[], b: unknown[]): boolean | undefined {
  if (a.length === 0 || b.length === 0) return undefined;
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (typeof x === 'string' && typeof y === 'string' && x !== y && /^\d{4}-/.test(x) && /^\d{4}-/.test(y)) throw new Fallback('date equality');
    return deepEqual(x, y);
  });
}

function equivalent(a: unknown[], b: unknown[]): boolean {
  if (a.length === 0 && b.length === 0) return true;
  if (a.length !== b.length) return false;
  const norm = (v: unknown) => (typeof v === 'string' ? v.trim().replace(/\s+/g, ' ').toLowerCase() : v);
  return a.every((x) => b.some((y) => deepEqual(norm(x), norm(y))));
}

class Parser {
  private i = 0;

  constructor(private readonly t: Token[]) {}

  private peek(): Token | undefined {
    return this.t[this.i];
  }

  private isOp(text: string): boolean {
    const p = this.peek();
    return !!p && p.kind === 'op' && p.text === text;
  }

  private isWord(text: string): boolean {
    const p = this.peek();
    return !!p && p.kind === 'id' && p.text === text;
  }

  private expect(text: string): void {
    if (!this.isOp(text)) throw new Unsupported(`expected ${text}`);
    this.i++;
  }

  parse(): Fn {
    const e = this.implies();
    if (this.i !== this.t.length) throw new Unsupported('trailing tokens');
    return e;
  }

  private implies(): Fn {
    let left = this.orXor();
    while (this.isWord('implies')) {
      this.i++;
      const l = left;
      const r = this.orXor();
      left = (input, env, self) => {
        const a = truth(l(input, env, self));
        if (a === false) return [true];
        const b = truth(r(input, env, self));
        if (a === true) return bool(b);
        return b === true ? [true] : [];
      };
    }
    return left;
  }

  private orXor(): Fn {
    let left = this.and();
    while (this.isWord('or') || this.isWord('xor')) {
      const op = this.t[this.i++].text;
      const l = left;
      const r = this.and();
      left =
        op === 'or'
          ? (input, env, self) => {
              const a = truth(l(input, env, self));
              if (a === true) return [true];
              const b = truth(r(input, env, self));
              if (b === true) return [true];
              return a === false && b === false ? [false] : [];
            }
          : (input, env, self) => {
              const a = truth(l(input, env, self));
              const b = truth(r(input, env, self));
              return a === undefined || b === undefined ? [] : [a !== b];
            };
    }
    return left;
  }

  private and(): Fn {
    let left = this.membership();
    while (this.isWord('and')) {
      this.i++;
      const l = left;
      const r = this.membership();
      left = (input, env, self) => {
        const a = truth(l(input, env, self));
        if (a === false) return [false];
        const b = truth(r(input, env, self));
        if (b === false) return [false];
        return a === true && b === true ? [true] : [];
      };
    }
    return left;
  }

  private membership(): Fn {
    let left = this.equality();
    while (this.isWord('in') || this.isWord('contains')) {
      const op = this.t[this.i++].text;
      const l = left;
      const r = this.equality();
      left = (input, env, self) => {
        let a = l(input, env, self);
        let b = r(input, env, self);
        if (op === 'contains') [a, b] = [b, a];
        if (a.length === 0) return [];
        if (a.length > 1) throw new Fallback('in on a collection');
        return [b.some((y) => deepEqual(a[0], y))];
      };
    }
    return left;
  }

  private equality(): Fn {
    let left = this.comparison();
    while (this.isOp('=') || this.isOp('!=') || this.isOp('~') || this.isOp('!~')) {
      const op = this.t[this.i++].text;
      const l = left;
      const r = this.comparison();
      left = (input, env, self) => {
        const a = l(input, env, self);
        const b = r(input, env, self);
        if (op === '~' || op === '!~') return [equivalent(a, b) === (op === '~')];
        const eq = equals(a, b);
        return eq === undefined ? [] : [op === '=' ? eq : !eq];
      };
    }
    return left;
  }

  private comparison(): Fn {
    let left = this.union();
    while (this.isOp('<') || this.isOp('>') || this.isOp('<=') || this.isOp('>=')) {
      const op = this.t[this.i++].text;
      const l = left;
      const r = this.union();
      left = (input, env, self) => compare(l(input, env, self), r(input, env, self), op);
    }
    return left;
  }

  private union(): Fn {
    let left = this.additive();
    while (this.isOp('|')) {
      this.i++;
      const l = left;
      const r = this.additive();
      left = (input, env, self) => {
        const out = [...l(input, env, self)];
        for (const y of r(input, env, self)) if (!out.some((x) => deepEqual(x, y))) out.push(y);
        return out;
      };
    }
    return left;
  }

  private additive(): Fn {
    let left = this.postfix();
    while (this.isOp('+') || this.isOp('-') || this.isOp('&')) {
      const op = this.t[this.i++].text;
      const l = left;
      const r = this.postfix();
      left = (input, env, self) => {
        const a = l(input, env, self);
        const b = r(input, env, self);
        if (op === '&') return [`${a.length ? singleString(a) ?? '' : ''}${b.length ? singleString(b) ?? '' : ''}`];
        if (a.length === 0 || b.length === 0) return [];
        if (a.length > 1 || b.length > 1 || typeof a[0] !== 'number' || typeof b[0] !== 'number') throw new Fallback('arithmetic on non-numbers');
        return [op === '+' ? a[0] + b[0] : a[0] - b[0]];
      };
    }
    return left;
  }

  private postfix(): Fn {
    let fn = this.primary();
    while (this.isOp('.')) {
      this.i++;
      const prev = fn;
      const step = this.invocation();
      fn = (input, env, self) => step(prev(input, env, self), env, self);
    }
    return fn;
  }

  private primary(): Fn {
    const tok = this.peek();
    if (!tok) throw new Unsupported('unexpected end');
    if (tok.kind === 'str') {
      this.i++;
      return () => [tok.text];
    }
    if (tok.kind === 'num') {
      this.i++;
      const n = Number(tok.text);
      return () => [n];
    }
    if (tok.kind === 'var') {
      this.i++;
      switch (tok.text) {
        case '%resource':
          return (_i, env) => [env.resource];
        case '%rootResource':
          return (_i, env) => [env.rootResource];
        case '%context':
          return (_i, env) => [env.context];
        case '%ucum':
          return () => [UCUM];
        default:
          throw new Unsupported(tok.text);
      }
    }
    if (tok.kind === 'op' && tok.text === '(') {
      this.i++;
      const e = this.implies();
      this.expect(')');
      return e;
    }
    if (tok.kind === 'op' && tok.text === '{') {
      this.i++;
      this.expect('}');
      return () => [];
    }
    if (tok.kind === 'id') {
      if (tok.text === 'true' || tok.text === 'false') {
        this.i++;
        const b = tok.text === 'true';
        return () => [b];
      }
      if (tok.text === '$this') {
        this.i++;
        return (_i, _env, self) => [self];
      }
      // a leading name or function applies to the input
      const step = this.invocation();
      return (input, env, self) => step(input, env, self);
    }
    throw new Unsupported(`unexpected ${tok.text}`);
  }

  /** A name or a function call applied to a collection. */
  private invocation(): (items: unknown[], env: LiteEnv, self: unknown) => unknown[] {
    const tok = this.peek();
    if (!tok || tok.kind !== 'id') throw new Unsupported('expected a name');
    this.i++;
    const name = tok.text;
    if (!this.isOp('(')) {
      if (!tok.quoted && ['and', 'or', 'xor', 'implies', 'in', 'contains', 'is', 'as', 'div', 'mod'].includes(name)) throw new Unsupported(name);
      // "value.ofType(Quantity)" reads valueQuantity
      if (this.isOp('.') && this.t[this.i + 1]?.text === 'ofType' && this.t[this.i + 2]?.text === '(') {
        const type = this.t[this.i + 3];
        if (type?.kind === 'id' && this.t[this.i + 4]?.text === ')') {
          this.i += 5;
          const key = name + type.text[0].toUpperCase() + type.text.slice(1);
          return (items) => child(items, key).length ? directChild(items, key) : [];
        }
      }
      if (name[0] >= 'A' && name[0] <= 'Z') {
        // a type name at the start ("Observation.value"): the input itself when it is that resource
        return (items) => {
          const own = items.filter((x) => (x as { resourceType?: unknown })?.resourceType === name);
          return own.length ? own : child(items, name);
        };
      }
      return (items) => child(items, name);
    }
    this.i++; // (
    const args: Fn[] = [];
    if (!this.isOp(')')) {
      args.push(this.implies());
      while (this.isOp(',')) {
        this.i++;
        args.push(this.implies());
      }
    }
    this.expect(')');
    return fn(name, args);
  }
}

/** Only the exact key (no choice expansion): ofType() names the type. */
function directChild(items: unknown[], key: string): unknown[] {
  const out: unknown[] = [];
  for (const it of items) if (it && typeof it === 'object' && !Array.isArray(it)) push(out, (it as Record<string, unknown>)[key]);
  return out;
}

function stringArg(arg: Fn | undefined, env: LiteEnv, self: unknown): string {
  const v = arg?.([self], env, self);
  if (!v || v.length !== 1 || typeof v[0] !== 'string') throw new Fallback('string argument');
  return v[0];
}

function singleString(items: unknown[]): string | undefined {
  if (items.length === 0) return undefined;
  if (items.length > 1 || typeof items[0] !== 'string') throw new Fallback('string function on a non-string');
  return items[0];
}

const regexes = new Map<string, RegExp>();

function fn(name: string, args: Fn[]): (items: unknown[], env: LiteEnv, self: unknown) => unknown[] {
  const arity = (n: number) => {
    if (args.length !== n) throw new Unsupported(`${name} takes ${n} argument(s)`);
  };
  switch (name) {
    case 'empty':
      arity(0);
      return (items) => [items.length === 0];
    case 'exists':
      if (args.length === 0) return (items) => [items.length > 0];
      arity(1);
      return (items, env) => [items.some((x) => truth(args[0]([x], env, x)) === true)];
    case 'hasValue':
      arity(0);
      return (items) => [items.length === 1 && (typeof items[0] !== 'object' || items[0] === null)];
    case 'count':
      arity(0);
      return (items) => [items.length];
    case 'not':
      arity(0);
      return (items) => {
        const t = truth(items);
        return t === undefined ? [] : [!t];
      };
    case 'where':
      arity(1);
      return (items, env) => items.filter((x) => truth(args[0]([x], env, x)) === true);
    case 'all':
      arity(1);
      return (items, env) => [items.every((x) => truth(args[0]([x], env, x)) === true)];
    case 'first':
      arity(0);
      return (items) => items.slice(0, 1);
    case 'last':
      arity(0);
      return (items) => items.slice(-1);
    case 'distinct':
      arity(0);
      return (items) => items.filter((x, i) => items.findIndex((y) => deepEqual(x, y)) === i);
    case 'isDistinct':
      arity(0);
      return (items) => [items.every((x, i) => items.findIndex((y) => deepEqual(x, y)) === i)];
    case 'length':
      arity(0);
      return (items) => {
        const s = singleString(items);
        return s === undefined ? [] : [s.length];
      };
    case 'matches':
      arity(1);
      return (items, env, self) => {
        const s = singleString(items);
        if (s === undefined) return [];
        const src = stringArg(args[0], env, self);
        let re = regexes.get(src);
        if (!re) regexes.set(src, (re = new RegExp(src, 'su')));
        return [re.test(s)];
      };
    case 'startsWith':
    case 'endsWith':
    case 'contains':
      arity(1);
      return (items, env, self) => {
        const s = singleString(items);
        if (s === undefined) return [];
        const arg = stringArg(args[0], env, self);
        return [name === 'startsWith' ? s.startsWith(arg) : name === 'endsWith' ? s.endsWith(arg) : s.includes(arg)];
      };
    case 'select':
      arity(1);
      return (items, env) => items.flatMap((x) => args[0]([x], env, x));
    case 'tail':
      arity(0);
      return (items) => items.slice(1);
    case 'single':
      arity(0);
      return (items) => {
        if (items.length > 1) throw new Fallback('single() of several');
        return items;
      };
    case 'trace':
      return (items) => items;
    case 'iif':
      if (args.length !== 2 && args.length !== 3) throw new Unsupported('iif arity');
      return (items, env, self) => {
        const x = items.length === 1 ? items[0] : self;
        const c = truth(args[0]([x], env, x));
        return c === true ? args[1]([x], env, x) : args[2] ? args[2]([x], env, x) : [];
      };
    case 'allTrue':
    case 'allFalse':
    case 'anyTrue':
    case 'anyFalse': {
      arity(0);
      const want = name.endsWith('True');
      return (items) => [name.startsWith('all') ? items.every((x) => x === want) : items.some((x) => x === want)];
    }
    case 'intersect':
    case 'exclude':
    case 'union':
    case 'combine':
      arity(1);
      return (items, env, self) => {
        const other = args[0]([self], env, self);
        if (name === 'intersect') return items.filter((x, i) => other.some((y) => deepEqual(x, y)) && items.findIndex((y) => deepEqual(x, y)) === i);
        if (name === 'exclude') return items.filter((x) => !other.some((y) => deepEqual(x, y)));
        if (name === 'combine') return [...items, ...other];
        const out = [...items];
        for (const y of other) if (!out.some((x) => deepEqual(x, y))) out.push(y);
        return out;
      };
    case 'toInteger':
      arity(0);
      return (items) => {
        if (items.length === 0) return [];
        const v = items[0];
        if (items.length > 1) throw new Fallback('toInteger of several');
        if (typeof v === 'number' && Number.isInteger(v)) return [v];
        if (typeof v === 'string' && /^[+-]?\d+$/.test(v)) return [Number(v)];
        if (typeof v === 'boolean') return [v ? 1 : 0];
        return [];
      };
    case 'substring':
      if (args.length !== 1 && args.length !== 2) throw new Unsupported('substring arity');
      return (items, env, self) => {
        const s = singleString(items);
        if (s === undefined) return [];
        const start = args[0]([self], env, self)[0];
        const len = args[1]?.([self], env, self)[0];
        if (typeof start !== 'number' || (len !== undefined && typeof len !== 'number')) throw new Fallback('substring arguments');
        if (start < 0 || start >= s.length) return [];
        return [len === undefined ? s.slice(start) : s.slice(start, start + len)];
      };
    case 'lower':
    case 'upper':
      arity(0);
      return (items) => {
        const s = singleString(items);
        return s === undefined ? [] : [name === 'lower' ? s.toLowerCase() : s.toUpperCase()];
      };
    default:
      throw new Unsupported(name);
  }
}

/** Compiles an expression into the fast evaluator, or undefined when it is outside the subset. */
export function compileLite(expression: string): LiteExpression | undefined {
  const tokens = tokenize(expression);
  if (!tokens) return undefined;
  try {
    const f = new Parser(tokens).parse();
    return (value, env) => f([value], env, value);
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}
