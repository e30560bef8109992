// Base R4 rules beyond the JSON Schema, on every write and $validate (json.html, datatypes.html#base64Binary,
// element.html ele-1, extensibility.html ext-1, narrative.html txt-1/txt-2): what HL7's validator refuses is refused
// here with one precise issue (code and FHIRPath), and nothing is stored; valid data of the same shapes is accepted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { create, FHIR_JSON, newTenant, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

let server: TestServer;
let t: TestTenant;
let other: TestTenant;

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'base');
  other = await newTenant(server, 'base-other');
});
afterAll(async () => server.close());

type R = Record<string, unknown>;
const XHTML = 'xmlns="http://www.w3.org/1999/xhtml"';
const div = (html: string) => ({ status: 'generated', div: `<div ${XHTML}>${html}</div>` });
const ext = (url: string, value: string) => ({ url, valueString: value });

const send = (tenant: TestTenant, method: 'post' | 'put', url: string, body: unknown) => tenant.api[method](`${tenant.path}/${url}`).set('Content-Type', FHIR_JSON).send(JSON.stringify(body));
const transaction = (entry: R[]) => t.api.post(t.path).set('Content-Type', FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry }));
const postEntry = (resource: R) => ({ resource, request: { method: 'POST', url: resource.resourceType } });

/** Every version in the tenant: unchanged means nothing was stored. */
async function snapshot(tenant: TestTenant = t): Promise<string[]> {
  const res = await tenant.api.get(`${tenant.path}/_history?_count=1000`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: any) => `${e.fullUrl} ${e.response.etag}`).sort();
}

/** The error issues of an outcome as "CODE expression". */
function errors(res: Response): string[] {
  expect(res.body.resourceType).toBe('OperationOutcome');
  return res.body.issue.filter((i: any) => i.severity === 'error').map((i: any) => `${i.details?.coding?.[0]?.code} ${(i.expression ?? []).join(',')}`);
}

/** A minimal valid resource of each type the cases use, for the update (PUT) path. */
const SEED: Record<string, R> = {
  Patient: { resourceType: 'Patient', name: [{ family: 'Seed' }] },
  Binary: { resourceType: 'Binary', contentType: 'text/plain', data: 'U2VlZA==' },
  DocumentReference: { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'U2VlZA==' } }] },
  Bundle: { resourceType: 'Bundle', type: 'collection' },
  Observation: { resourceType: 'Observation', status: 'final', code: { text: 'Seed' } },
};

