// date search (search.html#date, #prefix; REST.md §9): both the searched value and the target are ranges set by
// their precision (year, month, day, minute, second, millisecond); Periods may be open at either end. Prefixes eq ne
// gt lt ge le sa eb ap compare those ranges.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';
import { keys, searchKeys } from '../../helpers/search.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const found = (query: string) => searchKeys(t, ids, query);

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const DAY = 86_400_000;

// Observation.effective[x] in every shape the `date` parameter indexes. Ranges (UTC) are in the comments.
const EFFECTIVE: Record<string, Record<string, unknown>> = {
  year: { effectiveDateTime: '2023' }, // [2023-01-01, 2023-12-31T23:59:59.999]
  month: { effectiveDateTime: '2024-01' }, // [2024-01-01, 2024-01-31T23:59:59.999]
  day: { effectiveDateTime: '2024-01-31' }, // the whole of Jan 31st
  lastSecond: { effectiveDateTime: '2024-01-31T23:59:59Z' }, // [23:59:59.000, 23:59:59.999] on Jan 31st
  firstSecond: { effectiveDateTime: '2024-02-01T00:00:00Z' },
  zoned: { effectiveDateTime: '2024-01-31T20:30:00-05:00' }, // = 2024-02-01T01:30:00Z
  millis: { effectiveDateTime: '2024-03-15T10:20:30.250Z' },
  instant: { effectiveInstant: '2024-05-05T05:05:05.555Z' },
  period: { effectivePeriod: { start: '2024-01-10', end: '2024-01-20' } }, // [Jan 10th 00:00, Jan 20th 23:59:59.999]
  openEnd: { effectivePeriod: { start: '2024-01-25T00:00:00Z' } }, // [Jan 25th, +infinity)
  openStart: { effectivePeriod: { end: '2023-06-30' } }, // (-infinity, Jun 30th 2023 23:59:59.999]
  none: {},
};
const ALL_DATED = Object.keys(EFFECTIVE).filter((k) => k !== 'none');

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sdat');
  for (const [key, effective] of Object.entries(EFFECTIVE)) {
    ids[key] = (await create(t, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:test', code: 'date-test' }] }, ...effective })).id;
  }
  // Near "now", for ap (approximately: 10% of the distance from now, at least a day).
  const now = Date.now();
  ids.recent30 = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'ap' }, effectiveDateTime: day(now - 30 * DAY) })).id;
  ids.recent40 = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'ap' }, effectiveDateTime: day(now - 40 * DAY) })).id;
});
afterAll(async () => server.close());

const dated = (q: string) => found(`Observation?code=date-test&date=${encodeURIComponent(q)}`);

describe('eq (default): the searched range contains the target range', () => {
  it.each([
    ['2024-01-31', ['day', 'lastSecond']],
    ['eq2024-01-31', ['day', 'lastSecond']],
    ['2024-02-01', ['firstSecond', 'zoned']],
    ['2024-01', ['month', 'day', 'lastSecond', 'period']],
    ['2024', ['month', 'day', 'lastSecond', 'firstSecond', 'zoned', 'millis', 'instant', 'period']],
    ['2023', ['year']],
    ['2024-01-15', []],
    ['2024-01-31T23:59:59Z', ['lastSecond']],
    ['2024-01-31T23:59Z', ['lastSecond']],
    ['2024-01-31T23:59:58Z', []],
    ['2024-02-01T00:00:00Z', ['firstSecond']],
    ['2024-02-01T00:00:00+00:00', ['firstSecond']],
    ['2024-02-01T01:00:00+01:00', ['firstSecond']],
    ['2024-01-31T20:30:00-05:00', ['zoned']],
    ['2024-02-01T01:30:00Z', ['zoned']],
    ['2024-03-15T10:20:30Z', ['millis']],
    ['2024-03-15T10:20:30.250Z', ['millis']],
    ['2024-03-15T10:20:30.251Z', []],
    ['2024-05-05', ['instant']],
    ['2024-05-05T05:05:05.555Z', ['instant']],
  ])('date=%s', async (value, expected) => {
    expect(await dated(value)).toEqual(keys(...expected));
  });
});

describe('ne: the searched range does not contain the target (resources without a date never match)', () => {
  it('date=ne2024-01-31', async () => {
    expect(await dated('ne2024-01-31')).toEqual(keys(...ALL_DATED.filter((k) => k !== 'day' && k !== 'lastSecond')));
  });
  it('date=ne2024', async () => {
    expect(await dated('ne2024')).toEqual(keys('year', 'openEnd', 'openStart'));
  });
});

