// Search errors (search.html#errors, REST.md §8): unknown parameters are ignored with an outcome entry by default
// and rejected with 400 under Prefer: handling=strict; malformed values of supported parameters are a 400 that
// names the parameter and the value; nothing is ever a 500.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
const ids: Record<string, string> = {};

const search = (query: string, prefer?: string) => {
  const req = t.api.get(`${t.path}/${query}`);
  return prefer ? req.set('Prefer', prefer) : req;
};
const matchIds = (res: Response) => (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id).sort();

/** The whole OperationOutcome of a failure: status, issue code, error code, and the words the message must name. */
function expectOutcome(res: Response, status: number, issueCode: string, errorCode: string, ...mentions: string[]): void {
  expect({ status: res.status, type: res.body?.resourceType }).toEqual({ status, type: 'OperationOutcome' });
  expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: issueCode });
  expect(res.body.issue[0].details.coding[0]).toEqual({ system: 'urn:tenfhir:error-code', code: errorCode });
  for (const m of mentions) expect(res.body.issue[0].diagnostics).toContain(m);
  expect(res.text).not.toMatch(/\n\s+at |node_modules|SELECT|sp_/);
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'serr');
  ids.p = (await create(t, { resourceType: 'Patient', name: [{ family: 'Known' }], birthDate: '2000-01-01' })).id;
  ids.o = (await create(t, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids.p}` }, valueQuantity: { value: 5 } })).id;
});
afterAll(async () => server.close());

describe('unknown parameters', () => {
  const unknowns = ['shoe-size=42', 'Family=known', 'family:exact:extra=known', 'subject:Patient.shoe-size=1', '_has:Observation:subject:shoe-size=1', '_list=abc', '_filter=name eq x'];

  it.each(unknowns)('lenient (default): %s is ignored, reported in an outcome entry and left out of the self link', async (param) => {
    const res = await search(`Patient?family=known&${param}`);
    expect(res.status).toBe(200);
    expect(matchIds(res)).toEqual([ids.p]);
    const outcome = res.body.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcome.resource.resourceType).toBe('OperationOutcome');
    expect(outcome.resource.issue[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
    expect(outcome.resource.issue[0].diagnostics).toContain(param.split('=')[0]);
    const self = new URL(res.body.link.find((l: any) => l.relation === 'self').url);
    expect([...self.searchParams.keys()].sort()).toEqual(['_count', 'family']);
  });

  it.each(unknowns)('strict: %s is a 400 naming it', async (param) => {
    const res = await search(`Patient?family=known&${param}`, 'handling=strict');
    expectOutcome(res, 400, 'not-supported', 'SEARCH_PARAM_UNKNOWN', param.split('=')[0]);
  });

  // R4 defines _query as a token parameter with no expression; plan.ts treats every '_'-prefixed definition as
  // supported, so `_query=x` becomes a criterion on index rows that never exist: an empty 200 Bundle, no warning,
  // even under handling=strict.
  it('_query (a named query this server does not implement) is reported, not answered with an empty match', async () => {
    const lenient = await search('Patient?family=known&_query=x');
    expect(matchIds(lenient)).toEqual([ids.p]);
    expect(lenient.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0].diagnostics).toContain('_query');
    const strict = await search('Patient?family=known&_query=x', 'handling=strict');
    expect(strict.status).toBe(400);
  });

  it('Prefer: handling=lenient behaves like the default', async () => {
    const res = await search('Patient?family=known&shoe-size=42', 'handling=lenient');
    expect(matchIds(res)).toEqual([ids.p]);
  });

  it('an outcome entry never makes the result set wider than the known criteria', async () => {
    const res = await search('Observation?shoe-size=1&subject=Patient/nobody');
    expect(matchIds(res)).toEqual([]);
  });
});

describe('malformed values of supported parameters: 400 naming the parameter and the value', () => {
  it.each([
    ['Patient?birthdate=2024-13-01', 'birthdate', '2024-13-01'],
    ['Patient?birthdate=2024-02-30', 'birthdate', '2024-02-30'],
    ['Patient?birthdate=xx2024', 'birthdate', 'xx2024'],
    ['Patient?birthdate=gt', 'birthdate', 'gt'],
    ['Patient?birthdate=yesterday', 'birthdate', 'yesterday'],
    ['Patient?birthdate=2024-1-1', 'birthdate', '2024-1-1'],
    ['Patient?birthdate=ge2024&birthdate=2024-13', 'birthdate', '2024-13'],
    ['Observation?date=2024-01-01T10:00:00Q', 'date', '2024-01-01T10:00:00Q'],
    ['Patient?_lastUpdated=soon', '_lastUpdated', 'soon'],
    ['Observation?value-quantity=abc', 'value-quantity', 'abc'],
    ['Observation?value-quantity=xx5', 'value-quantity', 'xx5'],
    ['Observation?value-quantity=5|http://unitsofmeasure.org', 'value-quantity', '5|http://unitsofmeasure.org'],
    ['Observation?value-quantity=5,abc', 'value-quantity', 'abc'],
    ['RiskAssessment?probability=abc', 'probability', 'abc'],
    ['RiskAssessment?probability=1.2.3', 'probability', '1.2.3'],
    ['RiskAssessment?probability=gt', 'probability', 'gt'],
    ['RiskAssessment?probability=NaN', 'probability', 'NaN'],
    ['Observation?code-value-quantity=http://loinc.org|718-7$abc', 'code-value-quantity', 'abc'],
    ['Patient?identifier:of-type=a|b', 'identifier', 'a|b'],
    ['Patient?_count=-1', '_count', '-1'],
    ['Patient?_count=abc', '_count', 'abc'],
    ['Patient?_count=1.5', '_count', '1.5'],
  ])('%s', async (query, name, value) => {
    const [path, qs] = query.split('?');
    const encoded = qs.split('&').map((kv) => kv.split('=').map(encodeURIComponent).join('=')).join('&');
    expectOutcome(await search(`${path}?${encoded}`), 400, 'invalid', 'SEARCH_PARAM_INVALID', name, value);
  });

  it.each([
    ['Patient?name:foo=x', 'name', 'foo'],
    ['Patient?family:below=x', 'family', 'below'],
    ['Patient?birthdate:exact=2024', 'birthdate', 'exact'],
    ['Observation?code:contains=x', 'code', 'contains'],
    ['Observation?value-quantity:text=5', 'value-quantity', 'text'],
  ])('unknown modifier %s', async (query, name, modifier) => {
    expectOutcome(await search(query), 400, 'invalid', 'SEARCH_MODIFIER_INVALID', name, modifier);
  });

  it('a bad _cursor is a 400, not a 500', async () => {
    for (const cursor of ['not-a-cursor', '%%%', 'e30', Buffer.from('"x"').toString('base64url'), Buffer.from('{"b":1}').toString('base64url')]) {
      expectOutcome(await search(`Patient?_cursor=${encodeURIComponent(cursor)}`), 400, 'invalid', 'SEARCH_PARAM_INVALID', '_cursor');
    }
  });

  // search-sql.ts searchPage: a decodable JSON array of the wrong length throws a plain Error('cursor does not fit
  // this search'), and values of the wrong type reach PostgreSQL casts (::timestamptz) — both answer 500.
  it('a well-formed but foreign _cursor (wrong length or value types) is a 400, not a 500', async () => {
    for (const c of [[1], ['x', 'y', 'z'], ['not-a-date', 'id'], [{ a: 1 }, 'x'], { b: [1] }]) {
      const cursor = Buffer.from(JSON.stringify(c)).toString('base64url');
      const res = await search(`Patient?_cursor=${cursor}`);
      expect({ c, status: res.status }).toEqual({ c, status: 400 });
    }
  });

  // date-range.ts dateRange(): month "00" is read as month -1 (December of the year before) and hours/minutes are
  // never range-checked (Date.UTC rolls 25:00 over to the next day), so these impossible dates are accepted.
  it('an impossible month or time is a 400 (2024-00-15, 2024-01-01T25:00:00Z, 2024-01-01T10:61:00Z)', async () => {
    for (const value of ['2024-00-15', '2024-01-01T25:00:00Z', '2024-01-01T10:61:00Z']) {
      const res = await search(`Patient?birthdate=${encodeURIComponent(value)}`);
      expect({ value, status: res.status }).toEqual({ value, status: 400 });
    }
  });
});