// [rule, resource, error code, FHIRPath of the offending element]
const REJECTED: [string, R, string, string][] = [
  // 1. base64Binary
  ['Attachment.data with characters outside the base64 alphabet', { resourceType: 'Patient', photo: [{ contentType: 'image/png', data: 'not base64!' }] }, 'BASE64_INVALID', 'Patient.photo[0].data'],
  ['Binary.data whose length is not a multiple of 4', { resourceType: 'Binary', contentType: 'text/plain', data: 'SGVsbG8' }, 'BASE64_INVALID', 'Binary.data'],
  ['padding in the middle of base64 data', { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'SGVsbG8=d29y' } }] }, 'BASE64_INVALID', 'DocumentReference.content[0].attachment.data'],
  ['three padding characters in a valueBase64Binary (a choice type)', { resourceType: 'Patient', extension: [{ url: 'urn:test:blob', valueBase64Binary: 'A===' }] }, 'BASE64_INVALID', 'Patient.extension[0].valueBase64Binary'],
  // 2. empty arrays
  ['an empty array', { resourceType: 'Patient', name: [] }, 'ARRAY_EMPTY', 'Patient.name'],
  ['an empty primitive array inside an element', { resourceType: 'Patient', name: [{ family: 'Empty', given: [] }] }, 'ARRAY_EMPTY', 'Patient.name[0].given'],
  // 3. null
  ['null in an array of elements', { resourceType: 'Patient', name: [{ family: 'One' }, null] }, 'ARRAY_NULL_ENTRY', 'Patient.name[1]'],
  ['null in a primitive array without a _given twin', { resourceType: 'Patient', name: [{ given: ['Ann', null] }] }, 'ARRAY_NULL_ENTRY', 'Patient.name[0].given[1]'],
  ['null in a primitive array where the _given twin is null too', { resourceType: 'Patient', name: [{ given: ['Ann', null], _given: [{ id: 'g0', extension: [ext('urn:test:x', 'y')] }, null] }] }, 'ARRAY_NULL_ENTRY', 'Patient.name[0].given[1]'],
  ['a primitive array and its _given twin of different lengths', { resourceType: 'Patient', name: [{ given: ['Ann', 'Bo'], _given: [{ extension: [ext('urn:test:x', 'y')] }] }] }, 'ARRAY_LENGTH_MISMATCH', 'Patient.name[0].given'],
  ['a null property value', { resourceType: 'Patient', gender: null }, 'NULL_VALUE', 'Patient.gender'],
  // 4. empty objects and strings
  ['an empty object (ele-1)', { resourceType: 'Patient', maritalStatus: {} }, 'ELEMENT_EMPTY', 'Patient.maritalStatus'],
  ['an object with only an id (ele-1)', { resourceType: 'Observation', status: 'final', code: { text: 'Hb' }, valueQuantity: { id: 'q1' } }, 'ELEMENT_EMPTY', 'Observation.valueQuantity'],
  ['an empty _birthDate element', { resourceType: 'Patient', birthDate: '1980-01-01', _birthDate: {} }, 'ELEMENT_EMPTY', 'Patient._birthDate'],
  ['an empty string', { resourceType: 'Patient', name: [{ family: '' }] }, 'VALUE_EMPTY', 'Patient.name[0].family'],
  ['an empty base64 string', { resourceType: 'Patient', photo: [{ contentType: 'image/png', data: '' }] }, 'VALUE_EMPTY', 'Patient.photo[0].data'],
  // 5. extensions
  ['an extension without url', { resourceType: 'Patient', extension: [{ valueString: 'x' }] }, 'EXTENSION_URL_MISSING', 'Patient.extension[0].url'],
  ['a modifierExtension with an empty url', { resourceType: 'Patient', modifierExtension: [{ url: '', valueBoolean: true }] }, 'EXTENSION_URL_MISSING', 'Patient.modifierExtension[0].url'],
  ['an extension with both a value and nested extensions (ext-1)', { resourceType: 'Patient', extension: [{ url: 'urn:test:both', valueString: 'x', extension: [ext('urn:test:inner', 'y')] }] }, 'EXTENSION_CONTENT_INVALID', 'Patient.extension[0]'],
  ['a nested extension with neither value nor extensions (ext-1)', { resourceType: 'Patient', name: [{ family: 'Ext', extension: [{ url: 'urn:test:outer', extension: [{ url: 'urn:test:inner' }] }] }] }, 'EXTENSION_CONTENT_INVALID', 'Patient.name[0].extension[0].extension[0]'],
  // 6. narrative
  ['a narrative with only whitespace and empty tags (txt-2)', { resourceType: 'Patient', text: div(' <p> </p> ') }, 'NARRATIVE_EMPTY', 'Patient.text.div'],
  ['a narrative with a script (txt-1)', { resourceType: 'Patient', text: div('Ann<script>alert(1)</script>') }, 'NARRATIVE_UNSAFE', 'Patient.text.div'],
  ['a narrative with an event attribute (txt-1)', { resourceType: 'Patient', text: div('<p onclick="steal()">Ann</p>') }, 'NARRATIVE_UNSAFE', 'Patient.text.div'],
  ['a narrative with a javascript: URL hidden by an entity (txt-1)', { resourceType: 'Patient', text: div('<a href="java&#115;cript:alert(1)">Ann</a>') }, 'NARRATIVE_UNSAFE', 'Patient.text.div'],
  ['a narrative with a form (txt-1)', { resourceType: 'Patient', text: div('<form><input name="x"/></form>Ann') }, 'NARRATIVE_CONTENT_NOT_ALLOWED', 'Patient.text.div'],
  ['a narrative whose div lacks the XHTML namespace', { resourceType: 'Patient', text: { status: 'generated', div: '<div>Ann</div>' } }, 'NARRATIVE_MALFORMED', 'Patient.text.div'],
  ['a narrative with unbalanced tags', { resourceType: 'Patient', text: div('<p><b>Ann</p></b>') }, 'NARRATIVE_MALFORMED', 'Patient.text.div'],
  ['a whole HTML document as narrative', { resourceType: 'Patient', text: { status: 'generated', div: '<html><body>Ann</body></html>' } }, 'NARRATIVE_MALFORMED', 'Patient.text.div'],
  // in a contained resource and in a Bundle entry
  ['an empty array in a contained resource', { resourceType: 'Patient', contained: [{ resourceType: 'Practitioner', id: 'dr', name: [] }], generalPractitioner: [{ reference: '#dr' }] }, 'ARRAY_EMPTY', 'Patient.contained[0].name'],
  ['an unsafe narrative in a contained resource', { resourceType: 'Patient', contained: [{ resourceType: 'Practitioner', id: 'dr', text: div('<iframe src="https://evil.example"></iframe>Dr') }], generalPractitioner: [{ reference: '#dr' }] }, 'NARRATIVE_UNSAFE', 'Patient.contained[0].text.div'],
  ['bad base64 in the second entry of a stored Bundle', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient' } }, { resource: { resourceType: 'Patient', photo: [{ data: '@@@@' }] } }] }, 'BASE64_INVALID', 'Bundle.entry[1].resource.photo[0].data'],
];

