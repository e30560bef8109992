// The search benchmark: loads a large multi-tenant dataset over HTTP (transaction Bundles, bench/search-data.ts),
// measures a fixed mix of FHIR searches one query at a time, reports the storage the search index tables take,
// and runs EXPLAIN (ANALYZE, BUFFERS) of the SQL the server runs for the slowest query (all queries, into
// docs/search-explain.md, with --explain).
//
//   node --import ./scripts/register-ts.mjs bench/search.ts [--resources N] [--tenants T] [--load-only | --skip-load]
//        [--seconds S] [-c C] [--port P] [--keep] [--explain]
//
// PostgreSQL only (DATABASE_URL): the embedded database is not meant for a million resources.
// See bench/README.md ("Search benchmark") for what each figure means.

import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  BENCH_DIR,
  ErrorSamples,
  HttpClient,
  Interrupted,
  ROOT,
  ServerProcess,
  UsageError,
  describeResponse,
  errCode,
  fmtMs,
  lifecycle,
  makeLog,
  numberOpt,
  operatorTokens,
  portInUse,
  printTable,
  redactUrl,
  round,
  runCli,
  runMain,
  summarize,
  tail,
  timed,
  type HttpResponse,
  type LatencySummary,
} from './common.js';
import { Rng } from './synth.js';
import {
  COMMON_LOINC,
  LOINC,
  MRN_SYSTEM,
  OBS_CATEGORY,
  PANELS,
  PER_PATIENT,
  PRACTITIONERS_PER_TENANT,
  SEARCH_SEED,
  SETUP_RESOURCES,
  V2_0074,
  checkPatientBundle,
  datasetShape,
  generatePatient,
  tenantSetupBundle,
  type DatasetShape,
  type PatientFacts,
  type TenantRefs,
} from './search-data.js';
import type { Queryable } from '../src/platform/db.js';
import { planSearch } from '../src/search/plan.js';
import { SearchParamRegistry } from '../src/core/search-registry.js';
import { loadIncludes, searchPage } from '../src/store/search-sql.js';

const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const DEFAULT_STATE = path.join(RESULTS_DIR, 'search-state.json');
const EXPLAIN_DOC = path.join(ROOT, 'docs', 'search-explain.md');
/** Patients whose ids the state file keeps, in all (query parameters are drawn from them): 50 per tenant at 100 tenants. */
const SAMPLE_TOTAL = 5000;
const samplePerTenant = (tenants: number): number => Math.max(20, Math.min(100, Math.ceil(SAMPLE_TOTAL / tenants)));
/** Tenants whose page-50 links the deep-paging query uses. */
const DEEP_TARGETS = 10;
const DEEP_PAGE = 50;
const DEEP_COUNT = 10;
/** The latency target printed beside every query. */
const TARGET_P95_MS = 20;
/** The storage target: all sp_* tables (with their indexes) over the resource table (with its indexes and TOAST). */
const TARGET_STORAGE_RATIO = 3;

// ---------------------------------------------------------------------------------------------------------
// Options

interface Options {
  resources: number;
  tenants: number;
  loadOnly: boolean;
  skipLoad: boolean;
  seconds: number;
  warmup: number;
  concurrency: number;
  port: number;
  keep: boolean;
  explain: boolean;
  seed: number;
  statePath: string;
  given: Set<string>;
  token: string | undefined;
  databaseUrl: string;
  adminUrl: string;
}