describe('gt, lt, ge, le: the target range reaches beyond the searched range (open Period ends are infinite)', () => {
  it.each([
    ['gt2024-01-31', ['firstSecond', 'zoned', 'millis', 'instant', 'openEnd']],
    ['ge2024-01-31', ['day', 'lastSecond', 'firstSecond', 'zoned', 'millis', 'instant', 'openEnd']],
    ['lt2024-01-31', ['year', 'month', 'period', 'openEnd', 'openStart']],
    ['le2024-01-31', ['year', 'month', 'day', 'lastSecond', 'period', 'openEnd', 'openStart']],
    ['lt2024-02-01', ['year', 'month', 'day', 'lastSecond', 'period', 'openEnd', 'openStart']],
    ['gt2024-01-31T23:59:59Z', ['firstSecond', 'zoned', 'millis', 'instant', 'openEnd']],
    ['ge2024-01-31T23:59:59Z', ['lastSecond', 'firstSecond', 'zoned', 'millis', 'instant', 'openEnd']],
    ['lt2024-02-01T00:00:00Z', ['year', 'month', 'day', 'lastSecond', 'period', 'openEnd', 'openStart']],
    ['le2024-02-01T00:00:00Z', ['year', 'month', 'day', 'lastSecond', 'firstSecond', 'period', 'openEnd', 'openStart']],
    ['gt2024-01-19', ['month', 'day', 'lastSecond', 'firstSecond', 'zoned', 'millis', 'instant', 'period', 'openEnd']],
    ['lt2024-01-11', ['year', 'month', 'period', 'openStart']],
    ['gt2030', ['openEnd']],
    ['lt1900', ['openStart']],
    ['ge2024-05-05T05:05:05.555Z', ['instant', 'openEnd']],
  ])('date=%s', async (value, expected) => {
    expect(await dated(value)).toEqual(keys(...expected));
  });

  it('a range from two parameters is their intersection (AND)', async () => {
    expect(await found('Observation?code=date-test&date=ge2024-01-21&date=le2024-01-31')).toEqual(keys('month', 'day', 'lastSecond', 'openEnd'));
    expect(await found('Observation?code=date-test&date=ge2024-02-01&date=lt2024-03')).toEqual(keys('firstSecond', 'zoned', 'openEnd'));
  });

  it('a comma ORs ranges', async () => {
    expect(await dated('2023,2024-02-01')).toEqual(keys('year', 'firstSecond', 'zoned'));
  });
});

describe('sa and eb: the target starts after / ends before the searched range, with no overlap', () => {
  it.each([
    ['sa2024-01-31', ['firstSecond', 'zoned', 'millis', 'instant']],
    ['sa2024-01-31T23:59:59Z', ['firstSecond', 'zoned', 'millis', 'instant']],
    ['sa2024-01-09', ['day', 'lastSecond', 'firstSecond', 'zoned', 'millis', 'instant', 'period', 'openEnd']],
    ['eb2024-01-31', ['year', 'period', 'openStart']],
    ['eb2024-02-01', ['year', 'month', 'day', 'lastSecond', 'period', 'openStart']],
    ['eb2024-02-01T00:00:00Z', ['year', 'month', 'day', 'lastSecond', 'period', 'openStart']],
    ['eb2023', []],
    ['eb2023-07', ['openStart']],
    ['sa2099', []],
  ])('date=%s', async (value, expected) => {
    expect(await dated(value)).toEqual(keys(...expected));
  });
});

describe('ap: approximately (10% of the distance from now, at least a day)', () => {
  it('matches a date 30 days ago but not one 10 days further', async () => {
    const target = day(Date.now() - 30 * DAY);
    expect(await found(`Observation?code:text=ap&date=ap${target}`)).toEqual(keys('recent30'));
    expect(await found(`Observation?code:text=ap&date=ap${day(Date.now() - 40 * DAY)}`)).toEqual(keys('recent40'));
    expect(await found(`Observation?code:text=ap&date=ap${day(Date.now() - 35 * DAY)}`)).toEqual([]);
  });

  it('covers a Period that overlaps the searched date', async () => {
    expect(await dated('ap2024-01-15')).toEqual(expect.arrayContaining(['period']));
    expect(await dated('ap2024-01-15')).not.toContain('none');
  });
});

describe('dates on other resource types', () => {
  it('Patient.birthdate with year/month/day precision and Encounter.period', async () => {
    const pid = (await create(t, { resourceType: 'Patient', birthDate: '1975' })).id;
    ids.born1975 = pid;
    ids.born1975feb = (await create(t, { resourceType: 'Patient', birthDate: '1975-02' })).id;
    ids.born1975feb3 = (await create(t, { resourceType: 'Patient', birthDate: '1975-02-03' })).id;
    expect(await found('Patient?birthdate=1975')).toEqual(keys('born1975', 'born1975feb', 'born1975feb3'));
    expect(await found('Patient?birthdate=1975-02')).toEqual(keys('born1975feb', 'born1975feb3'));
    expect(await found('Patient?birthdate=1975-02-03')).toEqual(keys('born1975feb3'));
    expect(await found('Patient?birthdate=gt1975-02-03')).toEqual(keys('born1975', 'born1975feb'));
    expect(await found('Patient?birthdate=lt1975-02-01')).toEqual(keys('born1975'));
    expect(await found('Patient?birthdate:missing=true')).toEqual([]);

    ids.enc = (await create(t, { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` }, period: { start: '2024-06-01T08:00:00Z', end: '2024-06-03T17:00:00Z' } })).id;
    ids.encOpen = (await create(t, { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, period: { start: '2024-06-02T08:00:00Z' } })).id;
    expect(await found('Encounter?date=2024-06')).toEqual(keys('enc'));
    expect(await found('Encounter?date=2024-06-02')).toEqual([]);
    expect(await found('Encounter?date=ge2024-06-02')).toEqual(keys('enc', 'encOpen'));
    expect(await found('Encounter?date=le2024-06-02')).toEqual(keys('enc'));
    expect(await found('Encounter?date=eb2024-06-02')).toEqual([]);
    expect(await found('Encounter?date=sa2024-05-31')).toEqual(keys('enc', 'encOpen'));
  });
});
