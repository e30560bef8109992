// Hostile search input (REST.md §8-§9; STYLE.md §3 "nothing but a FhirError leaves"): quotes, backslashes, LIKE
// wildcards, SQL fragments, FHIR separators, 5,000-character values and unicode (emoji, RTL, combining marks), in
// every parameter type. Each is matched literally, nothing answers 500, and the tables are still there afterwards.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keyFor, keys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const keyOf = (id: string) => keyFor(ids, id);
const enc = encodeURIComponent;
/** FHIR search escaping (search.html#escaping): \ , $ | */
const esc = (v: string) => v.replace(/[\\,$|]/g, (c) => `\\${c}`);
const norm = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

async function found(query: string): Promise<string[]> {
  const res = await t.api.get(`${t.path}/${query}`);
  if (res.status !== 200) throw new Error(`${query.slice(0, 200)} -> ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => keyOf(e.resource.id)).sort();
}
async function foundByPost(type: string, body: string): Promise<string[]> {
  const res = await t.api.post(`${t.path}/${type}/_search`).set('Content-Type', 'application/x-www-form-urlencoded').send(body);
  if (res.status !== 200) throw new Error(`POST ${type} -> ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => keyOf(e.resource.id)).sort();
}
/** uri values may not contain whitespace */
const uriOf = (v: string) => `http://x.org/${v.replace(/\s+/g, '~')}`;