const USAGE = `usage: node --import ./scripts/register-ts.mjs bench/search.ts [options]    (npm run bench:search -- [options])

  --resources N       resources to load (default 1000000); patients per tenant = (N / T - ${SETUP_RESOURCES}) / ${PER_PATIENT}, rounded up
  --tenants T         tenants to spread them over (default 100)
  --load-only         load the dataset (and report storage), then stop
  --skip-load         reuse the dataset recorded in the state file (same database); no loading
  --seconds S         measured seconds per query (default 20)
  --warmup W          untimed warm-up seconds per query before its measurement (default 2)
  -c, --concurrency C concurrent HTTP clients, for loading and for every query (default 4)
  --port P            port for the server under test (default 18081)
  --keep              leave the server running at the end
  --explain           write EXPLAIN (ANALYZE, BUFFERS) of every query to docs/search-explain.md
  --seed X            data generator seed (default ${SEARCH_SEED})
  --state FILE        state file of the loaded dataset (default bench/results/search-state.json)

  DATABASE_URL        PostgreSQL to run against (required; use a scratch database)
  DATABASE_ADMIN_URL  owner connection (migrations, VACUUM, sizes, EXPLAIN); default DATABASE_URL
  BENCH_TOKEN         sent as "Authorization: Bearer <token>" on every request (one tenant only: tokens are bound to a
                      tenant); unset = a token per tenant, minted for its operator client bench-op-<tenant>`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        resources: { type: 'string' },
        tenants: { type: 'string' },
        'load-only': { type: 'boolean' },
        'skip-load': { type: 'boolean' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        concurrency: { type: 'string', short: 'c' },
        port: { type: 'string' },
        keep: { type: 'boolean' },
        explain: { type: 'boolean' },
        seed: { type: 'string' },
        state: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (values['load-only'] && values['skip-load']) throw new UsageError('--load-only and --skip-load exclude each other');
  if (values['load-only'] && values.explain) throw new UsageError('--explain needs the query phase; drop --load-only');
  const databaseUrl = env.DATABASE_URL;
  if (!databaseUrl) {
    throw new UsageError(
      'DATABASE_URL is not set. The search benchmark runs against PostgreSQL only: the embedded database (PGlite) is not\n' +
        'meant for a million resources. Point DATABASE_URL at a scratch database, e.g.\n' +
        "  psql -h 127.0.0.1 -U postgres -c 'create database benchsearch'\n" +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchsearch npm run bench:search',
    );
  }
  const given = new Set(Object.keys(values).filter((k) => values[k] !== undefined));
  const resources = numberOpt('resources', str('resources'), 1_000_000, 1);
  const tenants = numberOpt('tenants', str('tenants'), 100, 1);
  if (tenants > 999) throw new UsageError('--tenants must be at most 999');
  return {
    resources,
    tenants,
    loadOnly: values['load-only'] === true,
    skipLoad: values['skip-load'] === true,
    seconds: numberOpt('seconds', str('seconds'), 20, 0.1, false),
    warmup: numberOpt('warmup', str('warmup'), 2, 0, false),
    concurrency: numberOpt('concurrency', str('concurrency'), 4, 1),
    port: numberOpt('port', str('port'), 18081, 1),
    keep: values.keep === true,
    explain: values.explain === true,
    seed: numberOpt('seed', str('seed'), SEARCH_SEED, 0),
    statePath: path.resolve(str('state') ?? DEFAULT_STATE),
    given,
    token: env.BENCH_TOKEN || undefined,
    databaseUrl,
    adminUrl: env.DATABASE_ADMIN_URL || databaseUrl,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Measurement helpers

const log = makeLog('bench:search');

const describe = (method: string, url: string, res: HttpResponse): string => describeResponse(method, url, res, 300);

function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(0)} KiB`;
}

// ---------------------------------------------------------------------------------------------------------
// Database identity

/** host:port/database, to tell whether a state file belongs to this database. */
function databaseIdentity(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return url;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Dataset state (bench/results/search-state.json, git-ignored)

interface SampledPatient {
  /** patient index within the tenant (the generator's input) */
  i: number;
  id: string;
  family: string;
  mrn: string;
}

interface TenantState {
  index: number;
  slug: string;
  name: string;
  refs: TenantRefs;
  patientsLoaded: number;
  sample: SampledPatient[];
}

interface DatasetState {
  version: 1;
  database: string;
  seed: number;
  requested: { resources: number; tenants: number };
  shape: DatasetShape;
  createdAt: string;
  load: LoadSummary;
  tenants: TenantState[];
}

interface LoadSummary {
  seconds: number;
  tenantCreateSeconds: number;
  bundlesOk: number;
  bundlesFailed: number;
  resourcesCreated: number;
  resourcesPerSec: number;
  bundleLatencyMs: LatencySummary;
  vacuumSeconds?: number;
  errorSamples: string[];
}

function readState(file: string): DatasetState {
  let state: DatasetState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as DatasetState;
  } catch (err) {
    throw new UsageError(`--skip-load needs the state file of a loaded dataset, and ${file} cannot be read (${(err as Error).message}). Load first (without --skip-load).`);
  }
  if (state.version !== 1 || !Array.isArray(state.tenants) || !state.tenants.length) throw new UsageError(`${file} is not a search benchmark state file`);
  return state;
}

function writeState(file: string, state: DatasetState): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state) + '\n');
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------------------
// Loading

interface TxEntry {
  response?: { status?: string; location?: string };
}

/** Ids from a transaction-response, in entry order; throws a description when the answer is not a full success. */
function transactionIds(res: HttpResponse, expected: number): { type: string; id: string }[] {
  if (res.status !== 200) throw new Error(describe('POST', 'transaction', res));
  let parsed: { type?: string; entry?: TxEntry[] };
  try {
    parsed = JSON.parse(res.body);
  } catch {
    throw new Error('transaction answer is not JSON');
  }
  const entries = parsed.entry ?? [];
  if (parsed.type !== 'transaction-response' || entries.length !== expected) {
    throw new Error(`expected a transaction-response with ${expected} entries, got type=${parsed.type} entries=${entries.length}`);
  }
  return entries.map((e, i) => {
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(e.response?.location ?? '');
    if (!m) throw new Error(`entry ${i} has no usable response.location (${JSON.stringify(e.response)})`);
    return { type: m[1], id: m[2] };
  });
}

async function createTenants(o: Options, slugs: { slug: string; name: string }[], env: NodeJS.ProcessEnv, stop: () => string | undefined): Promise<void> {
  let next = 0;
  let done = 0;
  let lastReport = performance.now();
  // CLI processes are heavy (a node process each); at most 4 at a time.
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, 4, slugs.length) }, async () => {
      for (;;) {
        const k = next++;
        if (k >= slugs.length) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        const { slug, name } = slugs[k];
        const r = await runCli(['tenant', 'create', slug, '--name', name], env, 180_000);
        if (r.code !== 0) throw new Error(`tenant create ${slug} failed (exit ${r.code}):\n${r.output.trim()}`);
        done++;
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          log(`  tenants: ${done}/${slugs.length}`);
        }
      }
    }),
  );
}

async function loadDataset(
  o: Options,
  client: HttpClient,
  env: NodeJS.ProcessEnv,
  authorize: (slugs: string[]) => Promise<void>,
  stop: () => string | undefined,
): Promise<DatasetState> {
  const shape = datasetShape(o.resources, o.tenants);
  const tag = randomBytes(2).toString('hex');
  const tenants: TenantState[] = Array.from({ length: o.tenants }, (_, t) => ({
    index: t,
    slug: `bs${tag}-${String(t).padStart(3, '0')}`,
    name: `Search Bench ${tag} Clinic ${t}`,
    refs: { rootOrganization: '', laboratory: '', practitioners: [] },
    patientsLoaded: 0,
    sample: [],
  }));
  const totalPatients = shape.patientsPerTenant * o.tenants;
  log(
    `dataset: ${o.tenants} tenants x (${SETUP_RESOURCES} shared + ${shape.patientsPerTenant} patients x ${PER_PATIENT}) = ${shape.resources.toLocaleString('en-US')} resources ` +
      `(+ ${o.tenants} root Organizations from tenant creation), seed ${o.seed}`,
  );

  // 1. tenants, through the CLI
  const t0 = performance.now();
  log(`creating ${o.tenants} tenants (bs${tag}-000 ...) with the CLI`);
  await createTenants(o, tenants, env, stop);
  const tenantCreateSeconds = (performance.now() - t0) / 1000;
  log(`  ${o.tenants} tenants in ${tenantCreateSeconds.toFixed(1)} s`);
  await authorize(tenants.map((t) => t.slug));

  // 2. per tenant: the shared Practitioners and the laboratory (one transaction each); the first is the warm-up
  const errors = new ErrorSamples(500);
  const lat: number[] = [];
  let nextSetup = 0;
  const tSetup = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, o.tenants) }, async () => {
      for (;;) {
        const t = nextSetup++;
        if (t >= o.tenants) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        const ten = tenants[t];
        const bundle = tenantSetupBundle(t, ten.name, o.seed);
        const res = await client.request('POST', `/fhir/${ten.slug}`, JSON.stringify(bundle), {}, 300_000);
        let ids: { type: string; id: string }[];
        try {
          ids = transactionIds(res, bundle.entry.length);
        } catch (err) {
          throw new Error(`setup bundle of tenant ${ten.slug} failed: ${(err as Error).message}`);
        }
        ten.refs = {
          rootOrganization: ten.slug,
          practitioners: ids.filter((x) => x.type === 'Practitioner').map((x) => x.id),
          laboratory: ids.find((x) => x.type === 'Organization')!.id,
        };
        if (ten.refs.practitioners.length !== PRACTITIONERS_PER_TENANT) throw new Error(`setup bundle of ${ten.slug}: expected ${PRACTITIONERS_PER_TENANT} Practitioners`);
      }
    }),
  );
  log(`  shared Practitioners and laboratories: ${o.tenants} bundles in ${((performance.now() - tSetup) / 1000).toFixed(1)} s`);

  // 3. patients, one transaction Bundle each, interleaved across tenants
  const perTenant = samplePerTenant(o.tenants);
  const step = Math.max(1, Math.floor(shape.patientsPerTenant / perTenant));
  const sampled = (i: number): boolean => i % step === 0 && i / step < perTenant;
  let next = 0;
  let ok = 0;
  let failed = 0;
  let created = o.tenants * SETUP_RESOURCES;
  const tLoad = performance.now();
  let lastReport = tLoad;
  const progress = (): void => {
    const secs = (performance.now() - tLoad) / 1000;
    const rate = (ok * PER_PATIENT) / secs;
    const left = totalPatients - ok - failed;
    const eta = left / ((ok + failed) / secs);
    log(
      `  load: ${(ok + failed).toLocaleString('en-US')}/${totalPatients.toLocaleString('en-US')} patients ` +
        `(${(((ok + failed) / totalPatients) * 100).toFixed(1)}%), ${rate.toFixed(0)} resources/s, ${failed} failed, ` +
        `elapsed ${fmtDuration(secs)}, ETA ${fmtDuration(eta)}`,
    );
  };
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        const k = next++;
        if (k >= totalPatients) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        if (failed >= 5 && ok === 0) throw new Error(`the first patient bundles all failed, giving up:\n  ${errors.samples.join('\n  ')}`);
        const ten = tenants[k % o.tenants];
        const i = Math.floor(k / o.tenants);
        const { bundle, facts } = generatePatient(ten.index, i, ten.refs, o.seed);
        const body = JSON.stringify(bundle);
        let ids: { type: string; id: string }[] | undefined;
        for (let attempt = 1; attempt <= 2 && !ids; attempt++) {
          const start = performance.now();
          try {
            const res = await client.request('POST', `/fhir/${ten.slug}`, body, {}, 300_000);
            ids = transactionIds(res, PER_PATIENT);
            lat.push(performance.now() - start);
          } catch (err) {
            errors.add(`${ten.slug} patient ${i} (attempt ${attempt}): ${err instanceof Error ? err.message : errCode(err)}`);
            // a 4xx will not get better; anything else is tried once more
            if (/-> 4\d\d /.test((err as Error).message ?? '')) break;
          }
        }
        if (!ids) {
          failed++;
          continue;
        }
        ok++;
        created += PER_PATIENT;
        ten.patientsLoaded++;
        if (sampled(i)) ten.sample.push({ i, id: ids.find((x) => x.type === 'Patient')!.id, family: facts.family, mrn: facts.mrn });
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          progress();
        }
      }
    }),
  );
  progress();
  const seconds = (performance.now() - t0) / 1000;
  const loadSeconds = (performance.now() - tLoad) / 1000;
  for (const ten of tenants) ten.sample.sort((a, b) => a.i - b.i);
  return {
    version: 1,
    database: databaseIdentity(o.databaseUrl),
    seed: o.seed,
    requested: { resources: o.resources, tenants: o.tenants },
    shape,
    createdAt: new Date().toISOString(),
    load: {
      seconds: round(seconds, 1),
      tenantCreateSeconds: round(tenantCreateSeconds, 1),
      bundlesOk: ok,
      bundlesFailed: failed,
      resourcesCreated: created,
      resourcesPerSec: round((ok * PER_PATIENT) / loadSeconds, 1),
      bundleLatencyMs: summarize(lat),
      errorSamples: errors.samples,
    },
    tenants,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Storage

const CORE_TABLES = ['resource', 'resource_history'];

interface TableSize {
  table: string;
  rows: number;
  heap: number;
  indexes: number;
  toast: number;
  total: number;
}

interface StorageReport {
  tables: TableSize[];
  resourceTotal: number;
  indexTablesTotal: number;
  ratio: number;
  tenantsInDatabase: number;
}

async function withAdmin<T>(o: Options, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: o.adminUrl });
  c.on('error', (err) => log(`admin connection error: ${err.message}`));
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function indexTableNames(c: pg.Client): Promise<string[]> {
  const r = await c.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() AND c.relname LIKE 'sp\\_%' ORDER BY c.relname`,
  );
  return r.rows.map((x) => x.relname);
}

