// docs/subscriptions-conformance.md stays in step with the Subscriptions certification kit's requirement list and with
// the tests it cites: every Backport IG 1.1.0 SHALL / SHALL NOT row of the kit's CSV has exactly one entry (in ID
// order, with its conformance level, spec URL and a status), the summary counts are right, every NOT MET entry is
// listed, and every cited test exists by name. The SHOULD / SHOULD NOT / MAY table is not required to be complete,
// but what it lists must be rows of the CSV at the level it says. The checks themselves: tests/helpers/conformance-doc.ts.
import { describe, expect, it } from '@jest/globals';
import { conformanceDoc } from '../helpers/conformance-doc.js';

const REQ_SET = 'hl7.fhir.uv.subscriptions_1.1.0';
/**
 * The kit's server requirements (read-only, see the README beside it) in the shared folder beside the repository
 * (`../shared`, as every checkout and CI lays it out); SUBSCRIPTIONS_REQUIREMENTS_CSV overrides the path.
 */
const subscriptions = conformanceDoc({
  kit: 'Subscriptions',
  csvFile: 'shared/standards/requirements/subscriptions-server.csv',
  csvEnv: 'SUBSCRIPTIONS_REQUIREMENTS_CSV',
  docFile: 'docs/subscriptions-conformance.md',
  reqSet: REQ_SET,
  eachTemplate: /\b(?:it|test)\.each\([^)]*\)\(\s*(['"])((?:\\.|(?!\1).)+)\1/g,
  otherRows: true,
});

describe('docs/subscriptions-conformance.md against the Subscriptions Backport 1.1.0 requirement list', () => {
  it("the CSV parses into the README's counts (115 server rows; 70 SHALL/SHALL NOT rows)", () => {
    const { all, selected } = subscriptions.requirements();
    expect(all).toHaveLength(115);
    expect(new Set(all.map((r) => r['Req Set']))).toEqual(new Set([REQ_SET]));
    expect(selected).toHaveLength(70);
    expect(selected.filter((r) => r.conformance === 'SHALL NOT')).toHaveLength(2);
    expect(new Set(selected.map((r) => r.id)).size).toBe(70);
    // multi-line requirement text survives parsing
    expect(all.find((r) => r.ID === '7')?.Requirement).toMatch(/server:\n - is capable of detecting[\s\S]*\n - is willing/);
  });

  subscriptions.checks();
});
