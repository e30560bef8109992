// batch and transaction (http.html#transaction). A transaction is ONE database transaction: entries run in the
// order DELETE, POST, PUT/PATCH, GET; urn:uuid and conditional references are rewritten first; any failure rolls
// everything back and the OperationOutcome names the entry. Batch entries succeed or fail one by one.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Queryable } from '../../platform/db.js';
import { RawJsonBuilder } from '../bundle-json.js';
import type { FhirContext, FhirResult, PreferReturn } from '../context.js';
import { FhirError, toFhirError } from '../errors.js';
import { etag } from '../etag.js';
import { readResource, vreadResource } from '../interactions/read.js';
import { searchType } from '../interactions/search.js';
import { classifyReference, findReferences, rewritePlaceholders } from '../references.js';
import { referenceIssues, refContext } from '../validation/index.js';
import {
  commitWrites,
  matchCondition,
  prepareConditionalUpdate,
  prepareCreate,
  prepareDelete,
  preparePatch,
  prepareUpdate,
  type PreparedWrite,
  type WriteOutcome,
} from '../write.js';
import { checkBundle, entryError, parseEntry, patchOperations, type ParsedEntry } from './entries.js';

const STATUS_TEXT: Record<number, string> = { 200: '200 OK', 201: '201 Created', 204: '204 No Content', 304: '304 Not Modified' };
const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

interface EntryResult {
  status: number;
  location?: string;
  etag?: string;
  lastModified?: string;
  /** resource JSON (GET results, or writes with return=representation) */
  json?: string;
  outcome?: Record<string, unknown>;
}

function writeResult(ctx: FhirContext, w: WriteOutcome, prefer: PreferReturn | undefined): EntryResult {
  const res: EntryResult = { status: w.status };
  if (w.versionId > 0) {
    res.etag = etag(w.versionId);
    res.lastModified = w.lastUpdated;
  }
  if (w.status === 201 || (w.status === 200 && w.json)) res.location = `${w.resourceType}/${w.id}/_history/${w.versionId}`;
  if (prefer === 'representation' && w.json) res.json = w.json;
  return res;
}

/** Re-roots an error's expressions onto the entry and prefixes its message with the entry. */
function inEntry(err: unknown, e: ParsedEntry): FhirError {
  const f = toFhirError(err);
  if (f.kind === 'internal') return f;
  const prefix = `Bundle.entry[${e.index}]`;
  if (f.message.startsWith(prefix)) return f;
  const reroot = (x: string) => (x.startsWith('Bundle.') ? x : `${prefix}.resource.${x.replace(/^[A-Z][A-Za-z]+\./, '')}`);
  const issues: OperationOutcomeIssue[] = (f.issues ?? f.toOutcome().issue).map((i) => ({
    ...i,
    diagnostics: `${prefix} (${e.method} ${e.url.slice(0, 200)}): ${i.diagnostics ?? ''}`,
    expression: i.expression?.map(reroot) ?? [prefix],
  }));
  return new FhirError(f.kind, `${prefix} (${e.method} ${e.url.slice(0, 200)}): ${f.message}`, { code: f.code, issues, cause: f });
}

/** Rewrites conditional references ("Patient?identifier=x|y") in every resource to the single match. */
async function resolveConditionalReferences(ctx: FhirContext, q: Queryable, entries: ParsedEntry[]): Promise<void> {
  const rc = refContext(ctx);
  const cache = new Map<string, string>();
  for (const e of entries) {
    if (!e.resource) continue;
    for (const ref of findReferences(e.resource)) {
      const c = classifyReference(ref.reference, rc);
      if (c.kind !== 'conditional') continue;
      let target = cache.get(ref.reference);
      if (!target) {
        let ids: string[];
        try {
          ids = await matchCondition(ctx, q, c.type, c.query);
        } catch (err) {
          throw inEntry(err, e);
        }
        const where = `Bundle.entry[${e.index}].resource${ref.path.slice(String(e.resource.resourceType).length)}.reference`;
        if (ids.length === 0) {
          throw new FhirError('invalid', `Bundle.entry[${e.index}]: conditional reference ${ref.reference} matches no resource`, { code: 'REFERENCE_CONDITIONAL_NO_MATCH', expression: [where], issueType: 'not-found' });
        }
        if (ids.length > 1) {
          throw new FhirError('precondition-failed', `Bundle.entry[${e.index}]: conditional reference ${ref.reference} matches more than one resource`, { code: 'REFERENCE_CONDITIONAL_MULTIPLE', expression: [where], issueType: 'multiple-matches' });
        }
        target = `${c.type}/${ids[0]}`;
        cache.set(ref.reference, target);
      }
      ref.holder.reference = target;
    }
  }
}