async function vacuumAnalyze(o: Options): Promise<number> {
  const t0 = performance.now();
  await withAdmin(o, async (c) => {
    for (const t of [...CORE_TABLES, ...(await indexTableNames(c))]) await c.query(`VACUUM (ANALYZE) ${t}`);
  });
  return (performance.now() - t0) / 1000;
}

async function storageReport(o: Options): Promise<StorageReport> {
  return withAdmin(o, async (c) => {
    const names = [...CORE_TABLES, ...(await indexTableNames(c))];
    const r = await c.query<{ relname: string; rows: string; heap: string; indexes: string; total: string }>(
      `SELECT c.relname, greatest(c.reltuples, 0)::bigint::text AS rows, pg_relation_size(c.oid)::text AS heap,
              pg_indexes_size(c.oid)::text AS indexes, pg_total_relation_size(c.oid)::text AS total
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[])`,
      [names],
    );
    const tables = r.rows
      .map((x) => {
        const heap = Number(x.heap);
        const indexes = Number(x.indexes);
        const total = Number(x.total);
        return { table: x.relname, rows: Number(x.rows), heap, indexes, toast: total - heap - indexes, total };
      })
      .sort((a, b) => names.indexOf(a.table) - names.indexOf(b.table));
    const resourceTotal = tables.find((t) => t.table === 'resource')?.total ?? 0;
    const indexTablesTotal = tables.filter((t) => t.table.startsWith('sp_')).reduce((s, t) => s + t.total, 0);
    const tenantsInDatabase = Number((await c.query<{ n: string }>('SELECT count(*)::text AS n FROM tenant')).rows[0].n);
    return { tables, resourceTotal, indexTablesTotal, ratio: resourceTotal ? indexTablesTotal / resourceTotal : NaN, tenantsInDatabase };
  });
}

