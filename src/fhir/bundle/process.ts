// batch and transaction (http.html#transaction). A transaction is ONE database transaction: entries run in the
// order DELETE, POST, PUT/PATCH, GET; urn:uuid and conditional references are rewritten first; any failing write
// rolls everything back and the OperationOutcome names the entry (a failed GET is only that entry's answer).
// Batch entries succeed or fail one by one, each on its own database transaction.
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { FhirError } from '../../core/errors.js';
import { asFhirError } from '../../store/db-errors.js';
import type { TenantSession } from '../../store/session.js';
import { bodyOf } from '../body.js';
import { RawJsonBuilder } from '../bundle-json.js';
import { conditionKey } from '../conditional.js';
import type { FhirContext } from '../context.js';
import { etag } from '../etag.js';
import { conditionalUpdateTarget } from '../interactions/conditional-update.js';
import { prepareCreate } from '../interactions/create.js';
import { prepareDelete } from '../interactions/delete.js';
import { preparePatch } from '../interactions/patch.js';
import { prepareUpdate } from '../interactions/update.js';
import { classifyReference, findReferences, rewritePlaceholders } from '../references.js';
import type { FhirRequest, FhirResult, PreferReturn } from '../request.js';
import { referenceIssues, refContext } from '../validation/index.js';
import type { Dispatch } from '../interactions/index.js';
import { writeAnswer } from '../write-answer.js';
import { commitWrites, matchCondition, type PreparedWrite } from '../write.js';
import { checkBundle, entryError, parseEntry, patchOperations, type ParsedEntry } from './entries.js';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  304: '304 Not Modified',
  400: '400 Bad Request',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  410: '410 Gone',
  412: '412 Precondition Failed',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Entity',
  500: '500 Internal Server Error',
  501: '501 Not Implemented',
  503: '503 Service Unavailable',
};
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

/**
 * An interaction's answer as a bundle entry's response (http.html#transaction-response). A write's lastModified is its
 * version's instant; a read's is its Last-Modified header (second precision, as the same read over HTTP says it).
 */
function entryOf(r: FhirResult, withBody: boolean): EntryResult {
  const res: EntryResult = { status: r.status };
  if (r.version) {
    res.etag = etag(r.version.versionId);
    res.lastModified = r.version.lastUpdated;
    if (r.headers?.Location) res.location = `${r.version.resourceType}/${r.version.id}/_history/${r.version.versionId}`;
  } else {
    if (r.headers?.ETag) res.etag = r.headers.ETag;
    if (r.headers?.['Last-Modified']) res.lastModified = new Date(r.headers['Last-Modified']).toISOString();
  }
  if (withBody && r.body !== undefined) res.json = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  if (r.outcome) res.outcome = r.outcome;
  return res;
}

/** A write's answer in an entry: the resource only when the client asked for it (Prefer: return=representation). */
function writeEntry(ctx: FhirContext, w: Parameters<typeof writeAnswer>[1], prefer: PreferReturn | undefined): EntryResult {
  return entryOf(writeAnswer(ctx, w, prefer ?? 'minimal'), true);
}

function errorResult(f: FhirError): EntryResult {
  return { status: f.status, outcome: f.toOutcome() as unknown as Record<string, unknown> };
}

/**
 * Re-roots an error onto the entry: every issue's expression moves under `Bundle.entry[i].resource` (or names the
 * entry when it had none) and every diagnostics and the message start with `Bundle.entry[i]`.
 */
function inEntry(err: unknown, e: ParsedEntry): FhirError {
  const f = asFhirError(err);
  if (f.kind === 'internal') return f;
  const prefix = `Bundle.entry[${e.index}]`;
  const named = (text: string) => (text.startsWith(prefix) ? text : `${prefix} (${e.method} ${e.url.slice(0, 200)}): ${text}`);
  const reroot = (x: string): string => {
    if (x.startsWith('Bundle.entry[')) return x;
    if (x.startsWith('[')) return `${prefix}.resource.data`; // a JSON Patch operation: the Binary carries the patch
    if (x === e.type) return `${prefix}.resource`;
    return `${prefix}.resource.${x.replace(/^[A-Z][A-Za-z]+\./, '')}`;
  };
  const issues: OperationOutcomeIssue[] = (f.issues ?? f.toOutcome().issue).map((i) => ({
    ...i,
    diagnostics: named(i.diagnostics ?? f.message),
    expression: i.expression?.length ? i.expression.map(reroot) : [prefix],
  }));
  return new FhirError(f.kind, named(f.message), { code: f.code, issues, issueType: f.issueType, cause: f });
}