/** Assigns ids to POST entries and maps fullUrls to them; detects duplicate identities. */
async function planIdentities(ctx: FhirContext, q: Queryable, entries: ParsedEntry[]): Promise<{ placeholders: Map<string, string>; ids: Map<number, string>; existingCreates: Set<number> }> {
  const placeholders = new Map<string, string>();
  const ids = new Map<number, string>();
  const existingCreates = new Set<number>();
  const fullUrls = new Set<string>();
  const conditions = new Map<string, number>();
  const identities = new Map<string, number>();
  const claim = (key: string, e: ParsedEntry) => {
    const prev = identities.get(key);
    if (prev !== undefined) {
      throw entryError(e.index, `${key} is also the target of Bundle.entry[${prev}]; a resource may appear only once in a transaction`, 'BUNDLE_DUPLICATE_RESOURCE');
    }
    identities.set(key, e.index);
  };
  for (const e of entries) {
    if (e.fullUrl) {
      if (fullUrls.has(e.fullUrl)) throw entryError(e.index, `fullUrl ${e.fullUrl} appears more than once`, 'BUNDLE_DUPLICATE_FULLURL');
      fullUrls.add(e.fullUrl);
    }
    if (e.method === 'GET' || e.method === 'HEAD') continue;
    let id: string | undefined = e.id;
    if (e.method === 'POST') {
      if (e.ifNoneExist !== undefined) {
        const key = `${e.type}?${e.ifNoneExist}`;
        const prev = conditions.get(key);
        if (prev !== undefined) throw entryError(e.index, `creates the same conditional resource (${key}) as Bundle.entry[${prev}]`, 'BUNDLE_DUPLICATE_CONDITIONAL');
        conditions.set(key, e.index);
        const found = await matchCondition(ctx, q, e.type, e.ifNoneExist).catch((err) => {
          throw inEntry(err, e);
        });
        if (found.length > 1) throw new FhirError('precondition-failed', `Bundle.entry[${e.index}]: ifNoneExist matched more than one ${e.type}`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
        if (found.length === 1) {
          id = found[0];
          existingCreates.add(e.index);
        }
      }
      id ??= ctx.deps.newId();
    } else if (id === undefined && e.query !== undefined) {
      const key = `${e.type}?${e.query}`;
      const prev = conditions.get(key);
      if (prev !== undefined) throw entryError(e.index, `uses the same condition (${key}) as Bundle.entry[${prev}]`, 'BUNDLE_DUPLICATE_CONDITIONAL');
      conditions.set(key, e.index);
      const found = await matchCondition(ctx, q, e.type, e.query).catch((err) => {
        throw inEntry(err, e);
      });
      if (found.length > 1) throw new FhirError('precondition-failed', `Bundle.entry[${e.index}]: condition ${key} matched more than one resource`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
      if (found.length === 1) id = found[0];
      else if (e.method === 'PUT') id = typeof e.resource?.id === 'string' ? e.resource.id : ctx.deps.newId();
      else if (e.method === 'PATCH') throw new FhirError('not-found', `Bundle.entry[${e.index}]: conditional patch ${key} matched nothing`, { code: 'CONDITION_NO_MATCH' });
    }
    if (id !== undefined) {
      ids.set(e.index, id);
      claim(`${e.type}/${id}`, e);
      if (e.fullUrl) placeholders.set(e.fullUrl, `${e.type}/${id}`);
    }
  }
  return { placeholders, ids, existingCreates };
}

async function runTransaction(ctx: FhirContext, q: Queryable, entries: ParsedEntry[], prefer: PreferReturn | undefined): Promise<EntryResult[]> {
  const { placeholders, ids, existingCreates } = await planIdentities(ctx, q, entries);
  // Only urn: placeholders and absolute fullUrls of this tenant are rewritten; "Type/id" already means itself.
  const map = new Map([...placeholders].filter(([k]) => k.startsWith('urn:') || k.startsWith(ctx.baseUrl + '/')));
  for (const e of entries) if (e.resource && map.size) rewritePlaceholders(e.resource, map);
  await resolveConditionalReferences(ctx, q, entries);

  const results: EntryResult[] = new Array(entries.length);
  const order = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
  const written: Record<string, unknown>[] = [];
  const pendingCreates: { e: ParsedEntry; p: PreparedWrite | WriteOutcome }[] = [];
  const flushCreates = async () => {
    const outs = await commitWrites(ctx, q, pendingCreates.map((x) => x.p));
    pendingCreates.forEach((x, i) => (results[x.e.index] = writeResult(ctx, outs[i], prefer)));
    pendingCreates.length = 0;
  };
  for (const e of order) {
    try {
      if (e.method !== 'POST' && pendingCreates.length) await flushCreates();
      const opts = { ifMatch: e.ifMatch, skipReferenceCheck: true };
      const id = ids.get(e.index);
      switch (e.method) {
        case 'DELETE': {
          if (id === undefined) {
            results[e.index] = { status: 204 }; // a conditional delete that matched nothing has no effect
            break;
          }
          const [out] = await commitWrites(ctx, q, [await prepareDelete(ctx, q, e.type, id, opts)]);
          results[e.index] = writeResult(ctx, out, prefer);
          break;
        }
        case 'POST': {
          if (existingCreates.has(e.index)) {
            const p = await prepareCreate(ctx, q, e.type, e.resource, { ...opts, ifNoneExist: e.ifNoneExist });
            pendingCreates.push({ e, p });
          } else {
            const p = await prepareCreate(ctx, q, e.type, e.resource, { ...opts, id });
            pendingCreates.push({ e, p });
            if ('row' in p) written.push(p.outcome.resource!);
          }
          break;
        }
        case 'PUT': {
          const body = e.query !== undefined && e.id === undefined ? { ...e.resource, id } : e.resource;
          const p = await prepareUpdate(ctx, q, e.type, id!, body, opts);
          const [out] = await commitWrites(ctx, q, [p]);
          written.push(p.outcome.resource!);
          results[e.index] = writeResult(ctx, out, prefer);
          break;
        }
        case 'PATCH': {
          const p = await preparePatch(ctx, q, e.type, id!, patchOperations(e), opts);
          const [out] = await commitWrites(ctx, q, [p]);
          written.push(p.outcome.resource!);
          results[e.index] = writeResult(ctx, out, prefer);
          break;
        }
        default:
          results[e.index] = await runGet(ctx, q, e);
      }
    } catch (err) {
      throw inEntry(err, e);
    }
  }
  if (pendingCreates.length) await flushCreates();
  // References are checked once, after every write, against the transaction's own view of the tenant.
  const issues = await referenceIssues(
    ctx,
    q,
    written.map((r) => ({ resource: r })),
  );
  if (issues.length) {
    // Map issues back to entries by matching the written resource's identity.
    const entryOf = new Map<string, ParsedEntry>();
    for (const e of entries) if (ids.has(e.index)) entryOf.set(`${e.type}/${ids.get(e.index)}`, e);
    const rewritten = issues.map((i) => {
      const expr = i.expression?.[0] ?? '';
      const owner = written.find((r) => expr.startsWith(String(r.resourceType)));
      const e = owner ? entryOf.get(`${owner.resourceType}/${owner.id}`) : undefined;
      if (!e) return i;
      const prefix = `Bundle.entry[${e.index}]`;
      return { ...i, diagnostics: `${prefix}: ${i.diagnostics}`, expression: i.expression?.map((x) => `${prefix}.resource.${x.replace(/^[A-Z][A-Za-z]+\./, '')}`) };
    });
    throw new FhirError('invalid', String(rewritten[0].diagnostics), { issues: rewritten, code: 'REFERENCE_NOT_FOUND' });
  }
  return results;
}

async function runGet(ctx: FhirContext, q: Queryable | undefined, e: ParsedEntry): Promise<EntryResult> {
  let r: FhirResult;
  if (e.id !== undefined && e.vid !== undefined) r = await vreadResource(ctx, e.type, e.id, e.vid, q);
  else if (e.id !== undefined) r = await readResource(ctx, e.type, e.id, { ifNoneMatch: e.ifNoneMatch, ifModifiedSince: e.ifModifiedSince }, q);
  else r = await searchType(ctx, e.type, [...new URLSearchParams(e.query ?? '')] as [string, string][], false, q);
  return { status: r.status, etag: r.headers?.ETag, json: typeof r.body === 'string' ? r.body : r.body ? JSON.stringify(r.body) : undefined };
}

async function runBatchEntry(ctx: FhirContext, e: ParsedEntry, prefer: PreferReturn | undefined): Promise<EntryResult> {
  if (e.method === 'GET' || e.method === 'HEAD') return runGet(ctx, undefined, e);
  return ctx.deps.db.tx(ctx.tenant.id, async (q) => {
    const opts = { ifMatch: e.ifMatch };
    let p: PreparedWrite | WriteOutcome;
    if (e.method === 'POST') p = await prepareCreate(ctx, q, e.type, e.resource, { ...opts, ifNoneExist: e.ifNoneExist });
    else if (e.method === 'DELETE') {
      if (e.id === undefined) throw entryError(e.index, 'conditional delete is not supported inside a batch', 'BUNDLE_ENTRY_URL');
      p = await prepareDelete(ctx, q, e.type, e.id, opts);
    } else if (e.method === 'PUT') p = e.id !== undefined ? await prepareUpdate(ctx, q, e.type, e.id, e.resource, opts) : await prepareConditionalUpdate(ctx, q, e.type, e.query!, e.resource, opts);
    else {
      if (e.id === undefined) throw entryError(e.index, 'conditional patch is not supported inside a batch', 'BUNDLE_ENTRY_URL');
      p = await preparePatch(ctx, q, e.type, e.id, patchOperations(e), opts);
    }
    const [out] = await commitWrites(ctx, q, [p]);
    return writeResult(ctx, out, prefer);
  });
}

function responseEntry(b: RawJsonBuilder, ctx: FhirContext, r: EntryResult): Record<string, unknown> {
  const entry: Record<string, unknown> = {};
  if (r.json) {
    entry.resource = b.raw(r.json);
    if (r.location) entry.fullUrl = `${ctx.baseUrl}/${r.location.replace(/\/_history\/.*$/, '')}`;
  }
  entry.response = {
    status: STATUS_TEXT[r.status] ?? String(r.status),
    ...(r.location ? { location: r.location } : {}),
    ...(r.etag ? { etag: r.etag } : {}),
    ...(r.lastModified ? { lastModified: r.lastModified } : {}),
    ...(r.outcome ? { outcome: r.outcome } : {}),
  };
  return entry;
}

/** POST [base] with a batch or transaction Bundle. */
export async function processBundle(ctx: FhirContext, body: unknown, prefer: PreferReturn | undefined): Promise<FhirResult> {
  const { type, entries: raw } = checkBundle(body, ctx.deps.config.maxBundleEntries);
  const b = new RawJsonBuilder();
  let results: EntryResult[];
  if (type === 'transaction') {
    const entries = raw.map((r, i) => parseEntry(ctx, r, i));
    results = await ctx.deps.db.tx(ctx.tenant.id, (q) => runTransaction(ctx, q, entries, prefer));
  } else {
    results = [];
    for (let i = 0; i < raw.length; i++) {
      try {
        const e = parseEntry(ctx, raw[i], i);
        results.push(await runBatchEntry(ctx, e, prefer));
      } catch (err) {
        const f = toFhirError(err);
        if (f.kind === 'internal') ctx.log.error({ err, entry: i }, 'batch entry failed');
        results.push({ status: f.status, outcome: f.toOutcome() as unknown as Record<string, unknown> });
      }
    }
  }
  const bundle = {
    resourceType: 'Bundle',
    type: `${type}-response`,
    entry: results.map((r) => responseEntry(b, ctx, r)),
  };
  return { status: 200, body: b.stringify(bundle) };
}
