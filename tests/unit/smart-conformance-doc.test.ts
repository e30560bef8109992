// docs/smart-conformance.md stays in step with the SMART certification kit's requirement list and with the tests it
// cites: every SMART App Launch 2.2.0 SHALL / SHALL NOT row of the kit's CSV has exactly one entry (in ID order, with
// its conformance level, spec URL and a status), the summary counts are right, and every cited test exists by name.
// The checks themselves: tests/helpers/conformance-doc.ts.
import { describe, expect, it } from '@jest/globals';
import { conformanceDoc } from '../helpers/conformance-doc.js';

const REQ_SET = 'hl7.fhir.uv.smart-app-launch_2.2.0';
/**
 * The kit's server requirements (read-only, see the README beside it) in the shared folder beside the repository
 * (`../shared`, as every checkout and CI lays it out); SMART_REQUIREMENTS_CSV overrides the path.
 */
const smart = conformanceDoc({
  kit: 'SMART',
  csvFile: 'shared/standards/requirements/smart-server.csv',
  csvEnv: 'SMART_REQUIREMENTS_CSV',
  docFile: 'docs/smart-conformance.md',
  reqSet: REQ_SET,
});

describe('docs/smart-conformance.md against the SMART 2.2.0 requirement list', () => {
  it('the CSV parses into the README\'s counts (530 server rows; 172 SHALL/SHALL NOT rows for 2.2.0)', () => {
    const { all, selected } = smart.requirements();
    expect(all).toHaveLength(530);
    expect(selected).toHaveLength(172);
    expect(new Set(selected.map((r) => r.id)).size).toBe(172);
    // multi-line requirement text survives parsing
    expect(all.find((r) => r['Req Set'] === REQ_SET && r.ID === '338')?.Requirement).toMatch(/jku[\s\S]*\n[\s\S]*kid/);
  });

  smart.checks();
});
