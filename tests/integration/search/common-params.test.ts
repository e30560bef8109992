// Parameters common to all resources (search.html#all, REST.md §9): _id, _lastUpdated, _tag, _profile, _security,
// _source (meta.source), _text (the narrative) and _content (any text of the resource, accent-insensitive).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};
const lastUpdated: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const div = (html: string) => ({ status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${html}</div>` });
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient';

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'scom');
  const patients: Record<string, Record<string, unknown>> = {
    tagged: {
      meta: { tag: [{ system: 'urn:tags', code: 'vip' }, { system: 'urn:other-tags', code: 'blue' }], profile: [US_CORE], source: 'http://feed.example.org/hl7#msg-1' },
      text: div('Patient has <b>diabetes</b> mellitus type 2'),
      // claiming US Core Patient means meeting it (identifier, name, gender): claimed profiles are enforced
      identifier: [{ system: 'urn:mrn', value: 'mrn-1001' }],
      name: [{ family: 'Jürgensen', given: ['Zoë'] }],
      gender: 'female',
    },
    secret: {
      meta: { security: [{ system: CONF, code: 'R' }], tag: [{ system: 'urn:tags', code: 'blue' }], profile: [`${US_CORE}|6.1.0`, 'http://example.org/StructureDefinition/other'], source: 'http://feed.example.org/lab' },
      text: div('Asthma since childhood'),
      identifier: [{ system: 'urn:mrn', value: 'mrn-1002' }],
      name: [{ family: 'Zebra' }],
      gender: 'male',
      address: [{ city: 'Saint-Étienne' }],
    },
    plain: { name: [{ family: 'Plain' }], telecom: [{ system: 'email', value: 'plain@example.org' }] },
  };
  for (const [key, body] of Object.entries(patients)) {
    const r = await create(t, { resourceType: 'Patient', ...body });
    ids[key] = r.id;
    lastUpdated[key] = r.meta.lastUpdated;
    await sleep(5);
  }
  ids.obs = (await create(t, {
    resourceType: 'Observation',
    status: 'final',
    meta: { tag: [{ system: 'urn:tags', code: 'vip' }] },
    code: { text: 'Hémoglobine glyquée' },
    valueString: 'Within diabetes target',
    subject: { reference: `Patient/${ids.plain}` },
  })).id;
  lastUpdated.obs = (await t.api.get(`${t.path}/Observation/${ids.obs}`)).body.meta.lastUpdated;
});
afterAll(async () => server.close());

describe('_id', () => {
  it('matches ids exactly, OR-ed, only of the searched type', async () => {
    expect(await found(`Patient?_id=${ids.tagged}`)).toEqual(keys('tagged'));
    expect(await found(`Patient?_id=${ids.tagged},${ids.plain},nope`)).toEqual(keys('tagged', 'plain'));
    expect(await found(`Patient?_id=${ids.obs}`)).toEqual([]);
    expect(await found(`Patient?_id=${ids.tagged.slice(0, 8)}`)).toEqual([]);
    expect(await found(`Patient?_id=${ids.tagged.toUpperCase()}`)).toEqual([]);
    expect(await found(`Patient?_id=${ids.tagged}&_id=${ids.plain}`)).toEqual([]);
  });
});

describe('_lastUpdated', () => {
  it('compares meta.lastUpdated at millisecond precision', async () => {
    expect(await found(`Patient?_lastUpdated=${enc(lastUpdated.secret)}`)).toEqual(keys('secret'));
    expect(await found(`Patient?_lastUpdated=gt${enc(lastUpdated.secret)}`)).toEqual(keys('plain'));
    expect(await found(`Patient?_lastUpdated=ge${enc(lastUpdated.secret)}`)).toEqual(keys('secret', 'plain'));
    expect(await found(`Patient?_lastUpdated=lt${enc(lastUpdated.secret)}`)).toEqual(keys('tagged'));
    expect(await found(`Patient?_lastUpdated=le${enc(lastUpdated.secret)}`)).toEqual(keys('tagged', 'secret'));
    expect(await found(`Patient?_lastUpdated=ne${enc(lastUpdated.secret)}`)).toEqual(keys('tagged', 'plain'));
    expect(await found(`Patient?_lastUpdated=gt${enc(lastUpdated.tagged)}&_lastUpdated=lt${enc(lastUpdated.plain)}`)).toEqual(keys('secret'));
  });

  it('a day or year contains everything written in it', async () => {
    const today = lastUpdated.tagged.slice(0, 10);
    expect(await found(`Patient?_lastUpdated=ge${today}`)).toEqual(keys('tagged', 'secret', 'plain'));
    expect(await found('Patient?_lastUpdated=lt2000')).toEqual([]);
    expect(await found('Patient?_lastUpdated=2000')).toEqual([]);
  });
});

describe('_tag, _security, _profile, _source', () => {
  it('_tag is a token on meta.tag', async () => {
    expect(await found('Patient?_tag=vip')).toEqual(keys('tagged'));
    expect(await found('Patient?_tag=urn:tags|vip')).toEqual(keys('tagged'));
    expect(await found('Patient?_tag=urn:other-tags|vip')).toEqual([]);
    expect(await found('Patient?_tag=blue')).toEqual(keys('tagged', 'secret'));
    expect(await found('Patient?_tag=urn:tags|')).toEqual(keys('tagged', 'secret'));
    expect(await found(`Patient?_tag:not=${enc('urn:tags|vip')}`)).toEqual(keys('secret', 'plain'));
    expect(await found('Patient?_tag:missing=true')).toEqual(keys('plain'));
    expect(await found('Observation?_tag=vip')).toEqual(keys('obs'));
  });

  it('_security is a token on meta.security', async () => {
    expect(await found(`Patient?_security=${enc(`${CONF}|R`)}`)).toEqual(keys('secret'));
    expect(await found('Patient?_security=R')).toEqual(keys('secret'));
    expect(await found(`Patient?_security=${enc(`${CONF}|N`)}`)).toEqual([]);
    expect(await found(`Patient?_security:not=${enc(`${CONF}|R`)}`)).toEqual(keys('tagged', 'plain'));
  });

  it('_profile matches meta.profile (canonical, with or without version)', async () => {
    expect(await found(`Patient?_profile=${enc(US_CORE)}`)).toEqual(keys('tagged'));
    expect(await found(`Patient?_profile=${enc(`${US_CORE}|6.1.0`)}`)).toEqual(keys('secret'));
    expect(await found(`Patient?_profile=${enc('http://example.org/StructureDefinition/other')}`)).toEqual(keys('secret'));
    expect(await found(`Patient?_profile:below=${enc('http://hl7.org/fhir/us/core/')}`)).toEqual(keys('tagged', 'secret'));
    expect(await found('Patient?_profile:missing=true')).toEqual(keys('plain'));
  });

  it('_source matches meta.source exactly', async () => {
    expect(await found(`Patient?_source=${enc('http://feed.example.org/hl7#msg-1')}`)).toEqual(keys('tagged'));
    expect(await found(`Patient?_source=${enc('http://feed.example.org/lab')}`)).toEqual(keys('secret'));
    expect(await found(`Patient?_source=${enc('http://feed.example.org')}`)).toEqual([]);
    expect(await found(`Patient?_source:below=${enc('http://feed.example.org/')}`)).toEqual(keys('tagged', 'secret'));
  });
});

describe('_text (narrative) and _content (whole resource)', () => {
  it('_text matches words of the narrative only, ignoring markup, case and accents', async () => {
    expect(await found('Patient?_text=diabetes')).toEqual(keys('tagged'));
    expect(await found('Patient?_text=DIABETES')).toEqual(keys('tagged'));
    expect(await found(`Patient?_text=${enc('diabétes')}`)).toEqual(keys('tagged'));
    expect(await found('Patient?_text=mellitus%20diabetes')).toEqual(keys('tagged'));
    expect(await found('Patient?_text=asthma')).toEqual(keys('secret'));
    expect(await found('Patient?_text=diabetes,asthma')).toEqual(keys('tagged', 'secret'));
    expect(await found('Patient?_text=zebra')).toEqual([]);
    expect(await found('Patient?_text=div')).toEqual([]);
    expect(await found('Patient?_text=xhtml')).toEqual([]);
    expect(await found('Patient?_text=b')).toEqual([]);
  });

  it('_content matches any text in the resource, accent-insensitive', async () => {
    expect(await found('Patient?_content=zebra')).toEqual(keys('secret'));
    expect(await found('Patient?_content=jurgensen')).toEqual(keys('tagged'));
    expect(await found(`Patient?_content=${enc('JÜRGENSEN')}`)).toEqual(keys('tagged'));
    expect(await found('Patient?_content=zoe')).toEqual(keys('tagged'));
    expect(await found(`Patient?_content=${enc('saint-étienne')}`)).toEqual(keys('secret'));
    expect(await found('Patient?_content=plain@example.org')).toEqual(keys('plain'));
    expect(await found('Observation?_content=glyquee')).toEqual(keys('obs'));
    expect(await found('Observation?_content=diabetes%20target')).toEqual(keys('obs'));
    expect(await found('Patient?_content=zebra,plain')).toEqual(keys('secret', 'plain'));
    expect(await found('Patient?_content=nothing-like-this')).toEqual([]);
  });

  it('_content does not match system URLs, ids or meta', async () => {
    expect(await found('Patient?_content=vip')).toEqual([]);
    expect(await found(`Patient?_content=${ids.tagged}`)).toEqual([]);
    expect(await found('Patient?_content=http://feed.example.org/lab')).toEqual([]);
  });

  it('combine with other parameters (AND)', async () => {
    expect(await found('Patient?_text=diabetes&family=zebra')).toEqual([]);
    expect(await found('Patient?_content=zebra&_tag=blue')).toEqual(keys('secret'));
  });
});

describe('common parameters in a system search', () => {
  it('GET [base]?_tag=, ?_content=, ?_lastUpdated= span every type', async () => {
    expect(await found('?_tag=vip')).toEqual(keys('tagged', 'obs'));
    expect(await found('?_content=glyquee')).toEqual(keys('obs'));
    expect(await found('?_text=diabetes')).toEqual(keys('tagged'));
    expect(await found(`?_lastUpdated=ge${enc(lastUpdated.plain)}`)).toEqual(keys('plain', 'obs'));
    expect(await found(`?_type=Patient,Observation&_tag=vip&_lastUpdated=gt${enc(lastUpdated.tagged)}`)).toEqual(keys('obs'));
  });
});
