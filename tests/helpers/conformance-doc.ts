// The checks that keep a conformance document (docs/*-conformance.md) in step with a certification kit's requirement
// list and with the tests it cites: every SHALL / SHALL NOT row of the kit's CSV for one requirement set has exactly
// one entry (in ID order, with its conformance level, spec URL(s) and a status), the summary counts are right, every
// NOT MET entry is listed, every cited test exists by name, and (where the document has one) the SHOULD / SHOULD NOT /
// MAY table names rows of the CSV at their level. Each document's own test adds what is particular to its CSV.
import { expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const STATUSES = ['Proved by test', 'Met by design', 'Does not apply', 'NOT MET'] as const;
type Status = (typeof STATUSES)[number];
const OTHER_LEVELS = ['SHOULD', 'SHOULD NOT', 'MAY'];

export interface ConformanceDocSpec {
  /** The kit, as error messages name it ("Bulk Data"). */
  kit: string;
  /** The CSV beside the repository (`../shared/standards/requirements/...`), overridden by `csvEnv`. */
  csvFile: string;
  csvEnv: string;
  /** The document, relative to the repository root. */
  docFile: string;
  /** The `Req Set` whose rows the document answers (an ID is unique only within its set). */
  reqSet: string;
  /**
   * How a cited title may come from an `it.each(table)('template', ...)` (the regex finds the template, group 2);
   * absent: cited titles must be literal.
   */
  eachTemplate?: RegExp;
  /** The document ends with a SHOULD / SHOULD NOT / MAY table. */
  otherRows?: boolean;
}

export interface Requirement {
  id: number;
  url: string;
  conformance: string;
}

interface Entry {
  id: number;
  conformance: string;
  body: string;
  status?: Status;
  citations: Citation[];
}

interface Citation {
  file: string;
  describe: string;
  test: string;
}

/** RFC 4180: comma-separated, CRLF or LF records, fields optionally in double quotes ("" inside is a quote; quoted fields may hold commas and newlines). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => {
    record.push(field);
    field = '';
  };
  const endRecord = () => {
    endField();
    records.push(record);
    record = [];
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"') {
      if (field !== '') throw new Error(`CSV: a quote inside an unquoted field (record ${records.length + 1})`);
      quoted = true;
    } else if (ch === ',') endField();
    else if (ch === '\n') endRecord();
    else if (ch === '\r' && text[i + 1] === '\n') {
      endRecord();
      i++;
    } else field += ch;
    i++;
  }
  if (quoted) throw new Error('CSV: unterminated quoted field');
  if (field !== '' || record.length) endRecord();
  return records;
}

const CITATION = /^- `(tests\/[^`]+\.test\.ts)` › `([^`]+)` › `([^`]+)`\s*$/gm;

function citationsIn(text: string): Citation[] {
  return [...text.matchAll(CITATION)].map((m) => ({ file: m[1], describe: m[2], test: m[3] }));
}

/** A title as it may be spelled in the test source: as is, or with its quotes escaped. */
function inSource(source: string, title: string): number {
  for (const spelling of [title, title.replace(/'/g, "\\'"), title.replace(/"/g, '\\"')]) {
    const at = source.indexOf(spelling);
    if (at >= 0) return at;
  }
  return -1;
}

/**
 * Where a test title is in the source: literally, or (with `each`) as a row of an `it.each(table)('template', ...)`
 * (the title as jest prints it: the template's `%s` filled from the row, each filled-in value a string literal of the
 * file). For a table row the position is the template's, which must follow the describe like any other title.
 */
function titleAt(source: string, title: string, each: RegExp | undefined): number {
  const literal = inSource(source, title);
  if (literal >= 0 || !each) return literal;
  for (const m of source.matchAll(each)) {
    const parts = m[2].split(/%[sdifjop#]/);
    if (parts.length < 2) continue;
    const pattern = new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('(.+?)')}$`);
    const filled = pattern.exec(title);
    if (filled && filled.slice(1).every((v) => inSource(source, `'${v}'`) >= 0 || inSource(source, `"${v}"`) >= 0)) return m.index!;
  }
  return -1;
}

const REQUIREMENTS_HEAD = '\n## Requirements\n';
const OTHERS_HEAD = '\n## SHOULD, SHOULD NOT and MAY rows\n';

/** A conformance document and its kit's CSV, with the checks every such document must pass. */
export function conformanceDoc(spec: ConformanceDocSpec) {
  const csvPath = process.env[spec.csvEnv] ?? join(ROOT, '..', spec.csvFile);
  const doc = readFileSync(join(ROOT, spec.docFile), 'utf8');
  /** The SHALL entries: from "## Requirements" to the SHOULD/MAY table. */
  const requirementsPart = doc.slice(doc.indexOf(REQUIREMENTS_HEAD), doc.includes(OTHERS_HEAD) ? doc.indexOf(OTHERS_HEAD) : doc.length);
  const othersPart = doc.includes(OTHERS_HEAD) ? doc.slice(doc.indexOf(OTHERS_HEAD)) : '';

  /** `all`: every row of the file; `inSet`: the rows of the requirement set; `selected`: its SHALL / SHALL NOT rows. */
  function requirements(): { all: Record<string, string>[]; inSet: Record<string, string>[]; selected: Requirement[] } {
    if (!existsSync(csvPath)) {
      throw new Error(`${csvPath} is missing: the ${spec.kit} requirement list is needed to check ${spec.docFile} (set ${spec.csvEnv})`);
    }
    const [header, ...rows] = parseCsv(readFileSync(csvPath, 'utf8').replace(/^\uFEFF/, ''));
    const all = rows.map((r) => {
      if (r.length !== header.length) throw new Error(`CSV: a record with ${r.length} fields, expected ${header.length}: ${r.slice(0, 2).join(',')}`);
      return Object.fromEntries(header.map((h, i) => [h, r[i]]));
    });
    const inSet = all.filter((r) => r['Req Set'] === spec.reqSet);
    const selected = inSet
      .filter((r) => r.Conformance === 'SHALL' || r.Conformance === 'SHALL NOT')
      .map((r) => ({ id: Number(r.ID), url: r.URL, conformance: r.Conformance }))
      .sort((a, b) => a.id - b.id);
    return { all, inSet, selected };
  }

  function entries(): Entry[] {
    const heads = [...requirementsPart.matchAll(/^### (\d+) · (SHALL NOT|SHALL) · .+$/gm)];
    return heads.map((h, i) => {
      const body = requirementsPart.slice(h.index! + h[0].length, i + 1 < heads.length ? heads[i + 1].index : requirementsPart.length);
      const status = /^\*\*Status:\*\* (.+)$/m.exec(body)?.[1].trim();
      return { id: Number(h[1]), conformance: h[2], body, status: STATUSES.find((s) => s === status), citations: citationsIn(body) };
    });
  }

  /** Registers the checks in the caller's describe. */
  function checks(): void {
    it('has exactly one entry per SHALL / SHALL NOT ID, in ID order, none for other IDs', () => {
      const { selected } = requirements();
      const ids = entries().map((e) => e.id);
      const wanted = selected.map((r) => r.id);
      expect(wanted.filter((id) => !ids.includes(id))).toEqual([]); // missing from the doc
      expect(ids.filter((id) => !wanted.includes(id))).toEqual([]); // not a SHALL row
      expect(ids).toEqual(wanted); // once each, in order
    });

    it("gives each entry the row's conformance level, its spec URL and a status; a proof cites a test; the other statuses say why", () => {
      const byId = new Map(requirements().selected.map((r) => [r.id, r]));
      const problems: string[] = [];
      for (const e of entries()) {
        const r = byId.get(e.id);
        if (!r) continue;
        if (e.conformance !== r.conformance) problems.push(`${e.id}: says ${e.conformance}, the CSV says ${r.conformance}`);
        // the CSV may name several pages, comma-separated: each is linked
        for (const url of r.url.split(', ')) if (!e.body.includes(`](${url})`)) problems.push(`${e.id}: no link to ${url}`);
        if (!e.status) problems.push(`${e.id}: no status (one of ${STATUSES.join(', ')})`);
        if (e.status === 'Proved by test' && !e.citations.length) problems.push(`${e.id}: proved by test, but no test is cited`);
        const explanation = e.body
          .replace(CITATION, '')
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('[') && !l.startsWith('**Status:**') && !l.startsWith('<a id='));
        if (e.status && e.status !== 'Proved by test' && !explanation.length) problems.push(`${e.id}: ${e.status} without an explanation`);
      }
      expect(problems).toEqual([]);
    });

    it('the summary table counts the statuses of the entries', () => {
      const counted = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
      for (const e of entries()) if (e.status) counted[e.status]++;
      const table = Object.fromEntries([...doc.matchAll(/^\| (Proved by test|Met by design|Does not apply|NOT MET) \| (\d+) \|$/gm)].map((m) => [m[1], Number(m[2])]));
      expect(table).toEqual(counted);
      expect(Number(/^\| \*\*Total\*\* \| \*\*(\d+)\*\* \|$/m.exec(doc)?.[1])).toBe(entries().length);
    });

    it('lists every NOT MET entry in the NOT MET section', () => {
      const section = doc.slice(doc.indexOf('### NOT MET'), doc.indexOf(REQUIREMENTS_HEAD));
      const notMet = entries().filter((e) => e.status === 'NOT MET').map((e) => e.id);
      const listed = [...section.matchAll(/^- \[(\d+)\]\(#req-(\d+)\)/gm)].map((m) => Number(m[1]));
      expect(listed).toEqual(notMet);
      for (const id of notMet) expect(doc).toContain(`<a id="req-${id}"></a>`);
    });

    it('every cited test exists by name (describe and test title) in the cited file', () => {
      const all = citationsIn(doc);
      expect(all.length).toBeGreaterThan(100);
      const problems: string[] = [];
      const sources = new Map<string, string>();
      for (const c of all) {
        const path = join(ROOT, c.file);
        if (!sources.has(c.file)) sources.set(c.file, existsSync(path) ? readFileSync(path, 'utf8') : '');
        const source = sources.get(c.file)!;
        if (!source) {
          problems.push(`${c.file}: no such file`);
          continue;
        }
        const d = inSource(source, c.describe);
        const t = titleAt(source, c.test, spec.eachTemplate);
        if (d < 0) problems.push(`${c.file}: no describe "${c.describe}"`);
        if (t < 0) problems.push(`${c.file}: no test "${c.test}"`);
        if (d >= 0 && t >= 0 && t < d) problems.push(`${c.file}: "${c.test}" comes before its describe "${c.describe}"`);
      }
      expect(problems).toEqual([]);
    });

    if (spec.otherRows) {
      it('the SHOULD / SHOULD NOT / MAY table names rows of the CSV at their level', () => {
        const byId = new Map(requirements().inSet.map((r) => [Number(r.ID), r]));
        const rows = [...othersPart.matchAll(/^\| \[(\d+)\]\(([^)]+)\) \| (SHOULD NOT|SHOULD|MAY) \| .+\|$/gm)];
        expect(rows.length).toBeGreaterThan(0);
        const problems: string[] = [];
        for (const [, id, url, level] of rows) {
          const r = byId.get(Number(id));
          if (!r) problems.push(`${id}: not in the CSV`);
          else if (!OTHER_LEVELS.includes(r.Conformance) || r.Conformance !== level) problems.push(`${id}: says ${level}, the CSV says ${r.Conformance}`);
          else if (!r.URL.split(', ').includes(url)) problems.push(`${id}: links ${url}, the CSV says ${r.URL}`);
        }
        expect(problems).toEqual([]);
      });
    }
  }

  return { requirements, checks };
}