function printStorage(s: StorageReport, state: DatasetState): void {
  console.log('');
  console.log(`storage (pg_total_relation_size: table + indexes + TOAST; rows = planner estimate):`);
  printTable(
    ['table', 'rows', 'heap', 'indexes', 'toast', 'total'],
    s.tables.map((t) => [t.table, t.rows.toLocaleString('en-US'), fmtBytes(t.heap), fmtBytes(t.indexes), fmtBytes(t.toast), fmtBytes(t.total)]),
  );
  const verdict = s.ratio <= TARGET_STORAGE_RATIO ? 'ok' : 'MISS';
  console.log(
    `index tables (sp_*, with indexes) / resource table (with indexes and TOAST): ${fmtBytes(s.indexTablesTotal)} / ${fmtBytes(s.resourceTotal)} = ` +
      `${s.ratio.toFixed(2)}x   target <= ${TARGET_STORAGE_RATIO}x: ${verdict}`,
  );
  if (s.tenantsInDatabase > state.tenants.length) {
    console.log(`note: the database holds ${s.tenantsInDatabase} tenants, ${state.tenants.length} of them this dataset's; the sizes cover all of them`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The query mix

interface Draw {
  tenant: TenantState;
  type: string;
  params: [string, string][];
  /** full request path; built from type and params when absent */
  path?: string;
}

interface QuerySpec {
  key: string;
  title: string;
  /** the request shape, for the report */
  shape: string;
  draw: (rng: Rng) => Draw;
}

function requestPath(d: Draw): string {
  return d.path ?? `/fhir/${d.tenant.slug}/${d.type}?${new URLSearchParams(d.params).toString()}`;
}

/** The request with its parameters unencoded, for reading. */
function readablePath(d: Draw): string {
  return `/fhir/${d.tenant.slug}/${d.type}?${d.params.map(([k, v]) => `${k}=${v}`).join('&')}`;
}

const DAY = 86_400_000;
const dateOnly = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

class Facts {
  private readonly cache = new Map<string, PatientFacts>();
  constructor(readonly seed: number) {}

  of(t: TenantState, p: SampledPatient): PatientFacts {
    const key = `${t.index}/${p.i}`;
    let f = this.cache.get(key);
    if (!f) {
      f = generatePatient(t.index, p.i, undefined, this.seed).facts;
      this.cache.set(key, f);
    }
    return f;
  }
}

function buildQueries(state: DatasetState, facts: Facts, deepTargets: Draw[], deepShape: string): QuerySpec[] {
  const tenants = state.tenants.filter((t) => t.sample.length);
  const pickPatient = (rng: Rng): { t: TenantState; p: SampledPatient; f: PatientFacts } => {
    const t = rng.pick(tenants);
    const p = rng.pick(t.sample);
    return { t, p, f: facts.of(t, p) };
  };
  const panelCodes = PANELS.flatMap((p) => p.tests.map((t) => t.code));
  return [
    {
      key: 'patient-family',
      title: 'Patient by family name',
      shape: 'Patient?family=<family>',
      draw: (rng) => {
        const { t, p } = pickPatient(rng);
        return { tenant: t, type: 'Patient', params: [['family', p.family]] };
      },
    },
    {
      key: 'patient-identifier',
      title: 'Patient by identifier',
      shape: 'Patient?identifier=<system>|<mrn>',
      draw: (rng) => {
        const { t, p } = pickPatient(rng);
        return { tenant: t, type: 'Patient', params: [['identifier', `${MRN_SYSTEM}|${p.mrn}`]] };
      },
    },
    {
      key: 'observation-patient-code-date',
      title: 'Observation by patient + code + date range',
      shape: 'Observation?patient=Patient/<id>&code=http://loinc.org|<loinc>&date=ge<d1>&date=lt<d1+365d>',
      draw: (rng) => {
        const { t, p, f } = pickPatient(rng);
        const obs = rng.pick(f.observations);
        const from = obs.effective - rng.int(0, 300) * DAY;
        return {
          tenant: t,
          type: 'Observation',
          params: [
            ['patient', `Patient/${p.id}`],
            ['code', `${LOINC}|${obs.code}`],
            ['date', `ge${dateOnly(from)}`],
            ['date', `lt${dateOnly(from + 365 * DAY)}`],
          ],
        };
      },
    },
    {
      key: 'diagnosticreport-patient-category',
      title: 'DiagnosticReport by patient + category, _sort=-date, _include=result',
      shape: 'DiagnosticReport?patient=Patient/<id>&category=<v2-0074>|LAB&_sort=-date&_include=DiagnosticReport:result',
      draw: (rng) => {
        const { t, p } = pickPatient(rng);
        return {
          tenant: t,
          type: 'DiagnosticReport',
          params: [
            ['patient', `Patient/${p.id}`],
            ['category', `${V2_0074}|LAB`],
            ['_sort', '-date'],
            ['_include', 'DiagnosticReport:result'],
          ],
        };
      },
    },
    {
      key: 'encounter-patient',
      title: 'Encounter by patient',
      shape: 'Encounter?patient=Patient/<id>',
      draw: (rng) => {
        const { t, p } = pickPatient(rng);
        return { tenant: t, type: 'Encounter', params: [['patient', `Patient/${p.id}`]] };
      },
    },
    {
      key: 'medicationrequest-active',
      title: 'MedicationRequest active, _count=50',
      shape: 'MedicationRequest?status=active&_count=50',
      draw: (rng) => ({
        tenant: rng.pick(tenants),
        type: 'MedicationRequest',
        params: [
          ['status', 'active'],
          ['_count', '50'],
        ],
      }),
    },
    {
      key: 'chain-subject-family',
      title: 'Chained: Observation by subject family + code',
      shape: 'Observation?subject:Patient.family=<family>&code=http://loinc.org|<loinc>',
      draw: (rng) => {
        const { t, p } = pickPatient(rng);
        return {
          tenant: t,
          type: 'Observation',
          params: [
            ['subject:Patient.family', p.family],
            ['code', `${LOINC}|${rng.pick(panelCodes)}`],
          ],
        };
      },
    },
    {
      key: 'has-observation-code',
      title: '_has: Patient with an Observation of a code, by family',
      shape: 'Patient?_has:Observation:subject:code=http://loinc.org|<loinc>&family=<family>',
      draw: (rng) => {
        const { t, p, f } = pickPatient(rng);
        // the patient's own extra test: at least this patient matches
        const code = f.observations[f.observations.length - 1].code;
        return {
          tenant: t,
          type: 'Patient',
          params: [
            ['_has:Observation:subject:code', `${LOINC}|${code}`],
            ['family', p.family],
          ],
        };
      },
    },
    {
      key: 'deep-page-50',
      title: `Page ${DEEP_PAGE} of a large result (next link)`,
      shape: deepShape,
      draw: (rng) => rng.pick(deepTargets),
    },
  ];
}

/** Follows `next` links from page 1 to page DEEP_PAGE; returns the page's path and params, or why it could not. */
async function walkToDeepPage(client: HttpClient, tenant: TenantState, params: [string, string][]): Promise<Draw | string> {
  let url = `/fhir/${tenant.slug}/Observation?${new URLSearchParams(params).toString()}`;
  for (let page = 1; page < DEEP_PAGE; page++) {
    const res = await client.request('GET', url);
    if (res.status !== 200) return describe('GET', url, res);
    const bundle = JSON.parse(res.body) as { link?: { relation: string; url: string }[] };
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    if (!next) return `the result ends at page ${page}`;
    const u = new URL(next, 'http://localhost');
    url = u.pathname + u.search;
  }
  const u = new URL(url, 'http://localhost');
  return { tenant, type: 'Observation', params: [...u.searchParams] as [string, string][], path: url };
}

async function prepareDeepTargets(client: HttpClient, state: DatasetState, stop: () => string | undefined): Promise<{ targets: Draw[]; shape: string; note?: string }> {
  const byCode: [string, string][] = [
    ['code', `${LOINC}|${COMMON_LOINC}`],
    ['_count', String(DEEP_COUNT)],
  ];
  const byCategory: [string, string][] = [
    ['category', `${OBS_CATEGORY}|laboratory`],
    ['_count', String(DEEP_COUNT)],
  ];
  const n = Math.min(DEEP_TARGETS, state.tenants.length);
  const chosen = Array.from({ length: n }, (_, k) => state.tenants[Math.floor((k * state.tenants.length) / n)]);
  let params = byCode;
  let shape = `Observation?code=http://loinc.org|${COMMON_LOINC}&_count=${DEEP_COUNT}, page ${DEEP_PAGE} via next links`;
  let note: string | undefined;
  const targets: Draw[] = [];
  for (const t of chosen) {
    const reason = stop();
    if (reason) throw new Error(reason);
    let got = await walkToDeepPage(client, t, params);
    if (typeof got === 'string' && params === byCode && targets.length === 0 && /ends at page/.test(got)) {
      note = `code ${COMMON_LOINC} gives fewer than ${DEEP_PAGE} pages per tenant at this size (${got}); using category=laboratory instead`;
      params = byCategory;
      shape = `Observation?category=<observation-category>|laboratory&_count=${DEEP_COUNT}, page ${DEEP_PAGE} via next links`;
      got = await walkToDeepPage(client, t, params);
    }
    if (typeof got === 'string') throw new Error(`cannot reach page ${DEEP_PAGE} in tenant ${t.slug}: ${got}`);
    targets.push(got);
  }
  return { targets, shape, note };
}

interface QueryResult {
  key: string;
  title: string;
  shape: string;
  example: string;
  requests: number;
  ok: number;
  errors: number;
  seconds: number;
  perSec: number;
  latencyMs: LatencySummary;
  meanResults: number;
  meanIncluded: number;
  statuses: Record<string, number>;
  errorSamples: string[];
}

async function measure(
  q: QuerySpec,
  o: Options,
  client: HttpClient,
  seconds: number,
  rngLabel: string,
  stop: () => string | undefined,
  sink?: number[],
): Promise<QueryResult> {
  const rng = new Rng(`${rngLabel}/${q.key}/${o.seed}`);
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  const errors = new ErrorSamples(500);
  let ok = 0;
  let bad = 0;
  let results = 0;
  let included = 0;
  let example = '';
  const elapsed = await timed(
    o.concurrency,
    seconds,
    async () => {
      const d = q.draw(rng);
      const url = requestPath(d);
      example ||= url;
      const start = performance.now();
      let res: HttpResponse;
      try {
        res = await client.request('GET', url);
      } catch (err) {
        bad++;
        statuses[errCode(err)] = (statuses[errCode(err)] ?? 0) + 1;
        errors.add(`GET ${url}: ${errCode(err)}`);
        return;
      }
      const ms = performance.now() - start;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      if (res.status !== 200) {
        bad++;
        errors.add(describe('GET', url, res));
        return;
      }
      let bundle: { resourceType?: string; entry?: { search?: { mode?: string }; resource?: { issue?: { diagnostics?: string }[] } }[] };
      try {
        bundle = JSON.parse(res.body);
      } catch {
        bad++;
        errors.add(`GET ${url}: answer is not JSON`);
        return;
      }
      const entries = bundle.entry ?? [];
      const outcome = entries.find((e) => e.search?.mode === 'outcome');
      if (bundle.resourceType !== 'Bundle' || outcome) {
        bad++;
        errors.add(`GET ${url}: ${outcome ? `parameters ignored: ${JSON.stringify(outcome.resource?.issue?.map((i) => i.diagnostics))}` : 'not a Bundle'}`);
        return;
      }
      ok++;
      lat.push(ms);
      for (const e of entries) {
        if (e.search?.mode === 'include') included++;
        else results++;
      }
    },
    stop,
  );
  if (sink) for (const ms of lat) sink.push(ms);
  return {
    key: q.key,
    title: q.title,
    shape: q.shape,
    example,
    requests: ok + bad,
    ok,
    errors: bad,
    seconds: round(elapsed, 3),
    perSec: round(ok / elapsed, 1),
    latencyMs: summarize(lat),
    meanResults: ok ? round(results / ok, 2) : NaN,
    meanIncluded: ok ? round(included / ok, 2) : NaN,
    statuses,
    errorSamples: errors.samples,
  };
}

// ---------------------------------------------------------------------------------------------------------
// EXPLAIN: the SQL the server runs, from the planner and SQL compiler themselves

interface ExplainedStatement {
  label: string;
  sql: string;
  params: unknown[];
  plan: string;
}

interface Explained {
  key: string;
  title: string;
  request: string;
  statements: ExplainedStatement[];
}

async function explainQuery(o: Options, registry: SearchParamRegistry, baseOrigin: string, q: QuerySpec, d: Draw): Promise<Explained> {
  return withAdmin(o, async (c) => {
    await c.query(`SET ROLE fhir_app`);
    await c.query(`SELECT set_config('app.tenant_id', $1, false)`, [d.tenant.slug]);
    const recorded: { label: string; sql: string; params: unknown[] }[] = [];
    let label = 'searchPage';
    const recorder: Queryable = {
      query: (async (text: string, params?: unknown[]) => {
        recorded.push({ label, sql: text, params: params ?? [] });
        return c.query(text, params);
      }) as Queryable['query'],
    };
    const plan = planSearch(registry, d.type, { strict: false, params: d.params });
    if (plan.ignored.length) throw new Error(`the planner ignores ${plan.ignored.join(', ')} in ${requestPath(d)}`);
    const baseUrl = `${baseOrigin}/fhir/${d.tenant.slug}`;
    const page = await searchPage(recorder, d.tenant.slug, baseUrl, plan, plan.backwards === true);
    if (plan.include.length && page.rows.length) {
      label = 'loadIncludes';
      await loadIncludes(recorder, d.tenant.slug, plan.include, page.rows);
    }
    const statements: ExplainedStatement[] = [];
    for (const r of recorded) {
      const e = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${r.sql}`, r.params);
      statements.push({ ...r, plan: e.rows.map((x) => x['QUERY PLAN']).join('\n') });
    }
    await c.query('RESET ROLE');
    return { key: q.key, title: q.title, request: `GET ${readablePath(d)}`, statements };
  });
}

function compactSql(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim();
}

function paramText(params: unknown[]): string {
  return params.map((p, i) => `$${i + 1} = ${JSON.stringify(p)}`).join(', ');
}

function printExplained(e: Explained): void {
  console.log(`request: ${e.request}`);
  for (const s of e.statements) {
    console.log(`\n-- ${s.label}: ${compactSql(s.sql)}`);
    console.log(`-- params: ${paramText(s.params)}`);
    console.log(s.plan);
  }
}

function explainDoc(
  o: Options,
  state: DatasetState,
  results: QueryResult[],
  explained: Explained[],
  pgVersion: string,
  storage: StorageReport | undefined,
  when: Date,
): string {
  const lines: string[] = [];
  const s = state.shape;
  lines.push('# Search query plans');
  lines.push('');
  lines.push(
    `Generated by \`npm run bench:search -- --explain\` (bench/search.ts) on ${when.toISOString().slice(0, 16).replace('T', ' ')} UTC. ` +
      'Do not edit by hand: the benchmark rewrites this file.',
  );
  lines.push('');
  lines.push(
    `- Dataset: ${state.load.resourcesCreated.toLocaleString('en-US')} resources in ${state.tenants.length} tenants ` +
      `(${s.patientsPerTenant} patients x ${PER_PATIENT} resources + ${SETUP_RESOURCES} shared per tenant), seed ${state.seed}, loaded ${state.createdAt.slice(0, 10)}`,
  );
  lines.push(`- Database: ${pgVersion}`);
  lines.push(`- Machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'CPU'}, ${round(os.totalmem() / 2 ** 30, 1)} GiB; node ${process.version}`);
  lines.push(`- Measurement: ${o.concurrency} clients, ${o.seconds} s per query after ${o.warmup} s of warm-up; target p95 <= ${TARGET_P95_MS} ms`);
  if (storage) lines.push(`- Storage: sp_* index tables ${fmtBytes(storage.indexTablesTotal)} / resource table ${fmtBytes(storage.resourceTotal)} = ${storage.ratio.toFixed(2)}x (target <= ${TARGET_STORAGE_RATIO}x)`);
  lines.push('');
  lines.push('The SQL is what the server runs: `planSearch` (src/search/plan.ts) and `searchPage` / `loadIncludes`');
  lines.push('(src/store/search-sql.ts) are called directly with a connection that records each statement, then each one is run');
  lines.push("again under `EXPLAIN (ANALYZE, BUFFERS)` as `fhir_app` with `app.tenant_id` set (row-level security applies).");
  lines.push('Queries are listed slowest first (by p95). The request shown is one draw of the query\'s random parameters.');
  lines.push('');
  lines.push('| # | query | req/s | p50 ms | p95 ms | p99 ms | mean results | errors | p95 <= 20 ms |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---|');
  const order = explained.map((e) => results.find((r) => r.key === e.key)!);
  order.forEach((r, i) => {
    lines.push(
      `| ${i + 1} | ${r.title} | ${r.perSec} | ${fmtMs(r.latencyMs.p50)} | ${fmtMs(r.latencyMs.p95)} | ${fmtMs(r.latencyMs.p99)} | ${r.meanResults} | ${r.errors} | ${r.latencyMs.p95 <= TARGET_P95_MS ? 'ok' : '**miss**'} |`,
    );
  });
  explained.forEach((e, i) => {
    const r = order[i];
    lines.push('');
    lines.push(`## ${i + 1}. ${e.title} (p95 ${fmtMs(r.latencyMs.p95)} ms)`);
    lines.push('');
    lines.push(`Shape: \`${r.shape}\``);
    lines.push('');
    lines.push(`Request: \`${e.request}\``);
    for (const st of e.statements) {
      lines.push('');
      lines.push(`${st.label}, params: \`${paramText(st.params).replace(/`/g, "'")}\``);
      lines.push('');
      lines.push('```sql');
      lines.push(compactSql(st.sql));
      lines.push('```');
      lines.push('');
      lines.push('```');
      lines.push(st.plan);
      lines.push('```');
    }
  });
  return lines.join('\n') + '\n';
}

async function postgresVersion(o: Options): Promise<string> {
  try {
    return await withAdmin(o, async (c) => (await c.query<{ v: string }>('SELECT version() AS v')).rows[0].v.split(',')[0]);
  } catch (err) {
    return `(unavailable: ${(err as Error).message})`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const probe = generatePatient(0, 0, undefined, o.seed).bundle;
  const problems = checkPatientBundle(probe);
  if (problems.length) throw new Error(`the data generator is broken: ${problems.join('; ')}`);

  const startedAt = new Date();
  const { cleanups, cleanup, interrupted } = lifecycle(log);

  let keepLog = o.keep;
  try {
    let state: DatasetState | undefined;
    if (o.skipLoad) {
      state = readState(o.statePath);
      const here = databaseIdentity(o.databaseUrl);
      if (state.database !== here) {
        throw new UsageError(`${o.statePath} describes a dataset in ${state.database}, but DATABASE_URL is ${here}; load again or point DATABASE_URL there`);
      }
      for (const k of ['resources', 'tenants', 'seed'] as const) {
        if (o.given.has(k)) log(`--skip-load: ignoring --${k}; the dataset in ${path.relative(process.cwd(), o.statePath)} is used as loaded`);
      }
      o.seed = state.seed;
    }
    if (await portInUse(o.port)) throw new Error(`port ${o.port} is already in use; pick another with --port`);

    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-search-'));
    const logPath = path.join(workDir, 'server.log');
    cleanups.push(async () => {
      if (keepLog) log(`server log kept in ${logPath}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(workDir, 'data'),
      LOG_LEVEL: 'warn',
      DEMO_TENANT: 'false',
      DATABASE_URL: o.databaseUrl,
    };
    const baseOrigin = (process.env.PUBLIC_BASE_URL || `http://localhost:${o.port}`).replace(/\/+$/, '');
    const pgVersion = await postgresVersion(o);
    log(
      `database ${redactUrl(o.databaseUrl)} (${pgVersion}); ` +
        (o.skipLoad ? `reusing the dataset in ${path.relative(process.cwd(), o.statePath)}` : `resources=${o.resources} tenants=${o.tenants}`) +
        `; concurrency=${o.concurrency} seconds=${o.seconds} warmup=${o.warmup} port=${o.port}`,
    );

    const t0 = performance.now();
    const server = ServerProcess.spawn(env, logPath, o.keep, { tailLines: 30 });
    cleanups.push(async () => {
      if (o.keep && !server.exited) {
        log(`--keep: server still running (pid ${server.child.pid}) at http://127.0.0.1:${o.port}/fhir/<tenant>; log ${logPath}`);
        server.child.unref();
        return;
      }
      await server.stop();
    });
    await server.waitReady(o.port, 180_000, interrupted);
    log(`server ready in ${Math.round(performance.now() - t0)} ms (pid ${server.child.pid}, log ${logPath})`);
    const stop = (): string | undefined => interrupted() ?? (server.exited ? `server stopped (${server.exitInfo}); log ${logPath}:\n${tail(logPath, 30)}` : undefined);
    // Real access tokens (auth is on, as shipped): BENCH_TOKEN for every request, or one per tenant, minted for its
    // operator client bench-op-<tenant> (registered on first use); tokens are bound to their tenant's base.
    const tokens = new Map<string, string>();
    const client = new HttpClient(o.port, '', (p) => o.token ?? tokens.get(p.split('/')[2] ?? ''), o.concurrency + 1);
    cleanups.push(async () => client.close());
    const authorize = async (slugs: string[]): Promise<void> => {
      if (o.token) return;
      const t0 = performance.now();
      const minted = await operatorTokens(slugs, env);
      for (const slug of slugs) tokens.set(slug, minted[slug].tokens[0]);
      log(`  access tokens for ${slugs.length} tenants (operator clients bench-op-<tenant>, scope ${minted[slugs[0]].scope}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    };

    // Load, or check the recorded dataset is there
    if (!state) {
      state = await loadDataset(o, client, env, authorize, stop);
      writeState(o.statePath, state);
      log(`state written to ${path.relative(process.cwd(), o.statePath)}`);
      log('VACUUM (ANALYZE) of resource, resource_history and the sp_* tables');
      try {
        state.load.vacuumSeconds = round(await vacuumAnalyze(o), 1);
        writeState(o.statePath, state);
      } catch (err) {
        log(`  VACUUM ANALYZE failed (${(err as Error).message}); set DATABASE_ADMIN_URL to the tables' owner. Continuing without it.`);
      }
      const l = state.load;
      console.log('');
      console.log(
        `load: ${l.resourcesCreated.toLocaleString('en-US')} resources (${l.bundlesOk} patient bundles ok, ${l.bundlesFailed} failed) in ${fmtDuration(l.seconds)} ` +
          `(tenant creation ${fmtDuration(l.tenantCreateSeconds)}); ${l.resourcesPerSec} resources/s while posting patients; ` +
          `bundle p50/p95/p99 ${fmtMs(l.bundleLatencyMs.p50)} / ${fmtMs(l.bundleLatencyMs.p95)} / ${fmtMs(l.bundleLatencyMs.p99)} ms; VACUUM ANALYZE ${l.vacuumSeconds ?? '-'} s`,
      );
      if (l.errorSamples.length) console.log(`load errors (first ${l.errorSamples.length}):\n  ${l.errorSamples.join('\n  ')}`);
    } else {
      await authorize(state.tenants.map((t) => t.slug));
      const t = state.tenants[0];
      const res = await client.request('GET', `/fhir/${t.slug}/Patient/${t.sample[0]?.id}`);
      if (res.status !== 200) throw new Error(`the dataset in ${o.statePath} is not in this database (${describe('GET', `/fhir/${t.slug}/Patient/${t.sample[0]?.id}`, res)}); load it again`);
      log(`dataset: ${state.load.resourcesCreated.toLocaleString('en-US')} resources in ${state.tenants.length} tenants, loaded ${state.createdAt}`);
    }

    let storage: StorageReport | undefined;
    try {
      storage = await storageReport(o);
      printStorage(storage, state);
    } catch (err) {
      log(`storage report failed: ${(err as Error).message}`);
    }

    const resultsFile = path.join(RESULTS_DIR, `search-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const save = (extra: Record<string, unknown>): void => {
      fs.mkdirSync(RESULTS_DIR, { recursive: true });
      const out = {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        options: { resources: state!.requested.resources, tenants: state!.tenants.length, concurrency: o.concurrency, seconds: o.seconds, warmup: o.warmup, seed: o.seed, skipLoad: o.skipLoad },
        environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30, 1), database: redactUrl(o.databaseUrl), postgres: pgVersion },
        dataset: { shape: state!.shape, load: state!.load, createdAt: state!.createdAt },
        storage,
        ...extra,
      };
      fs.writeFileSync(resultsFile, JSON.stringify(out, null, 2) + '\n');
      console.log(`\nresults: ${path.relative(process.cwd(), resultsFile)}`);
    };
    if (o.loadOnly) {
      save({});
      return state.load.bundlesFailed ? 1 : 0;
    }

    // Queries
    const facts = new Facts(o.seed);
    log(`preparing page-${DEEP_PAGE} links in ${Math.min(DEEP_TARGETS, state.tenants.length)} tenants`);
    const deep = await prepareDeepTargets(client, state, stop);
    if (deep.note) log(`  note: ${deep.note}`);
    const queries = buildQueries(state, facts, deep.targets, deep.shape);
    const results: QueryResult[] = [];
    // every successful request's latency, for the total's percentiles (each request weighs the same)
    const all: number[] = [];
    for (const q of queries) {
      if (o.warmup > 0) await measure(q, o, client, o.warmup, 'warmup', stop);
      const r = await measure(q, o, client, o.seconds, 'measure', stop, all);
      results.push(r);
      log(`  ${q.key}: ${r.perSec} req/s, p95 ${fmtMs(r.latencyMs.p95)} ms, ${r.meanResults} results, ${r.errors} errors`);
    }

    let totalOk = 0;
    let totalErr = 0;
    let totalSeconds = 0;
    for (const r of results) {
      totalOk += r.ok;
      totalErr += r.errors;
      totalSeconds += r.seconds;
    }
    const totalLat = summarize(all);

    console.log('');
    console.log(
      `search benchmark: ${state.load.resourcesCreated.toLocaleString('en-US')} resources, ${state.tenants.length} tenants (${state.shape.patientsPerTenant} patients each); ` +
        `${o.concurrency} clients, ${o.seconds} s per query; ${pgVersion}; node ${process.version}; ${os.cpus().length} CPUs`,
    );
    console.log('');
    const met = results.filter((r) => r.latencyMs.p95 <= TARGET_P95_MS).length;
    printTable(
      ['query', 'req/s', 'p50 ms', 'p95 ms', 'p99 ms', 'mean results', 'errors', `target p95 <= ${TARGET_P95_MS} ms`],
      [
        ...results.map((r) => [
          r.key,
          r.perSec.toFixed(1),
          fmtMs(r.latencyMs.p50),
          fmtMs(r.latencyMs.p95),
          fmtMs(r.latencyMs.p99),
          Number.isFinite(r.meanResults) ? String(r.meanResults) + (r.meanIncluded ? ` (+${r.meanIncluded} incl.)` : '') : '-',
          String(r.errors),
          r.ok === 0 ? 'MISS (no answers)' : r.latencyMs.p95 <= TARGET_P95_MS ? 'ok' : 'MISS',
        ]),
        [
          'total',
          (totalOk / totalSeconds).toFixed(1),
          fmtMs(totalLat.p50),
          fmtMs(totalLat.p95),
          fmtMs(totalLat.p99),
          '-',
          String(totalErr),
          `${met}/${results.length} ok`,
        ],
      ],
    );
    console.log('');
    for (const q of queries) console.log(`${q.key}: ${q.shape}`);
    if (deep.note) console.log(`note: ${deep.note}`);
    for (const r of results) if (r.errorSamples.length) console.log(`\n${r.key} errors (first ${r.errorSamples.length}):\n  ${r.errorSamples.join('\n  ')}`);

    // EXPLAIN: the slowest query always; every query with --explain
    const ranked = results.filter((r) => r.ok > 0).sort((a, b) => b.latencyMs.p95 - a.latencyMs.p95);
    const registry = new SearchParamRegistry();
    const explainDraw = (q: QuerySpec): Draw => q.draw(new Rng(`explain/${q.key}/${o.seed}`));
    const explained: Explained[] = [];
    for (const r of o.explain ? ranked : ranked.slice(0, 1)) {
      const q = queries.find((x) => x.key === r.key)!;
      try {
        explained.push(await explainQuery(o, registry, baseOrigin, q, explainDraw(q)));
      } catch (err) {
        log(`EXPLAIN of ${q.key} failed: ${(err as Error).message}`);
      }
    }
    if (explained[0]) {
      console.log('');
      console.log(`EXPLAIN (ANALYZE, BUFFERS) of the slowest query by p95: ${explained[0].key} (${fmtMs(ranked[0].latencyMs.p95)} ms)`);
      printExplained(explained[0]);
    }
    if (o.explain) {
      fs.mkdirSync(path.dirname(EXPLAIN_DOC), { recursive: true });
      fs.writeFileSync(EXPLAIN_DOC, explainDoc(o, state, results, explained, pgVersion, storage, new Date()));
      console.log(`\nplans of all ${explained.length} queries: ${path.relative(process.cwd(), EXPLAIN_DOC)}`);
    }

    save({ deepPage: { shape: deep.shape, note: deep.note, targets: deep.targets.length }, queries: results, total: { ok: totalOk, errors: totalErr, perSec: round(totalOk / totalSeconds, 1), latencyMs: totalLat }, explained });
    const failed = totalErr > 0 || state.load.bundlesFailed > 0;
    if (failed) keepLog = true;
    return failed ? 1 : 0;
  } catch (err) {
    const why = interrupted();
    if (why) throw new Interrupted(why);
    keepLog = true;
    throw err;
  } finally {
    await cleanup();
  }
}

runMain(main, 'bench:search', USAGE);