/** Runs `fn` for one entry, re-rooting whatever it throws onto that entry. */
async function forEntry<T>(e: ParsedEntry, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    // Driver errors pass through untouched so the database layer can retry on their SQLSTATE.
    if (!(err instanceof FhirError)) throw err;
    throw inEntry(err, e);
  }
}

/**
 * Rewrites conditional references ("Patient?identifier=x|y") in every resource to the single match. A reference
 * spelled exactly like another entry's condition (ifNoneExist, or a conditional update URL) means that entry's
 * resource, which may not exist before this transaction.
 */
async function resolveConditionalReferences(ctx: FhirContext, s: TenantSession, entries: ParsedEntry[], conditionTargets: Map<string, string>): Promise<void> {
  const rc = refContext(ctx);
  const cache = new Map(conditionTargets);
  for (const e of entries) {
    if (!e.resource || e.method === 'PATCH') continue;
    for (const ref of findReferences(e.resource)) {
      const c = classifyReference(ref.reference, rc);
      if (c.kind !== 'conditional') continue;
      const key = conditionKey(c.type, c.query);
      let target = cache.get(key);
      if (!target) {
        const ids = await forEntry(e, () => matchCondition(ctx, s, c.type, c.query));
        const where = `Bundle.entry[${e.index}].resource${ref.path.slice(String(e.resource.resourceType).length)}.reference`;
        if (ids.length === 0) {
          throw new FhirError('invalid', `Bundle.entry[${e.index}]: conditional reference ${ref.reference} matches no resource`, { code: 'REFERENCE_CONDITIONAL_NO_MATCH', expression: [where], issueType: 'not-found' });
        }
        if (ids.length > 1) {
          throw new FhirError('precondition-failed', `Bundle.entry[${e.index}]: conditional reference ${ref.reference} matches more than one resource`, { code: 'REFERENCE_CONDITIONAL_MULTIPLE', expression: [where], issueType: 'multiple-matches' });
        }
        target = `${c.type}/${ids[0]}`;
        cache.set(key, target);
      }
      ref.holder.reference = target;
    }
  }
}

interface Identities {
  /** fullUrl (and, for POSTs with an absolute fullUrl, its relative form) -> "Type/id" */
  placeholders: Map<string, string>;
  /** entry index -> the id it writes */
  ids: Map<number, string>;
  /** POSTs whose ifNoneExist matched an existing resource (nothing is created) */
  existingCreates: Set<number>;
  /** "Type?condition" of conditional creates and updates -> the "Type/id" they write */
  conditionTargets: Map<string, string>;
  /** entry index -> the condition that matched nothing, so the entry creates (re-checked before COMMIT) */
  createdUnder: Map<number, string>;
}

