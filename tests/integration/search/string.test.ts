// string search parameters (search.html#string, REST.md §9): case- and accent-insensitive "starts with" by default,
// :exact, :contains, and every part of HumanName (family, given, prefix, suffix, text) and Address (line, city,
// state, postalCode, country, text).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const enc = encodeURIComponent;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sstr');
  const patients: Record<string, Record<string, unknown>> = {
    muller: {
      name: [{ use: 'official', family: 'Müller', given: ['Jürgen', 'Karl'], prefix: ['Dr.'], suffix: ['PhD'], text: 'Dr. Jürgen Karl Müller PhD' }],
      address: [{ line: ["12 Rue de l'Église"], city: 'Zürich', state: 'ZH', postalCode: '8001', country: 'Switzerland', text: "12 Rue de l'Église, 8001 Zürich" }],
    },
    mullins: { name: [{ family: 'Mullins', given: ['Ann'] }], address: [{ city: 'Bern', postalCode: '3000', country: 'CH' }] },
    garcia: {
      name: [{ family: 'García Márquez', given: ['José', 'Ángel'] }],
      address: [{ line: ['1 Main St', 'Apt 2'], city: 'San José', state: 'CA', postalCode: '95112', country: 'USA' }],
    },
    upper: { name: [{ family: 'MÜLLER-LÜDENSCHEIDT', given: ['Eve'] }, { family: 'Nickname', given: ['Evie'] }] },
    nameless: { address: [{ city: 'Oslo', country: 'Norway' }] },
    prefixOnly: { name: [{ prefix: ['Sister'], given: ['Mary'] }] },
    textOnly: { name: [{ text: 'Quentin Q. Public' }] },
  };
  for (const [key, body] of Object.entries(patients)) ids[key] = (await create(t, { resourceType: 'Patient', ...body })).id;
});
afterAll(async () => server.close());

describe('string default: case- and accent-insensitive starts-with', () => {
  it('family matches a prefix regardless of case and accents, on both sides', async () => {
    expect(await found('Patient?family=muller')).toEqual(keys('muller', 'upper'));
    expect(await found(`Patient?family=${enc('MÜLLER')}`)).toEqual(keys('muller', 'upper'));
    expect(await found('Patient?family=mull')).toEqual(keys('muller', 'mullins', 'upper'));
    expect(await found('Patient?family=MULLI')).toEqual(keys('mullins'));
    expect(await found('Patient?family=garcia%20marq')).toEqual(keys('garcia'));
    expect(await found(`Patient?family=${enc('gárcía')}`)).toEqual(keys('garcia'));
  });

  it('does not match in the middle of a value (that is :contains)', async () => {
    expect(await found('Patient?family=uller')).toEqual([]);
    expect(await found('Patient?family=marquez')).toEqual([]);
    expect(await found('Patient?given=arl')).toEqual([]);
  });

  it('a value longer than the stored one does not match', async () => {
    expect(await found('Patient?family=mullinsx')).toEqual([]);
  });

  it('given matches every given name, in every HumanName', async () => {
    expect(await found('Patient?given=karl')).toEqual(keys('muller'));
    expect(await found('Patient?given=jurgen')).toEqual(keys('muller'));
    expect(await found('Patient?given=angel')).toEqual(keys('garcia'));
    expect(await found('Patient?given=ev')).toEqual(keys('upper'));
    expect(await found('Patient?given=evi')).toEqual(keys('upper'));
    expect(await found('Patient?family=nick')).toEqual(keys('upper'));
  });
});

describe('name: any part of a HumanName (family, given, prefix, suffix, text)', () => {
  it.each([
    ['muller', ['muller', 'upper']],
    ['jurg', ['muller']],
    ['dr', ['muller']],
    ['phd', ['muller']],
    ['sister', ['prefixOnly']],
    ['mary', ['prefixOnly']],
    ['quentin', ['textOnly']],
    ['quentin%20q.%20pub', ['textOnly']],
    ['dr.%20jurgen%20karl', ['muller']],
    ['evie', ['upper']],
    ['public', []],
  ])('name=%s', async (value, expected) => {
    expect(await found(`Patient?name=${value}`)).toEqual(keys(...expected));
  });

  it('family and given do not match the prefix, suffix or text parts', async () => {
    expect(await found('Patient?family=dr')).toEqual([]);
    expect(await found('Patient?family=phd')).toEqual([]);
    expect(await found('Patient?given=sister')).toEqual([]);
    expect(await found('Patient?family=quentin')).toEqual([]);
  });
});

