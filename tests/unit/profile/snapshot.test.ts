// Snapshot generation (profiling.html#snapshot) from a differential over its base, as the profile validator builds
// it: data types expanded where a differential reaches into them, slices copied from the sliced element, a renamed
// choice (valueQuantity) made the type slice of value[x], and differentials that loosen the base refused.
import { describe, expect, it } from '@jest/globals';
import type { ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import { coreDefinition } from '../../../src/fhir/validation/profile/definitions.js';
import { shippedDefinitions } from '../../../src/fhir/validation/profile/resolver.js';
import { generateSnapshot, ProfileDefinitionError } from '../../../src/fhir/validation/profile/snapshot.js';
import { deepEqual, matchesPattern } from '../../../src/fhir/validation/profile/values.js';
import { applyProfileOptions } from '../../../src/cli/required-profiles.js';

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
const base = (type: string) => coreDefinition(CORE + type)!.snapshot!.element;
const sd = (type: string, element: Partial<ElementDefinition>[]): StructureDefinition =>
  ({ resourceType: 'StructureDefinition', url: 'http://example.org/p', type, baseDefinition: CORE + type, derivation: 'constraint', differential: { element } }) as StructureDefinition;
const byId = (els: ElementDefinition[], id: string) => els.find((e) => e.id === id);

describe('generateSnapshot', () => {
  it('applies the US Core lab report: the category slice with its pattern, and the base elements kept', () => {
    const lab = shippedDefinitions().get('http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab')!;
    const snap = generateSnapshot(lab, base('DiagnosticReport'));
    expect(byId(snap, 'DiagnosticReport.category')).toMatchObject({ min: 1, max: '*', slicing: { discriminator: [{ type: 'pattern', path: '$this' }], rules: 'open' } });
    expect(byId(snap, 'DiagnosticReport.category:LaboratorySlice')).toMatchObject({ sliceName: 'LaboratorySlice', min: 1, max: '1', patternCodeableConcept: { coding: [{ code: 'LAB' }] } });
    expect(byId(snap, 'DiagnosticReport.status')).toMatchObject({ min: 1, mustSupport: true });
    expect(snap.length).toBe(base('DiagnosticReport').length + 1);
    // order: the sliced element, its children (none here), then the slice
    const ids = snap.map((e) => e.id);
    expect(ids.indexOf('DiagnosticReport.category:LaboratorySlice')).toBe(ids.indexOf('DiagnosticReport.category') + 1);
  });

  it('expands a data type the differential reaches into, with ids and paths under the element', () => {
    const snap = generateSnapshot(sd('Observation', [{ id: 'Observation.code.coding.system', path: 'Observation.code.coding.system', min: 1 }]), base('Observation'));
    expect(byId(snap, 'Observation.code.coding')).toMatchObject({ path: 'Observation.code.coding', base: { path: 'CodeableConcept.coding' } });
    expect(byId(snap, 'Observation.code.coding.system')).toMatchObject({ path: 'Observation.code.coding.system', min: 1 });
    expect(byId(snap, 'Observation.code.text')).toBeDefined();
  });

  it('makes valueQuantity the Quantity type slice of value[x]', () => {
    const snap = generateSnapshot(sd('Observation', [{ path: 'Observation.valueQuantity.system', min: 1 }]), base('Observation'));
    expect(byId(snap, 'Observation.value[x]')?.slicing).toEqual({ discriminator: [{ type: 'type', path: '$this' }], rules: 'open' });
    expect(byId(snap, 'Observation.value[x]:valueQuantity')?.type).toEqual([{ code: 'Quantity' }]);
    expect(byId(snap, 'Observation.value[x]:valueQuantity.system')?.min).toBe(1);
  });

  it('derives ids: children listed after a slice belong to it', () => {
    const snap = generateSnapshot(
      sd('Observation', [
        { path: 'Observation.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'closed' } },
        { path: 'Observation.identifier', sliceName: 'mrn', min: 1 },
        { path: 'Observation.identifier.system', fixedUri: 'urn:mrn' },
      ]),
      base('Observation'),
    );
    expect(byId(snap, 'Observation.identifier:mrn.system')?.fixedUri).toBe('urn:mrn');
    expect(byId(snap, 'Observation.identifier.system')?.fixedUri).toBeUndefined();
  });

  it('refuses what a constraint may not do, naming the differential element', () => {
    const fails = (element: Partial<ElementDefinition>[]) => {
      try {
        generateSnapshot(sd('Observation', element), base('Observation'));
      } catch (err) {
        expect(err).toBeInstanceOf(ProfileDefinitionError);
        return `${(err as ProfileDefinitionError).element}: ${(err as Error).message}`;
      }
      return 'no error';
    };
    expect(fails([{ path: 'Observation.status', min: 0 }])).toBe("Observation.status: Observation.status: min 0 is below the base's 1");
    expect(fails([{ path: 'Observation.subject', max: '2' }])).toBe("Observation.subject: Observation.subject: max 2 exceeds the base's 1");
    expect(fails([{ path: 'Observation.identifier', min: 3, max: '2' }])).toBe('Observation.identifier: Observation.identifier: min 3 exceeds max 2');
    expect(fails([{ path: 'Observation.nothing' }])).toMatch(/^Observation.nothing: element nothing does not exist/);
    expect(fails([{ path: 'Observation.value[x].code' }])).toMatch(/several types/);
    expect(fails([{ path: 'Observation.category', sliceName: 'x' }])).toMatch(/defines no slicing/);
  });
});

describe('fixed and pattern values', () => {
  it('fixed is exact, pattern is contained', () => {
    const cc = { coding: [{ system: 's', code: 'c', display: 'd' }, { system: 't', code: 'e' }], text: 'x' };
    expect(matchesPattern(cc, { coding: [{ system: 's', code: 'c' }] })).toBe(true);
    expect(matchesPattern(cc, { coding: [{ system: 't', code: 'e' }, { system: 's', code: 'c' }] })).toBe(true);
    expect(matchesPattern(cc, { coding: [{ system: 's', code: 'x' }] })).toBe(false);
    expect(matchesPattern('a', 'a')).toBe(true);
    expect(deepEqual(cc, structuredClone(cc))).toBe(true);
    expect(deepEqual({ system: 's', code: 'c' }, { system: 's', code: 'c', display: 'd' })).toBe(false);
  });
});

describe('tenant set --require-profile options', () => {
  const LAB = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab';
  it('adds to the current setting without duplicates, clears types, checks type and URL', () => {
    expect(applyProfileOptions(undefined, [`DiagnosticReport=${LAB}`], [])).toEqual({ DiagnosticReport: [LAB] });
    expect(applyProfileOptions({ DiagnosticReport: [LAB] }, [`DiagnosticReport=${LAB}`, 'Patient=urn:p'], [])).toEqual({ DiagnosticReport: [LAB], Patient: ['urn:p'] });
    expect(applyProfileOptions({ DiagnosticReport: [LAB], Patient: ['urn:p'] }, [], ['Patient'])).toEqual({ DiagnosticReport: [LAB] });
    expect(applyProfileOptions({ DiagnosticReport: [LAB] }, ['Patient=urn:p'], ['*'])).toEqual({ Patient: ['urn:p'] });
    expect(applyProfileOptions(undefined, ['Nope=urn:p'], [])).toMatch(/resource type/);
    expect(applyProfileOptions(undefined, ['Patient='], [])).toMatch(/not a canonical URL/);
    expect(applyProfileOptions(undefined, [], ['Nope'])).toMatch(/unknown resource type 'Nope'/);
  });
});