/** Assigns ids to POST entries (before anything is written, so circular references resolve) and detects overlaps. */
async function planIdentities(ctx: FhirContext, s: TenantSession, entries: ParsedEntry[]): Promise<Identities> {
  const out: Identities = { placeholders: new Map(), ids: new Map(), existingCreates: new Set(), conditionTargets: new Map(), createdUnder: new Map() };
  const fullUrls = new Map<string, number>();
  const conditions = new Map<string, number>();
  const identities = new Map<string, number>();
  for (const e of entries) {
    if (e.fullUrl) {
      const prev = fullUrls.get(e.fullUrl);
      if (prev !== undefined) throw entryError(e.index, `fullUrl ${e.fullUrl} is also the fullUrl of Bundle.entry[${prev}]`, 'BUNDLE_DUPLICATE_FULLURL');
      fullUrls.set(e.fullUrl, e.index);
    }
    if (e.method === 'GET' || e.method === 'HEAD') continue;
    const condition = e.method === 'POST' ? e.ifNoneExist : e.id === undefined ? e.query : undefined;
    if (condition !== undefined) {
      // Two entries on the same condition would both see "no match" and create twice (or touch one resource twice).
      const key = conditionKey(e.type, condition);
      const prev = conditions.get(key);
      if (prev !== undefined) throw entryError(e.index, `uses the same condition (${e.type}?${condition}) as Bundle.entry[${prev}]`, 'BUNDLE_DUPLICATE_CONDITIONAL');
      conditions.set(key, e.index);
    }
    const id = await forEntry(e, () => entryIdentity(ctx, s, e, condition, out));
    if (id === undefined) continue;
    const key = `${e.type}/${id}`;
    const prev = identities.get(key);
    if (prev !== undefined) {
      throw entryError(e.index, `${key} is also the target of Bundle.entry[${prev}]; a resource may appear only once in a transaction`, 'BUNDLE_DUPLICATE_RESOURCE');
    }
    identities.set(key, e.index);
    out.ids.set(e.index, id);
    if (condition !== undefined && e.method !== 'DELETE') out.conditionTargets.set(conditionKey(e.type, condition), key);
    if (e.fullUrl) out.placeholders.set(e.fullUrl, key);
    if (e.method === 'POST' && e.fullUrl?.startsWith(ctx.baseUrl + '/')) {
      // "Patient/abc" inside the bundle means the same resource as the POSTed fullUrl [base]/Patient/abc.
      out.placeholders.set(e.fullUrl.slice(ctx.baseUrl.length + 1), key);
    }
  }
  return out;
}

/** The id one write entry targets: assigned, matched by its condition, or from its URL (undefined: no effect). */
async function entryIdentity(ctx: FhirContext, s: TenantSession, e: ParsedEntry, condition: string | undefined, out: Identities): Promise<string | undefined> {
  if (condition === undefined) return e.method === 'POST' ? ctx.deps.newId() : e.id;
  if (e.method === 'PUT') {
    const bodyId = typeof e.resource?.id === 'string' ? e.resource.id : undefined;
    const { id, matched } = await conditionalUpdateTarget(ctx, s, e.type, condition, bodyId);
    if (!matched) out.createdUnder.set(e.index, condition);
    return id ?? ctx.deps.newId();
  }
  const found = await matchCondition(ctx, s, e.type, condition);
  if (found.length > 1) {
    throw new FhirError('precondition-failed', `the condition ${e.type}?${condition} matched more than one resource`, { code: 'CONDITION_MULTIPLE_MATCHES', issueType: 'multiple-matches' });
  }
  if (e.method === 'POST') {
    if (found.length === 0) {
      out.createdUnder.set(e.index, condition);
      return ctx.deps.newId();
    }
    out.existingCreates.add(e.index);
    return found[0];
  }
  if (found.length === 1) return found[0];
  if (e.method === 'PATCH') throw new FhirError('not-found', `conditional patch ${e.type}?${condition} matched nothing`, { code: 'CONDITION_NO_MATCH' });
  return undefined; // a conditional delete that matched nothing has no effect
}

/** References are checked once, after every write, against the transaction's own view of the tenant. */
async function checkReferences(ctx: FhirContext, s: TenantSession, written: { e: ParsedEntry; resource: Record<string, unknown> }[]): Promise<void> {
  const issues = await referenceIssues(
    ctx,
    s,
    written.map(({ e, resource }) => ({ resource, pathPrefix: `Bundle.entry[${e.index}].resource` })),
    // what this transaction wrote exists for its own references, whether or not the caller may read it back
    new Set(written.map(({ resource }) => `${resource.resourceType}/${resource.id}`)),
  );
  if (!issues.length) return;
  const first = issues[0];
  const code = first.details?.coding?.[0]?.code ?? 'REFERENCE_NOT_FOUND';
  throw new FhirError('invalid', String(first.diagnostics), { issues, code });
}

