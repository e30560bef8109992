// docs/bulk-conformance.md stays in step with the Bulk Data certification kit's requirement list and with the tests it
// cites: every Bulk Data Access IG 2.0.0 SHALL / SHALL NOT row of the kit's CSV has exactly one entry (in ID order,
// with its conformance level, spec URL(s) and a status), the summary counts are right, every NOT MET entry is listed,
// and every cited test exists by name. The SHOULD / SHOULD NOT / MAY table is not required to be complete, but what it
// lists must be rows of the CSV at the level it says. The checks themselves: tests/helpers/conformance-doc.ts.
import { describe, expect, it } from '@jest/globals';
import { conformanceDoc } from '../helpers/conformance-doc.js';

/** The STU2 set (the file also holds STU1, `hl7.fhir.uv.bulkdata_1.0.0`; this server implements STU2). */
const REQ_SET = 'hl7.fhir.uv.bulkdata_2.0.0';
/**
 * The kit's server requirements (read-only, see the README beside it) in the shared folder beside the repository
 * (`../shared`, as every checkout and CI lays it out); BULK_REQUIREMENTS_CSV overrides the path.
 */
const bulk = conformanceDoc({
  kit: 'Bulk Data',
  csvFile: 'shared/standards/requirements/bulk-server.csv',
  csvEnv: 'BULK_REQUIREMENTS_CSV',
  docFile: 'docs/bulk-conformance.md',
  reqSet: REQ_SET,
  eachTemplate: /\b(?:it|test)\.each\((?:[^)]|\)(?!\())*\)\(\s*(['"])((?:\\.|(?!\1).)+)\1/g,
  otherRows: true,
});

describe('docs/bulk-conformance.md against the Bulk Data Access 2.0.0 requirement list', () => {
  it("the CSV parses into the README's counts (520 server rows; 257 in 2.0.0, 119 of them SHALL/SHALL NOT)", () => {
    const { all, inSet, selected } = bulk.requirements();
    expect(all).toHaveLength(520);
    expect(new Set(all.map((r) => r['Req Set']))).toEqual(new Set(['hl7.fhir.uv.bulkdata_1.0.0', REQ_SET]));
    expect(inSet).toHaveLength(257);
    expect(selected).toHaveLength(119);
    expect(selected.filter((r) => r.conformance === 'SHALL NOT')).toHaveLength(2);
    expect(new Set(selected.map((r) => r.id)).size).toBe(119);
    // multi-line requirement text survives parsing
    expect(inSet.find((r) => r.ID === '151')?.Requirement).toBe('Response - Complete Status:\n\n`transactionTime`: type: FHIR instant');
  });

  bulk.checks();
});