// Stored in resources (short enough for any index); the key is the test's name for it.
const STORED: Record<string, string> = {
  likeWild: 'a%b_c',
  percent: '%',
  underscore: '_',
  backslash: 'a\\b',
  quote: "O'Brien",
  dquote: 'say "hi"',
  sqlOr: "' OR 1=1 --",
  sqlDrop: "'); DROP TABLE resource; --",
  separators: 'x,y|z$w',
  dollarOne: '$1',
  emoji: '😀🎉 party',
  arabic: 'مرحبا',
  hebrew: 'שלום עולם',
  rtlOverride: '\u202Eevil\u202C',
  combining: 'Zoe\u0308',
  long600: `L${'long-'.repeat(120)}`,
};
const HOSTILE_QUERIES = [...Object.values(STORED), "x' UNION SELECT * FROM tenant --", '*', '?', '#', '&', '=', '+', '..', '/', 'Patient/../x', '%00', '%%', '\\\\', "''", '${x}', 'a'.repeat(5000)];

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'shst');
  for (const [key, v] of Object.entries(STORED)) {
    ids[key] = (await create(t, {
      resourceType: 'Patient',
      name: [{ family: v, given: [`G${v}`] }],
      identifier: [{ system: `urn:sys:${key}`, value: v }],
      address: [{ city: v }],
      text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${v.replace(/&/g, '&amp;').replace(/</g, '&lt;')} narrative${key}</div>` },
    })).id;
    ids[`obs_${key}`] = (await create(t, {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '5778-6' }], text: v },
      subject: { reference: `Patient/${ids[key]}` },
      performer: [{ identifier: { system: 'urn:perf', value: v } }],
      valueString: v,
    })).id;
    ids[`qty_${key}`] = (await create(t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:q', code: key }] }, valueQuantity: { value: 7, system: 'urn:units', code: v } })).id;
    ids[`vs_${key}`] = (await create(t, { resourceType: 'ValueSet', status: 'draft', url: uriOf(v) })).id;
  }
});
afterAll(async () => server.close());

describe('string: wildcards and quotes are literal', () => {
  it('a%b_c is found by itself and not by % or _ used as wildcards', async () => {
    expect(await found(`Patient?family=${enc('a%b_c')}`)).toEqual(keys('likeWild'));
    expect(await found(`Patient?family:exact=${enc('a%b_c')}`)).toEqual(keys('likeWild'));
    expect(await found(`Patient?family=${enc('%')}`)).toEqual(keys('percent'));
    expect(await found(`Patient?family=${enc('_')}`)).toEqual(keys('underscore'));
    expect(await found(`Patient?family=${enc('a_b')}`)).toEqual([]);
    expect(await found(`Patient?family=${enc('a%c')}`)).toEqual([]);
    expect(await found(`Patient?family:contains=${enc('%')}`)).toEqual(keys('likeWild', 'percent'));
    expect(await found(`Patient?family:contains=${enc('_')}`)).toEqual(keys('likeWild', 'underscore'));
    expect(await found(`Patient?family:contains=${enc('b_c')}`)).toEqual(keys('likeWild'));
  });

  it.each(Object.keys(STORED))('family, :exact, :contains, given and address find %s literally', async (key) => {
    const v = STORED[key];
    const prefixMatches = Object.keys(STORED).filter((k) => norm(STORED[k]).startsWith(norm(v))).sort();
    expect(await found(`Patient?family=${enc(esc(v))}`)).toEqual(prefixMatches);
    expect(await found(`Patient?family:exact=${enc(esc(v))}`)).toEqual([key]);
    expect(await found(`Patient?family:contains=${enc(esc(v))}`)).toEqual(Object.keys(STORED).filter((k) => norm(STORED[k]).includes(norm(v))).sort());
    expect(await found(`Patient?given:exact=${enc(esc(`G${v}`))}`)).toEqual([key]);
    expect(await found(`Patient?address-city:exact=${enc(esc(v))}`)).toEqual([key]);
  });

  it('unicode: emoji, RTL scripts and combining marks (accent-insensitive both ways)', async () => {
    expect(await found(`Patient?family=${enc('😀')}`)).toEqual(keys('emoji'));
    expect(await found(`Patient?family=${enc('مرح')}`)).toEqual(keys('arabic'));
    expect(await found(`Patient?name=${enc('שלום')}`)).toEqual(keys('hebrew'));
    expect(await found(`Patient?family=${enc('zoë')}`)).toEqual(keys('combining'));
    expect(await found(`Patient?family=${enc('ZOE')}`)).toEqual(keys('combining'));
    expect(await found(`Patient?family:contains=${enc('evil')}`)).toEqual(keys('rtlOverride'));
  });
});

describe('every parameter type takes hostile values without a 500', () => {
  // forms marked `true` split the value on | $ : and may answer 400 to a value with extra separators (never 500)
  const forms: [string, (v: string) => string, boolean?][] = [
    ['string', (v) => `Patient?family=${enc(v)}`],
    ['string :contains', (v) => `Patient?name:contains=${enc(v)}`],
    ['token', (v) => `Patient?identifier=${enc(v)}`],
    ['token system|', (v) => `Patient?identifier=${enc(`${v}|${v}`)}`],
    ['token :text', (v) => `Observation?code:text=${enc(v)}`],
    ['token :not', (v) => `Observation?code:not=${enc(v)}`],
    ['token :of-type', (v) => `Patient?identifier:of-type=${enc(`${v}|${v}|${v}`)}`, true],
    ['reference', (v) => `Observation?subject=${enc(v)}`],
    ['reference Type/', (v) => `Observation?subject=${enc(`Patient/${v}`)}`],
    ['reference :identifier', (v) => `Observation?performer:identifier=${enc(v)}`],
    ['uri', (v) => `ValueSet?url=${enc(v)}`],
    ['uri :below', (v) => `ValueSet?url:below=${enc(v)}`],
    ['uri :above', (v) => `ValueSet?url:above=${enc(v)}`],
    ['quantity units', (v) => `Observation?value-quantity=${enc(`7|${v}|${v}`)}`, true],
    ['composite', (v) => `Observation?code-value-string=${enc(`${v}$${v}`)}`, true],
    ['_text', (v) => `Patient?_text=${enc(v)}`],
    ['_content', (v) => `Patient?_content=${enc(v)}`],
    ['_id', (v) => `Patient?_id=${enc(v)}`],
    ['_tag', (v) => `Patient?_tag=${enc(v)}`],
    ['chain', (v) => `Observation?subject:Patient.name=${enc(v)}`],
    ['untyped chain', (v) => `Observation?subject.identifier=${enc(v)}`],
    ['_has', (v) => `Patient?_has:Observation:subject:value-string=${enc(v)}`],
    ['_has nested', (v) => `Patient?_has:Observation:subject:_has:Provenance:target:agent=${enc(v)}`],
    ['_sort', (v) => `Patient?_sort=${enc(v)}`],
    ['_include', (v) => `Observation?_include=${enc(`Observation:subject:${v}`)}`, true],
    ['_elements', (v) => `Patient?_elements=${enc(v)}`],
  ];
  it.each(forms.map(([name, build, splits]) => [name, build, splits === true] as const))('%s', async (_name, build, splits) => {
    for (const v of HOSTILE_QUERIES) {
      const res = await t.api.get(`${t.path}/${build(v)}`);
      const expected = splits && /[|$:]/.test(v) ? [200, 400] : [200];
      expect({ v: v.slice(0, 40), status: res.status, body: res.body.resourceType }).toEqual({ v: v.slice(0, 40), status: expected.includes(res.status) ? res.status : expected[0], body: res.status === 200 ? 'Bundle' : 'OperationOutcome' });
    }
  });

  it('date, number and quantity values that are not dates or numbers are a 400', async () => {
    for (const v of HOSTILE_QUERIES) {
      for (const q of [`Patient?birthdate=${enc(v)}`, `Patient?birthdate=${enc(`2024-01-01${v}`)}`, `Patient?_lastUpdated=${enc(v)}`, `RiskAssessment?probability=${enc(v)}`, `Observation?value-quantity=${enc(v)}`, `Observation?code-value-quantity=${enc(`http://loinc.org|718-7$${v}`)}`]) {
        const res = await t.api.get(`${t.path}/${q}`);
        expect({ q: q.slice(0, 80), status: res.status }).toEqual({ q: q.slice(0, 80), status: 400 });
      }
    }
  });

  it('hostile parameter names are ignored (lenient) or rejected, never a 500', async () => {
    for (const name of ["fa'mily", 'family;DROP', "subject:Patient.na'me", '_has:Obs%27ervation:subject:code', "name:exa'ct", '_type', '__proto__', 'constructor', `${'x'.repeat(3000)}`]) {
      const res = await t.api.get(`${t.path}/Patient?${enc(name)}=x`);
      expect({ name: name.slice(0, 30), ok: [200, 400].includes(res.status) }).toEqual({ name: name.slice(0, 30), ok: true });
    }
    expect((await t.api.get(`${t.path}?_type=${enc("Pa'tient")}`)).status).toBe(404);
  });
});

describe('hostile values are matched literally in every parameter type', () => {
  it.each(Object.keys(STORED))('%s', async (key) => {
    const v = STORED[key];
    expect(await found(`Patient?identifier=${enc(`urn:sys:${key}|${esc(v)}`)}`)).toEqual([key]);
    expect(await found(`Patient?identifier=${enc(esc(v))}`)).toEqual([key]);
    expect(await found(`Observation?code:text=${enc(esc(v))}`)).toEqual(Object.keys(STORED).filter((k) => norm(STORED[k]).startsWith(norm(v))).map((k) => `obs_${k}`).sort());
    expect(await found(`Observation?performer:identifier=${enc(`urn:perf|${esc(v)}`)}`)).toEqual([`obs_${key}`]);
    if (!/[\\,$|]/.test(v)) expect(await found(`Observation?value-quantity=${enc(`7|urn:units|${v}`)}`)).toEqual([`qty_${key}`]);
    expect(await found(`ValueSet?url=${enc(esc(uriOf(v)))}`)).toEqual([`vs_${key}`]);
    expect(await found(`Observation?subject:Patient.family:exact=${enc(esc(v))}`)).toEqual([`obs_${key}`]);
    expect(await found(`Patient?_has:Observation:subject:code:text=${enc(esc(v))}`)).toEqual(Object.keys(STORED).filter((k) => norm(STORED[k]).startsWith(norm(v))).sort());
    expect(await found(`Patient?_text=narrative${key}`)).toEqual([key]);
  });

  // plan.ts parseValue 'quantity': `rest.split('|')` ignores \| escapes and the system/code parts are never
  // unescaped, so a unit code containing \ , $ or | cannot be searched for.
  it('quantity units with escaped \\ \\, \\$ \\| are matched literally', async () => {
    for (const key of ['backslash', 'separators', 'dollarOne']) {
      expect(await found(`Observation?value-quantity=${enc(`7|urn:units|${esc(STORED[key])}`)}`)).toEqual([`qty_${key}`]);
    }
  });

  it('uri :below and :above treat % and _ in stored and searched URLs literally', async () => {
    expect(await found(`ValueSet?url:below=${enc('http://x.org/%')}`)).toEqual(keys('vs_percent'));
    expect(await found(`ValueSet?url:below=${enc('http://x.org/_')}`)).toEqual(keys('vs_underscore'));
    expect(await found(`ValueSet?url:below=${enc('http://x.org/a%')}`)).toEqual(keys('vs_likeWild'));
    // the stored "http://x.org/%" is not "above" an arbitrary URL: its % is not a wildcard
    expect(await found(`ValueSet?url:above=${enc('http://x.org/zzz/deeper')}`)).toEqual([]);
    expect(await found(`ValueSet?url:above=${enc('http://x.org/a%b_c/deeper')}`)).toEqual(keys('vs_likeWild'));
  });

  it('composite with a hostile string component', async () => {
    expect(await found(`Observation?code-value-string=${enc(`http://loinc.org|5778-6$${esc("o'bri")}`)}`)).toEqual(keys('obs_quote'));
    expect(await found(`Observation?code-value-string=${enc(`http://loinc.org|5778-6$${esc('%')}`)}`)).toEqual(keys('obs_percent'));
    expect(await found(`Observation?code-value-string=${enc(`http://loinc.org|5778-6$${esc('_')}`)}`)).toEqual(keys('obs_underscore'));
  });

  it('_content with quotes and SQL finds only resources with those words', async () => {
    expect(await found(`Patient?_content=${enc("O'Brien")}`)).toEqual(keys('quote'));
    // words, not SQL or query syntax: every word of "' OR 1=1 --" must appear, so only sqlOr matches
    expect(await found(`Patient?_content=${enc("' OR 1=1 --")}`)).toEqual(keys('sqlOr'));
    expect(await found(`Patient?_content=${enc("'); DROP TABLE resource; --")}`)).toEqual(keys('sqlDrop'));
    expect(await found(`Patient?_content=${enc('%')}`)).toEqual([]);
    expect(await found(`Patient?_content=${enc('😀')}`)).toEqual([]);
  });

  // The value goes to websearch_to_tsquery (search-sql.ts criterionCondition), so "-word" means NOT word, and a
  // search for the text "-zebra" returns every resource that does not contain "zebra".
  it('_content=-word is not turned into a negation that matches everything else', async () => {
    const all = await found('Patient?_count=1000');
    expect(all.length).toBeGreaterThan(2);
    expect(await found(`Patient?_content=${enc("-O'Brien")}`)).toEqual(expect.not.arrayContaining(['percent', 'underscore']));
  });
});

describe('5,000-character values', () => {
  const long = 'Z'.repeat(5000);
  const longUnicode = '😀'.repeat(2000) + 'ש'.repeat(3000);
  it('in every parameter type by GET', async () => {
    for (const q of [`Patient?family=${long}`, `Patient?family:contains=${long}`, `Patient?identifier=${long}|${long}`, `Observation?subject=Patient/${long}`, `ValueSet?url:above=${long}`, `Observation?code-value-string=${long}$${long}`, `Patient?_content=${long}`, `Patient?_text=${long}`, `Observation?subject:Patient.name=${long}`, `Patient?_has:Observation:subject:code=${long}`, `Observation?value-quantity=7|${long}|${long}`]) {
      expect(await found(q)).toEqual([]);
    }
    for (const q of [`Patient?birthdate=${long}`, `RiskAssessment?probability=${long}`, `Patient?_count=${long}`, `Patient?_cursor=${long}`]) {
      expect((await t.api.get(`${t.path}/${q}`)).status).toBe(400);
    }
  });

  it('unicode in every parameter type by POST _search (too long for a URL)', async () => {
    const v = enc(longUnicode);
    for (const [type, body] of [['Patient', `family=${v}`], ['Patient', `name:contains=${v}`], ['Patient', `identifier=${v}`], ['Observation', `subject=${v}`], ['ValueSet', `url:below=${v}`], ['Patient', `_content=${v}`], ['Observation', `subject:Patient.name=${v}`], ['Patient', `_has:Observation:subject:value-string=${v}`]]) {
      expect(await foundByPost(type, body)).toEqual([]);
    }
  });

  it('a stored 600-character value is found by its full value and its prefix', async () => {
    expect(await found(`Patient?family:exact=${STORED.long600}`)).toEqual(keys('long600'));
    expect(await found(`Patient?family=${STORED.long600.slice(0, 300)}`)).toEqual(keys('long600'));
  });

  // sp_token / sp_string / sp_uri have btree indexes on the value; a value whose index entry exceeds ~2.7 kB
  // ("index row size exceeds btree version 4 maximum 2704") fails the whole write with a 500. extract.ts truncates
  // strings to 2,048 characters (not bytes) and does not truncate token values at all.
  it('a resource with a 5,000-character identifier, family or url can be stored (not a 500)', async () => {
    const random = (n: number) => Array.from({ length: n }, (_, i) => ((i * 7919 + 104729) % 65521).toString(36)).join('').slice(0, n);
    const wide = Array.from({ length: 2100 }, (_, i) => String.fromCodePoint(0x1f600 + (i % 80), 0x4e00 + ((i * 7919) % 20000))).join('');
    for (const body of [
      { resourceType: 'Patient', identifier: [{ value: random(5000) }] },
      { resourceType: 'Patient', name: [{ family: wide }] },
      { resourceType: 'ValueSet', status: 'draft', url: `http://x.org/${wide}` },
    ]) {
      const res = await t.api.post(`${t.path}/${body.resourceType}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
      expect({ type: body.resourceType, status: res.status }).toEqual({ type: body.resourceType, status: 201 });
      ids[`long-${body.resourceType}-${Object.keys(ids).length}`] = res.body.id;
    }
    // and the very long identifier is found by its full value (indexed and searched values are clipped alike)
    const ident = random(5000);
    const created = await t.api.post(`${t.path}/Patient`).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:long', value: ident }] }));
    ids.longIdentifier = created.body.id;
    const byPost = await foundByPost('Patient', `identifier=${enc(`urn:long|${ident}`)}`);
    expect(byPost).toContain('longIdentifier');
  });
});

describe('after all of that', () => {
  // PostgreSQL rejects U+0000 in text (22021); the value reaches SQL unchecked and the request answers 500.
  it('a NUL byte in a value is a 400, not a 500', async () => {
    // Outside the NUL-free set above: PostgreSQL text cannot hold U+0000, so the value must be refused before SQL.
    const res = await t.api.get(`${t.path}/Patient?family=a%00b`);
    expect(res.status).not.toBe(500);
  });

  it('the tables still exist and hold every resource', async () => {
    const count = await server.deps.db.withTenant(t.slug, async (q) => {
      const tables = await q.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM unnest(ARRAY['resource','resource_history','sp_string','sp_token','sp_reference','sp_uri','sp_number','sp_date','sp_composite','sp_fulltext','tenant']) AS t(name) WHERE to_regclass(t.name) IS NOT NULL",
      );
      expect(tables.rows[0].n).toBe('11');
      const r = await q.query<{ n: string }>('SELECT count(*)::text AS n FROM resource WHERE tenant_id = $1 AND NOT deleted', [t.slug]);
      return Number(r.rows[0].n);
    });
    expect(count).toBe(Object.keys(ids).length + 1); // + the tenant's root Organization
    expect(await found(`Patient?family=${enc('a%b_c')}`)).toEqual(keys('likeWild'));
  });
});
