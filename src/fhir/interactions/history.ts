// history (http.html#history): instance, type and whole-tenant, with _since, _at, _count and keyset paging.
import { factsOf } from '../audit.js';
import type { HistoryQuery } from '../../store/resources.js';
import { dateRange } from '../../search/date-range.js';
import { RawJsonBuilder } from '../bundle-json.js';
import type { FhirContext } from '../context.js';
import type { FhirRequest, FhirResult } from '../request.js';
import { FhirError } from '../../core/errors.js';
import { etag } from '../etag.js';
import { assertInRegion, authorize, visibleVersions } from '../guard.js';
import { assertId, ID_PATTERN } from '../ids.js';
import { limitResource } from '../subset.js';

// What the interaction answered; a PUT that wrote version 1 was an update-as-create.
const STATUS: Record<string, string> = { POST: '201 Created', PUT: '200 OK', DELETE: '204 No Content' };

function encodeCursor(c: NonNullable<HistoryQuery['after']>): string {
  return Buffer.from(JSON.stringify([c.lastUpdated, c.type, c.id, c.versionId])).toString('base64url');
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

/** The token is client-controlled: every part is checked here, so a forged one is a 400, never a SQL cast error. */
function decodeCursor(s: string): HistoryQuery['after'] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 4) {
      const [lastUpdated, type, id, versionId] = parsed as unknown[];
      if (
        typeof lastUpdated === 'string' &&
        CURSOR_TIME.test(lastUpdated) &&
        !Number.isNaN(Date.parse(lastUpdated)) &&
        typeof type === 'string' &&
        /^[A-Z][A-Za-z]{0,63}$/.test(type) &&
        typeof id === 'string' &&
        ID_PATTERN.test(id) &&
        Number.isInteger(versionId) &&
        (versionId as number) > 0 &&
        (versionId as number) < 2 ** 31
      ) {
        return { lastUpdated, type, id, versionId: versionId as number };
      }
    }
  } catch {
    // fall through
  }
  throw new FhirError('invalid', 'Invalid _cursor paging token', { code: 'CURSOR_INVALID' });
}

function instantParam(name: string, value: string, low: boolean): string {
  const r = dateRange(value);
  if (!r) throw new FhirError('invalid', `${name} must be a FHIR instant or date, got ${JSON.stringify(value.slice(0, 64))}`, { code: 'HISTORY_PARAM_INVALID', issueType: 'invalid' });
  return low ? r.low : r.high;
}

/**
 * The entries the caller may see, each version judged on its own content: instance history ('r'; deletion entries
 * of a resource inside the region stay) or type/system history ('s').
 */
function visibleEntries<T extends { resourceType: string; json: string | null }>(ctx: FhirContext, rows: T[], instance: boolean) {
  if (!instance) return visibleVersions(ctx, rows, 's');
  const kept = visibleVersions(ctx, rows.filter((r) => r.json !== null), 'r');
  return rows.filter((r) => r.json === null || kept.some((k) => k.row === r)).map((row) => kept.find((k) => k.row === row) ?? { row });
}

/** GET [base]/_history, [type]/_history, [type]/[id]/_history */
export async function history(ctx: FhirContext, req: FhirRequest, type?: string, id?: string): Promise<FhirResult> {
  const params = req.params;
  if (id !== undefined) assertId(id, 'URL');
  const h: HistoryQuery = { type, id, count: 20 };
  const seen = new Set<string>();
  for (const [name, value] of params) {
    if (['_since', '_at', '_count'].includes(name)) {
      if (seen.has(name)) throw new FhirError('invalid', `${name} may appear only once`, { code: 'HISTORY_PARAM_REPEATED' });
      seen.add(name);
    }
    if (name === '_count') {
      const n = /^\d{1,9}$/.test(value) ? Number(value) : NaN;
      if (!Number.isInteger(n) || n < 0) throw new FhirError('invalid', `_count must be a non-negative integer`, { code: 'HISTORY_PARAM_INVALID' });
      h.count = Math.min(n, 1000);
    } else if (name === '_since') h.since = instantParam(name, value, true);
    else if (name === '_at') h.at = instantParam(name, value, false);
    else if (name === '_cursor') h.after = decodeCursor(value);
  }
  const interaction = id !== undefined ? 'history-instance' : type !== undefined ? 'history-type' : 'history-system';
  const d = authorize(ctx, { interaction, resourceType: type, id });
  const { rows, visible } = await ctx.store.read(async (s) => {
    // Instance history of a resource the tenant never held is 404, as read is (another tenant's id included).
    if (type !== undefined && id !== undefined) {
      if (!(await s.readCurrent(type, id))) throw new FhirError('not-found', `${type}/${id} is not known`, { code: 'RESOURCE_NOT_FOUND' });
      await assertInRegion(ctx, s, type, id, d);
    }
    const rows = await s.readHistory(h);
    return { rows, visible: visibleEntries(ctx, rows.slice(0, h.count), id !== undefined) };
  });
  const page = rows.slice(0, h.count);
  const b = new RawJsonBuilder();
  const path = [type, id].filter(Boolean).join('/');
  const self = new URL(`${ctx.baseUrl}/${path ? path + '/' : ''}_history`);
  for (const [name, value] of params) if (name !== '_format' && name !== '_pretty') self.searchParams.append(name, value);
  const links = [{ relation: 'self', url: self.toString() }];
  if (rows.length > h.count && page.length) {
    const last = page[page.length - 1];
    const next = new URL(self);
    next.searchParams.set('_cursor', encodeCursor({ lastUpdated: last.lastUpdated.toISOString(), type: last.resourceType, id: last.id, versionId: last.versionId }));
    if (!next.searchParams.has('_count')) next.searchParams.set('_count', String(h.count));
    links.push({ relation: 'next', url: next.toString() });
  }
  const entry = visible.map(({ row: r, elements }) => ({
    fullUrl: `${ctx.baseUrl}/${r.resourceType}/${r.id}`,
    ...(r.json !== null ? { resource: elements ? limitResource(JSON.parse(r.json), elements) : b.raw(r.json) } : {}),
    request: { method: r.method, url: r.method === 'POST' ? r.resourceType : `${r.resourceType}/${r.id}` },
    response: { status: r.method === 'PUT' && r.versionId === 1 ? '201 Created' : (STATUS[r.method] ?? '200 OK'), etag: etag(r.versionId), lastModified: r.lastUpdated.toISOString() },
  }));
  // FHIR JSON has no empty arrays (json.html): an empty page carries no `entry`.
  const bundle = { resourceType: 'Bundle', type: 'history', link: links, ...(entry.length ? { entry } : {}) };
  return { status: 200, body: b.stringify(bundle), audit: factsOf(visible.map((v) => v.row)) };
}