describe('address: any part of an Address (line, city, state, postalCode, country, text)', () => {
  it.each([
    ['zurich', ['muller']],
    ['12%20rue%20de%20l', ['muller']],
    ['8001', ['muller']],
    ['switz', ['muller']],
    ['zh', ['muller']],
    ['apt', ['garcia']],
    ['1%20main', ['garcia']],
    ['san%20jose', ['garcia']],
    ['ca', ['garcia']],
    ['ch', ['mullins']],
    ['3000', ['mullins']],
    ['norway', ['nameless']],
    ['church', []],
  ])('address=%s', async (value, expected) => {
    expect(await found(`Patient?address=${value}`)).toEqual(keys(...expected));
  });

  it('address-city, -state, -postalcode and -country match only their own part', async () => {
    expect(await found('Patient?address-city=san%20jos')).toEqual(keys('garcia'));
    expect(await found('Patient?address-city=zur')).toEqual(keys('muller'));
    expect(await found('Patient?address-city=switzerland')).toEqual([]);
    expect(await found('Patient?address-state=ca')).toEqual(keys('garcia'));
    expect(await found('Patient?address-state=zurich')).toEqual([]);
    expect(await found('Patient?address-postalcode=951')).toEqual(keys('garcia'));
    expect(await found('Patient?address-postalcode=8001')).toEqual(keys('muller'));
    expect(await found('Patient?address-country=usa')).toEqual(keys('garcia'));
    expect(await found('Patient?address-country=ch')).toEqual(keys('mullins'));
    expect(await found('Patient?address-country=oslo')).toEqual([]);
  });
});

describe(':exact — whole value, case- and accent-sensitive', () => {
  it('matches only the exact stored spelling', async () => {
    expect(await found(`Patient?family:exact=${enc('Müller')}`)).toEqual(keys('muller'));
    expect(await found('Patient?family:exact=Muller')).toEqual([]);
    expect(await found(`Patient?family:exact=${enc('müller')}`)).toEqual([]);
    expect(await found(`Patient?family:exact=${enc('Müll')}`)).toEqual([]);
    expect(await found(`Patient?family:exact=${enc('García Márquez')}`)).toEqual(keys('garcia'));
    expect(await found(`Patient?given:exact=${enc('Jürgen')}`)).toEqual(keys('muller'));
    expect(await found(`Patient?given:exact=${enc('jürgen')}`)).toEqual([]);
    expect(await found(`Patient?address-city:exact=${enc('Zürich')}`)).toEqual(keys('muller'));
    expect(await found('Patient?address-city:exact=Zurich')).toEqual([]);
  });

  it('applies to each part of a HumanName for name', async () => {
    expect(await found('Patient?name:exact=PhD')).toEqual(keys('muller'));
    expect(await found(`Patient?name:exact=${enc('Quentin Q. Public')}`)).toEqual(keys('textOnly'));
    expect(await found('Patient?name:exact=Quentin')).toEqual([]);
  });
});

describe(':contains — anywhere in the value, case- and accent-insensitive', () => {
  it('matches inside values', async () => {
    expect(await found('Patient?family:contains=ULLE')).toEqual(keys('muller', 'upper'));
    expect(await found('Patient?family:contains=marq')).toEqual(keys('garcia'));
    expect(await found(`Patient?family:contains=${enc('lüdensch')}`)).toEqual(keys('upper'));
    expect(await found('Patient?given:contains=arl')).toEqual(keys('muller'));
    expect(await found('Patient?name:contains=q.%20pub')).toEqual(keys('textOnly'));
    expect(await found('Patient?address:contains=glise')).toEqual(keys('muller'));
    expect(await found('Patient?address-city:contains=jose')).toEqual(keys('garcia'));
    expect(await found('Patient?family:contains=xyz')).toEqual([]);
  });
});

describe('OR and AND on string parameters', () => {
  it('a comma ORs values; repeating the parameter ANDs them', async () => {
    expect(await found('Patient?family=mullins,garcia')).toEqual(keys('mullins', 'garcia'));
    expect(await found('Patient?given=ann,mary,nobody')).toEqual(keys('mullins', 'prefixOnly'));
    expect(await found('Patient?family=mul&given=ann')).toEqual(keys('mullins'));
    expect(await found('Patient?family=mul&family=mulli')).toEqual(keys('mullins'));
    expect(await found('Patient?name=eve&name=nick')).toEqual(keys('upper'));
    expect(await found('Patient?family=mul&address-city=oslo')).toEqual([]);
  });
});