/** The expression of an issue re-rooted on a transaction entry (Patient.x -> Bundle.entry[1].resource.x). */
const inEntry = (expression: string, index: number) => `Bundle.entry[${index}].resource${expression.replace(/^[A-Za-z]+/, '')}`;

describe.each(REJECTED)('refuses %s', (_rule, resource, code, expression) => {
  const type = resource.resourceType as string;

  it('on create: 400 with one issue naming the element, and nothing stored', async () => {
    const before = await snapshot();
    const res = await send(t, 'post', type, resource);
    expect(res.status).toBe(400);
    expect(errors(res)).toEqual([`${code} ${expression}`]);
    expect(await snapshot()).toEqual(before);
  });

  it('on update: 400, and the stored version is unchanged', async () => {
    const seed = await create(t, SEED[type]);
    const before = await snapshot();
    const res = await send(t, 'put', `${type}/${seed.id}`, { ...resource, id: seed.id });
    expect(res.status).toBe(400);
    expect(errors(res)).toEqual([`${code} ${expression}`]);
    expect(await snapshot()).toEqual(before);
    expect((await t.api.get(`${t.path}/${type}/${seed.id}`)).body.meta.versionId).toBe('1');
  });

  // A Bundle inside a transaction entry keeps its own "Bundle.entry[i]" expressions (the bundle loop's re-rooting
  // leaves expressions that already start so), so that case is checked on create, update and $validate only.
  if (type !== 'Bundle') it('in a transaction entry: 400 with the expression under Bundle.entry[1].resource, and no entry stored', async () => {
    const before = await snapshot();
    const res = await transaction([postEntry(SEED.Patient), postEntry(resource)]);
    expect(res.status).toBe(400);
    expect(errors(res)).toEqual([`${code} ${inEntry(expression, 1)}`]);
    expect(await snapshot()).toEqual(before);
  });

  it('on $validate: 200 with the same issue, and nothing stored', async () => {
    const before = await snapshot();
    const res = await send(t, 'post', `${type}/$validate`, resource);
    expect(res.status).toBe(200);
    expect(errors(res)).toEqual([`${code} ${expression}`]);
    expect(await snapshot()).toEqual(before);
  });
});