async function runTransaction(ctx: FhirContext, s: TenantSession, parsed: ParsedEntry[], prefer: PreferReturn | undefined, dispatch: Dispatch): Promise<EntryResult[]> {
  // Work on copies: the database may retry this function after a serialization failure, and the placeholders
  // rewritten on one attempt must not leak into the next (which assigns new ids).
  const entries = parsed.map((e) => (e.resource ? { ...e, resource: structuredClone(e.resource) } : e));
  const { placeholders, ids, existingCreates, conditionTargets, createdUnder } = await planIdentities(ctx, s, entries);
  // Only placeholders are rewritten: urn:uuid / urn:oid, absolute fullUrls of this tenant and, for POSTs, their
  // relative form; a PUT's "Type/id" already means itself.
  const isPlaceholder = (k: string) => k.startsWith('urn:') || k.startsWith(ctx.baseUrl + '/') || !/^[a-z][a-z0-9+.-]*:/i.test(k);
  const map = new Map([...placeholders].filter(([k, v]) => k !== v && isPlaceholder(k)));
  for (const e of entries) if (e.resource && e.method !== 'PATCH' && map.size) rewritePlaceholders(e.resource, map);
  await resolveConditionalReferences(ctx, s, entries, conditionTargets);

  const results: EntryResult[] = new Array(entries.length);
  const order = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
  const written: { e: ParsedEntry; resource: Record<string, unknown> }[] = [];
  const pendingCreates: { e: ParsedEntry; p: PreparedWrite }[] = [];
  let referencesChecked = false;
  // Creates are stored together (one statement per table) before anything that might read them.
  const flushCreates = async () => {
    const outs = await commitWrites(ctx, s, pendingCreates.map((x) => x.p));
    pendingCreates.forEach((x, i) => (results[x.e.index] = writeEntry(ctx, outs[i], prefer)));
    pendingCreates.length = 0;
  };
  for (const e of order) {
    if (e.method !== 'POST' && pendingCreates.length) await flushCreates();
    if ((e.method === 'GET' || e.method === 'HEAD') && !referencesChecked) {
      await checkReferences(ctx, s, written);
      referencesChecked = true;
    }
    const opts = { ifMatch: e.ifMatch, skipReferenceCheck: true, condition: createdUnder.get(e.index) };
    const id = ids.get(e.index);
    switch (e.method) {
      case 'DELETE': {
        if (id === undefined) {
          results[e.index] = { status: 204 }; // a conditional delete that matched nothing has no effect
          break;
        }
        const [out] = await forEntry(e, async () => commitWrites(ctx, s, [await prepareDelete(ctx, s, e.type, id, opts)]));
        results[e.index] = writeEntry(ctx, out, prefer);
        break;
      }
      case 'POST': {
        // An ifNoneExist that matched answers with the existing resource (re-matched under the condition's lock).
        const ifNoneExist = existingCreates.has(e.index) ? e.ifNoneExist : undefined;
        const p = await forEntry(e, () => prepareCreate(ctx, s, e.type, e.resource, { ...opts, id, ifNoneExist }));
        pendingCreates.push({ e, p });
        if (p.outcome.resource) written.push({ e, resource: p.outcome.resource });
        break;
      }
      case 'PUT':
      case 'PATCH': {
        const p = await forEntry(e, () =>
          e.method === 'PATCH'
            ? preparePatch(ctx, s, e.type, id!, patchOperations(e), opts)
            : prepareUpdate(ctx, s, e.type, id!, e.id === undefined ? { ...e.resource, id } : e.resource, opts),
        );
        const [out] = await forEntry(e, () => commitWrites(ctx, s, [p]));
        written.push({ e, resource: p.outcome.resource! });
        results[e.index] = writeEntry(ctx, out, prefer);
        break;
      }
      default:
        results[e.index] = await readInTransaction(ctx, s, e, dispatch);
    }
  }
  if (pendingCreates.length) await flushCreates();
  if (!referencesChecked) await checkReferences(ctx, s, written);
  return results;
}

/** A batch or transaction entry as a FHIR request (http.html#transaction: "as if submitted individually"). */
function entryRequest(e: ParsedEntry, prefer: PreferReturn | undefined): FhirRequest {
  const path = e.url.split('?')[0].split('/').map((x) => {
    try {
      return decodeURIComponent(x);
    } catch {
      throw entryError(e.index, 'request.url has malformed percent-encoding', 'BUNDLE_ENTRY_URL');
    }
  });
  const req: FhirRequest = {
    method: e.method === 'HEAD' ? 'GET' : e.method,
    path,
    params: [...new URLSearchParams(e.query ?? '')] as [string, string][],
    // a write entry answers with its resource only when asked (Prefer: return=representation on the Bundle)
    headers: { ifMatch: e.ifMatch, ifNoneMatch: e.ifNoneMatch, ifModifiedSince: e.ifModifiedSince, ifNoneExist: e.ifNoneExist, preferReturn: prefer ?? 'minimal' },
  };
  if (e.method === 'PATCH') req.body = { contentType: 'application/json-patch+json', value: patchOperations(e) };
  else if (e.resource) req.body = { contentType: 'application/fhir+json', value: e.resource };
  return req;
}

/**
 * A GET/HEAD inside a transaction changes nothing, so a failed read (404, 410, a bad search) is that entry's
 * answer rather than a reason to roll the writes back. Database failures still abort the transaction.
 */
async function readInTransaction(ctx: FhirContext, s: TenantSession, e: ParsedEntry, dispatch: Dispatch): Promise<EntryResult> {
  try {
    return entryOf(await dispatch(ctx, entryRequest(e, undefined), s), e.method === 'GET');
  } catch (err) {
    if (!(err instanceof FhirError) || err.kind === 'internal' || (err.cause as { code?: unknown } | undefined)?.code) throw err;
    return errorResult(inEntry(err, e));
  }
}

function responseEntry(b: RawJsonBuilder, ctx: FhirContext, r: EntryResult): Record<string, unknown> {
  const entry: Record<string, unknown> = {};
  if (r.json) {
    if (r.location) entry.fullUrl = `${ctx.baseUrl}/${r.location.replace(/\/_history\/.*$/, '')}`;
    entry.resource = b.raw(r.json);
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
export async function processBundle(ctx: FhirContext, req: FhirRequest, dispatch: Dispatch): Promise<FhirResult> {
  const prefer = req.headers.preferReturn;
  const { type, entries: raw } = checkBundle(bodyOf(req).value, ctx.deps.config.maxBundleEntries);
  const b = new RawJsonBuilder();
  let results: EntryResult[];
  if (type === 'transaction') {
    const entries = raw.map((r, i) => parseEntry(ctx, r, i));
    results = await ctx.store.tx((s) => runTransaction(ctx, s, entries, prefer, dispatch));
    ctx.subscriptions?.committed(ctx.tenant.id);
  } else {
    results = [];
    for (let i = 0; i < raw.length; i++) {
      let e: ParsedEntry | undefined;
      try {
        e = parseEntry(ctx, raw[i], i);
        // each entry on its own, exactly as if it had been sent alone (its own transaction)
        results.push(entryOf(await dispatch(ctx, entryRequest(e, prefer)), e.method !== 'HEAD'));
      } catch (err) {
        const f = e ? inEntry(err, e) : asFhirError(err);
        if (f.kind === 'internal') ctx.log.error({ err, entry: i }, 'batch entry failed');
        results.push(errorResult(f));
      }
    }
  }
  const bundle = {
    resourceType: 'Bundle',
    type: `${type}-response`,
    // FHIR JSON has no empty arrays: an empty Bundle gets a response without entries.
    ...(results.length ? { entry: results.map((r) => responseEntry(b, ctx, r)) } : {}),
  };
  // the audit record names the Bundle's type (fhir/audit.ts); its entries record themselves
  return { status: 200, body: b.stringify(bundle), audit: { entities: [], patients: [], subtype: type } };
}