// [rule, resource] that HL7 accepts and so must be stored unchanged
const ACCEPTED: [string, R][] = [
  ['base64 with line breaks and spaces (MIME style)', { resourceType: 'Patient', photo: [{ contentType: 'image/png', data: 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ\r\nAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E rkJggg==' }] }],
  ['Binary.data with one and two padding characters', { resourceType: 'Binary', contentType: 'text/plain', data: 'SGVsbG8gd29ybGQ=' }],
  ['a valueBase64Binary extension', { resourceType: 'Patient', extension: [{ url: 'urn:test:blob', valueBase64Binary: 'AQID' }] }],
  ['a primitive array with nulls aligned to _given extensions', {
    resourceType: 'Patient',
    name: [{ family: 'Aligned', given: ['Ann', null, 'Cy'], _given: [null, { extension: [ext('urn:test:given-only', 'B.')] }, { id: 'g2', extension: [ext('urn:test:note', 'nickname')] }] }],
  }],
  ['a primitive carried only by its _element extension', { resourceType: 'Patient', _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] } }],
  ['a complex extension (nested extensions, no value)', { resourceType: 'Patient', extension: [{ url: 'urn:test:complex', extension: [ext('urn:test:a', 'x'), { url: 'urn:test:b', valueBoolean: false }] }] }],
  ['a narrative with markup, entities, a comment and a table', { resourceType: 'Patient', text: div('<p class="x" style="color: red">Ann &amp; Bo&#160;&nbsp;<br/><a href="https://example.org/?a=1&amp;b=2">link</a></p><!-- note --><table border="1"><tr><td>1</td></tr></table>') }],
  ['a narrative holding only an image (txt-2)', { resourceType: 'Patient', text: div('<img src="data:image/png;base64,AAAA" alt=""/>') }],
  ['a valid contained resource with its own narrative', { resourceType: 'Patient', contained: [{ resourceType: 'Practitioner', id: 'dr', name: [{ family: 'Who' }], text: div('Dr Who') }], generalPractitioner: [{ reference: '#dr' }] }],
  ['a stored Bundle of valid entries', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', photo: [{ data: 'AAAA' }] } }, { resource: { resourceType: 'Patient', text: div('Ann') } }] }],
];

describe.each(ACCEPTED)('accepts %s', (_rule, resource) => {
  const type = resource.resourceType as string;

  it('on create, update, in a transaction and on $validate, storing it unchanged', async () => {
    const created = await send(t, 'post', type, resource);
    expect(created.status).toBe(201);
    const { id, meta: _meta, ...stored } = created.body;
    expect(stored).toEqual(resource);
    const updated = await send(t, 'put', `${type}/${id}`, { ...resource, id });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');
    const tx = await transaction([postEntry(SEED.Patient), postEntry(resource)]);
    expect(tx.status).toBe(200);
    expect(tx.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created']);
    const validated = await send(t, 'post', `${type}/$validate`, resource);
    expect(validated.status).toBe(200);
    expect(validated.body.issue).toEqual([expect.objectContaining({ severity: 'information' })]);
    // another tenant sees none of it
    expect((await other.api.get(`${other.path}/${type}/${id}`)).status).toBe(404);
  });
});

describe('one issue per element, and every issue at once', () => {
  it('a null the schema also refuses is reported once, with the base-rule code', async () => {
    const res = await send(t, 'post', 'Patient/$validate', { resourceType: 'Patient', gender: null, birthDate: null });
    expect(errors(res).sort()).toEqual(['NULL_VALUE Patient.birthDate', 'NULL_VALUE Patient.gender']);
  });

  it('gathers the issues of several rules, the schema and the nested resources in one outcome', async () => {
    const before = await snapshot();
    const res = await send(t, 'post', 'Patient', {
      resourceType: 'Patient',
      colour: 'red',
      name: [],
      photo: [{ data: '!!' }],
      extension: [{ url: 'urn:test:none' }],
      text: div(''),
      contained: [{ resourceType: 'Organization', id: 'o', name: '', alias: [null] }],
    });
    expect(res.status).toBe(400);
    expect(errors(res).sort()).toEqual([
      'ARRAY_EMPTY Patient.name',
      'ARRAY_NULL_ENTRY Patient.contained[0].alias[0]',
      'BASE64_INVALID Patient.photo[0].data',
      'EXTENSION_CONTENT_INVALID Patient.extension[0]',
      'NARRATIVE_EMPTY Patient.text.div',
      'SCHEMA_VIOLATION Patient.colour',
      'VALUE_EMPTY Patient.contained[0].name',
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('a failed write in one tenant leaves the other tenant untouched', async () => {
    const before = await snapshot(other);
    expect((await send(t, 'post', 'Patient', { resourceType: 'Patient', name: [] })).status).toBe(400);
    expect((await send(other, 'post', 'Patient', { resourceType: 'Patient', name: [] })).status).toBe(400);
    expect(await snapshot(other)).toEqual(before);
  });
});
