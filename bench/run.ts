// The project's benchmark: starts the server, creates a scratch tenant, and measures ingest (transaction
// bundles), read by id, optimistic-locking updates (plus a lost-update check under contention), and, with
// DATABASE_URL, the raw PostgreSQL ceiling for the same work on the same database.
//
//   npm run bench -- [--patients N] [-c C] [--seconds S] [--port P] [--hot K] [--seed X] [--keep]
//
// See bench/README.md for what each figure means.

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
  ServerProcess,
  UsageError,
  Interrupted,
  describeResponse,
  errCode,
  fmtMs,
  lifecycle,
  makeLog,
  numberOpt,
  parseLocation,
  operatorTokens,
  portInUse,
  printTable,
  redactUrl,
  round,
  runCli,
  runMain,
  sleep,
  summarize,
  tail,
  timed,
  type HttpResponse,
  type LatencySummary,
} from './common.js';
import { DEFAULT_SEED, ENTRIES_PER_BUNDLE, Rng, checkBundle, fhirDateTime, patientBundle, resolveBundle, type Resource } from './synth.js';

const TOUCH_EXT = 'urn:bench:touch';
const COUNTER_EXT = 'urn:bench:counter';
const HOT_TARGETS = 5;

// ---------------------------------------------------------------------------------------------------------
// Options

interface Options {
  patients: number;
  concurrency: number;
  seconds: number;
  port: number;
  keep: boolean;
  hot: number;
  seed: number;
  token: string | undefined;
  databaseUrl: string | undefined;
}

const USAGE = `usage: npm run bench -- [options]

  --patients N        synthetic patients (transaction bundles of ${ENTRIES_PER_BUNDLE} resources) to ingest (env BENCH_PATIENTS, default 300)
  -c, --concurrency C concurrent clients in every phase (env BENCH_CONCURRENCY, default 4)
  --seconds S         length of each timed phase (env BENCH_SECONDS, default 15)
  --port P            port for the server under test (env BENCH_PORT, default 18080)
  --hot K             read-modify-write increments per client in the lost-update check (env BENCH_HOT, default 25)
  --seed X            data generator seed (env BENCH_SEED, default ${DEFAULT_SEED})
  --keep              leave the server running at the end (env BENCH_KEEP=1)

  DATABASE_URL        PostgreSQL to run against (also enables the raw PostgreSQL ceiling); unset = embedded PGlite
  BENCH_TOKEN         sent as "Authorization: Bearer <token>"; unset = a token minted for the scratch tenant's
                      operator client bench-op-<tenant> (scope system/*.cruds)`;

function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        patients: { type: 'string' },
        concurrency: { type: 'string', short: 'c' },
        seconds: { type: 'string' },
        port: { type: 'string' },
        hot: { type: 'string' },
        seed: { type: 'string' },
        keep: { type: 'boolean' },
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
  const keepEnv = env.BENCH_KEEP ?? '';
  return {
    patients: numberOpt('patients', str('patients') ?? env.BENCH_PATIENTS, 300, 1),
    concurrency: numberOpt('concurrency', str('concurrency') ?? env.BENCH_CONCURRENCY, 4, 1),
    seconds: numberOpt('seconds', str('seconds') ?? env.BENCH_SECONDS, 15, 0.1, false),
    port: numberOpt('port', str('port') ?? env.BENCH_PORT, 18080, 1),
    hot: numberOpt('hot', str('hot') ?? env.BENCH_HOT, 25, 1),
    seed: numberOpt('seed', str('seed') ?? env.BENCH_SEED, DEFAULT_SEED, 0),
    keep: values.keep === true || /^(1|true|yes|on)$/i.test(keepEnv),
    token: env.BENCH_TOKEN || undefined,
    databaseUrl: env.DATABASE_URL || undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Measurement helpers

const log = makeLog('bench');

class Latencies {
  private values: number[] = [];

  add(ms: number): void {
    this.values.push(ms);
  }

  get count(): number {
    return this.values.length;
  }

  summary(): LatencySummary {
    return summarize(this.values);
  }
}

/** Counts of outcomes by key (HTTP status, error code). */
class Tally {
  readonly counts: Record<string, number> = {};
  add(key: string | number): void {
    const k = String(key);
    this.counts[k] = (this.counts[k] ?? 0) + 1;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Locations, versions and extensions

function versionOf(resource: Resource, res: HttpResponse): string | undefined {
  const meta = resource.meta as { versionId?: string } | undefined;
  if (meta && typeof meta.versionId === 'string') return meta.versionId;
  const etag = res.headers.etag;
  const m = etag ? /^(?:W\/)?"([^"]+)"$/.exec(etag) : null;
  return m ? m[1] : undefined;
}

function getExtInt(resource: Resource, url: string): number {
  const ext = resource.extension as { url: string; valueInteger?: number }[] | undefined;
  const found = ext?.find((e) => e.url === url);
  return typeof found?.valueInteger === 'number' ? found.valueInteger : 0;
}

function setExtInt(resource: Resource, url: string, value: number): void {
  const ext = ((resource.extension as { url: string }[] | undefined) ?? []).filter((e) => e.url !== url);
  ext.push({ url, valueInteger: value } as { url: string });
  resource.extension = ext as unknown as Resource['extension'];
}

// ---------------------------------------------------------------------------------------------------------
// Server phases

interface Ref {
  type: string;
  id: string;
}

interface IngestResult {
  bundles: number;
  bundlesOk: number;
  bundlesFailed: number;
  resources: number;
  seconds: number;
  resourcesPerSec: number;
  bundlesPerSec: number;
  latencyMs: LatencySummary;
  statuses: Record<string, number>;
  errorSamples: string[];
}

async function serverIngest(o: Options, client: HttpClient, refs: Ref[], patients: Ref[], stop: () => string | undefined): Promise<IngestResult> {
  const lat = new Latencies();
  const statuses = new Tally();
  const errors = new ErrorSamples();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let resources = 0;
  let lastReport = performance.now();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= o.patients) return;
        const reason = stop();
        if (reason) throw new Error(reason);
        if (failed >= 5 && ok === 0) throw new Error(`ingest: the first bundles all failed, giving up:\n  ${errors.samples.join('\n  ')}`);
        const body = JSON.stringify(patientBundle(i, o.seed));
        const start = performance.now();
        let res: HttpResponse;
        try {
          res = await client.request('POST', '', body, {}, 300_000);
        } catch (err) {
          failed++;
          statuses.add(errCode(err));
          errors.add(`POST bundle ${i}: ${errCode(err)}`);
          continue;
        }
        const ms = performance.now() - start;
        statuses.add(res.status);
        if (res.status !== 200) {
          failed++;
          errors.add(describeResponse('POST', `bundle ${i}`, res));
          continue;
        }
        let parsed: { resourceType?: string; type?: string; entry?: { response?: { status?: string; location?: string } }[] };
        try {
          parsed = JSON.parse(res.body);
        } catch {
          failed++;
          errors.add(`POST bundle ${i}: response is not JSON`);
          continue;
        }
        const entries = parsed.entry ?? [];
        if (parsed.type !== 'transaction-response' || entries.length !== ENTRIES_PER_BUNDLE) {
          failed++;
          errors.add(`POST bundle ${i}: expected a transaction-response with ${ENTRIES_PER_BUNDLE} entries, got type=${parsed.type} entries=${entries.length}`);
          continue;
        }
        const got: Ref[] = [];
        for (const e of entries) {
          const loc = e.response?.location ? parseLocation(e.response.location) : undefined;
          if (loc) got.push({ type: loc.type, id: loc.id });
        }
        if (got.length !== ENTRIES_PER_BUNDLE) {
          failed++;
          errors.add(`POST bundle ${i}: only ${got.length} of ${ENTRIES_PER_BUNDLE} entries have a parseable response.location (first: ${JSON.stringify(entries[0]?.response)})`);
          continue;
        }
        lat.add(ms);
        ok++;
        resources += got.length;
        for (const r of got) {
          refs.push(r);
          if (r.type === 'Patient') patients.push(r);
        }
        if (performance.now() - lastReport > 5000) {
          lastReport = performance.now();
          log(`  ingest: ${ok + failed}/${o.patients} bundles`);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return {
    bundles: o.patients,
    bundlesOk: ok,
    bundlesFailed: failed,
    resources,
    seconds: round(seconds, 3),
    resourcesPerSec: round(resources / seconds, 1),
    bundlesPerSec: round(ok / seconds, 2),
    latencyMs: lat.summary(),
    statuses: statuses.counts,
    errorSamples: errors.samples,
  };
}

interface ReadResult {
  requests: number;
  ok: number;
  errors: number;
  seconds: number;
  perSec: number;
  latencyMs: LatencySummary;
  statuses: Record<string, number>;
  errorSamples: string[];
}

/** One request of a timed phase, and the status that counts as success. */
interface PhaseRequest {
  method: string;
  url: string;
  body?: string;
  headers?: Record<string, string>;
  okStatus: number;
}

/** A timed phase of independent requests: `next` says what each one is. */
async function serverRequests(o: Options, client: HttpClient, next: () => PhaseRequest, stop: () => string | undefined): Promise<ReadResult> {
  const lat = new Latencies();
  const statuses = new Tally();
  const errors = new ErrorSamples();
  let ok = 0;
  let bad = 0;
  const seconds = await timed(
    o.concurrency,
    o.seconds,
    async () => {
      const r = next();
      const start = performance.now();
      try {
        const res = await client.request(r.method, r.url, r.body, r.headers);
        const ms = performance.now() - start;
        statuses.add(res.status);
        if (res.status === r.okStatus) {
          ok++;
          lat.add(ms);
        } else {
          bad++;
          errors.add(describeResponse(r.method, r.url, res));
        }
      } catch (err) {
        bad++;
        statuses.add(errCode(err));
        errors.add(`${r.method} ${r.url}: ${errCode(err)}`);
      }
    },
    stop,
  );
  return {
    requests: ok + bad,
    ok,
    errors: bad,
    seconds: round(seconds, 3),
    perSec: round(ok / seconds, 1),
    latencyMs: lat.summary(),
    statuses: statuses.counts,
    errorSamples: errors.samples,
  };
}

function serverRead(o: Options, client: HttpClient, refs: Ref[], stop: () => string | undefined): Promise<ReadResult> {
  const rng = new Rng(`read/${o.seed}`);
  return serverRequests(
    o,
    client,
    () => {
      const r = rng.pick(refs);
      return { method: 'GET', url: `/${r.type}/${r.id}`, okStatus: 200 };
    },
    stop,
  );
}

/**
 * Creates of new Patients, plain or conditional (If-None-Exist on an identifier no resource has yet, so every one
 * creates): the difference is what a conditional create costs (a search, and the re-check under a per-type lock).
 */
function serverCreate(o: Options, client: HttpClient, conditional: boolean, stop: () => string | undefined): Promise<ReadResult> {
  const run = randomBytes(4).toString('hex');
  let n = 0;
  return serverRequests(
    o,
    client,
    () => {
      const value = `${run}-${conditional ? 'c' : 'p'}-${n++}`;
      const body = JSON.stringify({ resourceType: 'Patient', identifier: [{ system: 'urn:bench:create', value }], name: [{ family: `Create${n}` }], gender: 'unknown' });
      const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
      if (conditional) headers['if-none-exist'] = `identifier=urn:bench:create|${value}`;
      return { method: 'POST', url: '/Patient', body, headers, okStatus: 201 };
    },
    stop,
  );
}

interface UpdateResult {
  attempts: number;
  updated: number;
  conflicts412: number;
  otherErrors: number;
  seconds: number;
  perSec: number;
  /** GET + PUT, successful updates only. */
  cycleLatencyMs: LatencySummary;
  putLatencyMs: LatencySummary;
  statuses: Record<string, number>;
  errorSamples: string[];
}

async function serverUpdate(o: Options, client: HttpClient, refs: Ref[], stop: () => string | undefined): Promise<UpdateResult> {
  const rng = new Rng(`update/${o.seed}`);
  const cycle = new Latencies();
  const put = new Latencies();
  const statuses = new Tally();
  const errors = new ErrorSamples();
  let attempts = 0;
  let updated = 0;
  let conflicts = 0;
  let other = 0;
  const seconds = await timed(
    o.concurrency,
    o.seconds,
    async () => {
      const r = rng.pick(refs);
      const url = `/${r.type}/${r.id}`;
      attempts++;
      const start = performance.now();
      try {
        const got = await client.request('GET', url);
        if (got.status !== 200) {
          other++;
          statuses.add(`GET ${got.status}`);
          errors.add(describeResponse('GET', url, got));
          return;
        }
        const resource = JSON.parse(got.body) as Resource;
        const version = versionOf(resource, got);
        if (version === undefined) {
          other++;
          statuses.add('no versionId');
          errors.add(`GET ${url}: no meta.versionId or ETag`);
          return;
        }
        setExtInt(resource, TOUCH_EXT, getExtInt(resource, TOUCH_EXT) + 1);
        const putStart = performance.now();
        const res = await client.request('PUT', url, JSON.stringify(resource), { 'if-match': `W/"${version}"` });
        const end = performance.now();
        statuses.add(`PUT ${res.status}`);
        if (res.status === 200 || res.status === 201) {
          updated++;
          cycle.add(end - start);
          put.add(end - putStart);
        } else if (res.status === 412) {
          conflicts++;
        } else {
          other++;
          errors.add(describeResponse('PUT', url, res));
        }
      } catch (err) {
        other++;
        statuses.add(errCode(err));
        errors.add(`${url}: ${errCode(err)}`);
      }
    },
    stop,
  );
  return {
    attempts,
    updated,
    conflicts412: conflicts,
    otherErrors: other,
    seconds: round(seconds, 3),
    perSec: round(updated / seconds, 1),
    cycleLatencyMs: cycle.summary(),
    putLatencyMs: put.summary(),
    statuses: statuses.counts,
    errorSamples: errors.samples,
  };
}

interface HotResult {
  targets: { ref: string; initialCounter: number; finalCounter: number; successes: number; initialVersion?: string; finalVersion?: string }[];
  clients: number;
  incrementsPerClient: number;
  successfulIncrements: number;
  conflicts412: number;
  otherErrors: number;
  gaveUp: number;
  seconds: number;
  perSec: number;
  latencyMs: LatencySummary;
  lostUpdates: number;
  extraIncrements: number;
  versionMismatches: number;
  passed: boolean;
  errorSamples: string[];
}

/**
 * The lost-update check: every client does K read-modify-write increments of a counter extension on the same
 * few resources, retrying on 412; afterwards each counter must have grown by exactly its successful increments.
 */
async function serverHot(o: Options, client: HttpClient, pool: Ref[], stop: () => string | undefined): Promise<HotResult> {
  const errors = new ErrorSamples();
  const targets = pool.slice(0, HOT_TARGETS);
  const readTarget = async (r: Ref): Promise<{ counter: number; version?: string; resource: Resource; res: HttpResponse }> => {
    const res = await client.request('GET', `/${r.type}/${r.id}`);
    if (res.status !== 200) throw new Error(describeResponse('GET', `/${r.type}/${r.id}`, res));
    const resource = JSON.parse(res.body) as Resource;
    return { counter: getExtInt(resource, COUNTER_EXT), version: versionOf(resource, res), resource, res };
  };
  type Snapshot = Awaited<ReturnType<typeof readTarget>>;
  const initial: Snapshot[] = [];
  for (const t of targets) initial.push(await readTarget(t));
  const successes = targets.map(() => 0);
  const lat = new Latencies();
  let conflicts = 0;
  let other = 0;
  let gaveUp = 0;
  const MAX_ATTEMPTS = 1000;

  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      for (let j = 0; j < o.hot; j++) {
        // every client works on the same target at the same step, so they contend for it
        const ti = j % targets.length;
        const t = targets[ti];
        const url = `/${t.type}/${t.id}`;
        const start = performance.now();
        let done = false;
        for (let attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
          const reason = stop();
          if (reason) throw new Error(reason);
          try {
            const cur = await readTarget(t);
            if (cur.version === undefined) throw new Error(`GET ${url}: no meta.versionId or ETag`);
            setExtInt(cur.resource, COUNTER_EXT, cur.counter + 1);
            const res = await client.request('PUT', url, JSON.stringify(cur.resource), { 'if-match': `W/"${cur.version}"` });
            if (res.status === 200 || res.status === 201) {
              successes[ti]++;
              lat.add(performance.now() - start);
              done = true;
            } else if (res.status === 412) {
              conflicts++;
            } else {
              other++;
              errors.add(describeResponse('PUT', url, res));
              await sleep(5);
            }
          } catch (err) {
            other++;
            errors.add(err instanceof Error ? err.message : String(err));
            await sleep(5);
          }
        }
        if (!done) gaveUp++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;

  const final: Snapshot[] = [];
  for (const t of targets) final.push(await readTarget(t));
  let lost = 0;
  let extra = 0;
  let versionMismatches = 0;
  const detail = targets.map((t, i) => {
    const grew = final[i].counter - initial[i].counter;
    if (grew < successes[i]) lost += successes[i] - grew;
    if (grew > successes[i]) extra += grew - successes[i];
    const v0 = Number(initial[i].version);
    const v1 = Number(final[i].version);
    if (Number.isInteger(v0) && Number.isInteger(v1) && v1 - v0 !== successes[i]) versionMismatches++;
    return {
      ref: `${t.type}/${t.id}`,
      initialCounter: initial[i].counter,
      finalCounter: final[i].counter,
      successes: successes[i],
      initialVersion: initial[i].version,
      finalVersion: final[i].version,
    };
  });
  const total = successes.reduce((a, b) => a + b, 0);
  return {
    targets: detail,
    clients: o.concurrency,
    incrementsPerClient: o.hot,
    successfulIncrements: total,
    conflicts412: conflicts,
    otherErrors: other,
    gaveUp,
    seconds: round(seconds, 3),
    perSec: round(total / seconds, 1),
    latencyMs: lat.summary(),
    lostUpdates: lost,
    extraIncrements: extra,
    versionMismatches,
    passed: lost === 0 && extra === 0 && gaveUp === 0 && total === o.concurrency * o.hot,
    errorSamples: errors.samples,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Raw PostgreSQL ceiling

interface RawResult {
  table: string;
  connection: string;
  ingest: { resources: number; seconds: number; resourcesPerSec: number; latencyMs: LatencySummary };
  read: { ok: number; missing: number; seconds: number; perSec: number; latencyMs: LatencySummary };
  update: { updated: number; conflicts: number; missing: number; seconds: number; perSec: number; latencyMs: LatencySummary };
}

async function connectClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', (err) => log(`raw pg client error: ${err.message}`));
  await c.connect();
  return c;
}

/**
 * The same work done directly in PostgreSQL with no server in between: a single scratch table, one multi-row
 * INSERT per bundle in a transaction, primary-key reads, and compare-and-set updates on version_id.
 */
async function rawCeiling(
  o: Options,
  url: string,
  table: string,
  registerCleanup: (fn: () => Promise<void>) => void,
  stop: () => string | undefined,
): Promise<RawResult> {
  const admin = await connectClient(url);
  try {
    await admin.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY, resource_type text NOT NULL, version_id int NOT NULL, last_updated timestamptz NOT NULL, content jsonb NOT NULL)`);
  } catch (err) {
    await admin.end().catch(() => undefined);
    throw err;
  }
  let dropped = false;
  const drop = async (): Promise<void> => {
    if (dropped) return;
    dropped = true;
    try {
      await admin.query(`DROP TABLE IF EXISTS ${table}`);
    } catch (err) {
      log(`could not drop ${table}: ${(err as Error).message} (drop it by hand)`);
    }
    await admin.end().catch(() => undefined);
  };
  registerCleanup(drop);

  const clients: pg.Client[] = [];
  try {
    for (let i = 0; i < o.concurrency; i++) clients.push(await connectClient(url));

    // (1) ingest
    const ids: string[] = [];
    const ingestLat = new Latencies();
    let next = 0;
    let resources = 0;
    const insertSql = (rows: number): string => {
      const values: string[] = [];
      for (let r = 0; r < rows; r++) values.push(`($${r * 3 + 1}::uuid, $${r * 3 + 2}, 1, now(), $${r * 3 + 3}::jsonb)`);
      return `INSERT INTO ${table} (id, resource_type, version_id, last_updated, content) VALUES ${values.join(', ')}`;
    };
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        for (;;) {
          const i = next++;
          if (i >= o.patients) return;
          const reason = stop();
          if (reason) throw new Error(reason);
          const rows = resolveBundle(patientBundle(i, o.seed), fhirDateTime(Date.now()));
          const params: unknown[] = [];
          for (const r of rows) params.push(r.id, r.resourceType, JSON.stringify(r.resource));
          const start = performance.now();
          await c.query('BEGIN');
          try {
            await c.query({ name: `raw_ins_${rows.length}`, text: insertSql(rows.length), values: params });
            await c.query('COMMIT');
          } catch (err) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
          ingestLat.add(performance.now() - start);
          resources += rows.length;
          for (const r of rows) ids.push(r.id);
        }
      }),
    );
    let seconds = (performance.now() - t0) / 1000;
    const ingest = { resources, seconds: round(seconds, 3), resourcesPerSec: round(resources / seconds, 1), latencyMs: ingestLat.summary() };
    log(`  raw ingest: ${ingest.resourcesPerSec} resources/s`);
    await admin.query(`ANALYZE ${table}`);

    // (2) read by primary key
    const readRng = new Rng(`raw-read/${o.seed}`);
    const readLat = new Latencies();
    let readOk = 0;
    let readMissing = 0;
    seconds = await timed(
      o.concurrency,
      o.seconds,
      async (w) => {
        const id = readRng.pick(ids);
        const start = performance.now();
        const r = await clients[w].query<{ content: string }>({ name: 'raw_read', text: `SELECT content::text AS content FROM ${table} WHERE id = $1`, values: [id] });
        const ms = performance.now() - start;
        if (r.rows.length === 1) {
          readOk++;
          readLat.add(ms);
        } else readMissing++;
      },
      stop,
    );
    const read = { ok: readOk, missing: readMissing, seconds: round(seconds, 3), perSec: round(readOk / seconds, 1), latencyMs: readLat.summary() };
    log(`  raw read: ${read.perSec} req/s`);

    // (3) read-modify-write with a version check
    const updRng = new Rng(`raw-update/${o.seed}`);
    const updLat = new Latencies();
    let updated = 0;
    let conflicts = 0;
    let missing = 0;
    seconds = await timed(
      o.concurrency,
      o.seconds,
      async (w) => {
        const c = clients[w];
        const id = updRng.pick(ids);
        const start = performance.now();
        const cur = await c.query<{ version_id: number; content: string }>({
          name: 'raw_sel',
          text: `SELECT version_id, content::text AS content FROM ${table} WHERE id = $1`,
          values: [id],
        });
        if (cur.rows.length !== 1) {
          missing++;
          return;
        }
        const old = cur.rows[0].version_id;
        const resource = JSON.parse(cur.rows[0].content) as Resource;
        setExtInt(resource, TOUCH_EXT, getExtInt(resource, TOUCH_EXT) + 1);
        resource.meta = { versionId: String(old + 1), lastUpdated: fhirDateTime(Date.now()) };
        const upd = await c.query({
          name: 'raw_upd',
          text: `UPDATE ${table} SET version_id = $3, last_updated = now(), content = $2::jsonb WHERE id = $1 AND version_id = $4`,
          values: [id, JSON.stringify(resource), old + 1, old],
        });
        if (upd.rowCount === 1) {
          updated++;
          updLat.add(performance.now() - start);
        } else conflicts++;
      },
      stop,
    );
    const update = { updated, conflicts, missing, seconds: round(seconds, 3), perSec: round(updated / seconds, 1), latencyMs: updLat.summary() };
    log(`  raw update: ${update.perSec} updates/s`);
    return { table, connection: redactUrl(url), ingest, read, update };
  } finally {
    for (const c of clients) await c.end().catch(() => undefined);
    await drop();
  }
}

async function postgresVersion(url: string): Promise<string | undefined> {
  try {
    const c = await connectClient(url);
    try {
      const r = await c.query<{ v: string }>('SELECT version() AS v');
      return r.rows[0]?.v;
    } finally {
      await c.end();
    }
  } catch (err) {
    return `(unavailable: ${(err as Error).message})`;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report

function fmtRate(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

function fmtLatency(s: LatencySummary | undefined): string {
  if (!s || s.count === 0) return '-';
  return `${fmtMs(s.p50)} / ${fmtMs(s.p95)} / ${fmtMs(s.p99)}`;
}

function pct(server: number | undefined, raw: number | undefined): string {
  if (server === undefined || raw === undefined || !raw) return '-';
  return `${((server / raw) * 100).toFixed(1)}%`;
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const problems = checkBundle(patientBundle(0, o.seed));
  if (problems.length) throw new Error(`synthetic data generator is broken: ${problems.join('; ')}`);

  const startedAt = new Date();
  const { cleanups, cleanup, interrupted } = lifecycle(log);
  const checkpoint = (): void => {
    const why = interrupted();
    if (why) throw new Error(why);
  };

  let keepWorkDir = o.keep;
  try {
    checkpoint();
    if (await portInUse(o.port)) throw new Error(`port ${o.port} is already in use; pick another with --port`);

    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenfhir-bench-'));
    const logPath = path.join(workDir, 'server.log');
    const dataDir = path.join(workDir, 'data');
    fs.mkdirSync(dataDir);
    cleanups.push(async () => {
      if (keepWorkDir) log(`server log${o.databaseUrl ? '' : ' and data'} kept in ${workDir}`);
      else fs.rmSync(workDir, { recursive: true, force: true });
    });
    const slug = `bench-${randomBytes(4).toString('hex')}`;

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      DEMO_TENANT: 'false',
    };
    if (o.databaseUrl) env.DATABASE_URL = o.databaseUrl;
    else delete env.DATABASE_URL;

    const dbLabel = o.databaseUrl ? `PostgreSQL ${redactUrl(o.databaseUrl)}` : `embedded PGlite in ${dataDir}`;
    log(`patients=${o.patients} concurrency=${o.concurrency} seconds=${o.seconds} port=${o.port} hot=${o.hot} seed=${o.seed}; database: ${dbLabel}`);

    // Start the server
    const t0 = performance.now();
    const server = ServerProcess.spawn(env, logPath, o.keep, { onKill: log });
    cleanups.push(async () => {
      if (o.keep && !server.exited) {
        log(`--keep: server still running (pid ${server.child.pid}) at http://127.0.0.1:${o.port}/fhir/${slug}; log ${logPath}`);
        server.child.unref();
        return;
      }
      await server.stop();
    });
    await server.waitReady(o.port, 180_000, interrupted);
    const startupMs = Math.round(performance.now() - t0);
    log(`server ready in ${startupMs} ms (pid ${server.child.pid}, log ${logPath})`);

    // Scratch tenant
    checkpoint();
    const cli = await runCli(['tenant', 'create', slug, '--name', `Benchmark ${slug}`], env);
    if (cli.code !== 0) throw new Error(`tenant create ${slug} failed (exit ${cli.code}):\n${cli.output.trim()}`);
    log(`tenant ${slug} created`);

    // A real access token (auth is on, as shipped): BENCH_TOKEN, or an operator client's token minted for the tenant
    let token = o.token;
    if (!token) {
      checkpoint();
      const minted = (await operatorTokens([slug], env))[slug];
      token = minted.tokens[0];
      log(`operator client ${minted.clientId} registered; token minted (scope ${minted.scope})`);
    }

    const client = new HttpClient(o.port, `/fhir/${slug}`, token, o.concurrency);
    cleanups.push(async () => client.close());
    const stop = (): string | undefined =>
      interrupted() ?? (server.exited ? `server stopped (${server.exitInfo}); log ${logPath}:\n${tail(logPath)}` : undefined);

    // Warm-up (untimed): one extra bundle, beyond the measured ones, pays one-time costs such as lazy schema
    // compilation, and fails fast with the server's answer if the interface does not match.
    checkpoint();
    const warmT0 = performance.now();
    const warm = await client.request('POST', '', JSON.stringify(patientBundle(o.patients, o.seed)), {}, 300_000);
    if (warm.status !== 200) throw new Error(`warm-up transaction failed: ${describeResponse('POST', `/fhir/${slug}`, warm)}`);
    const warmupMs = Math.round(performance.now() - warmT0);
    log(`warm-up bundle ingested in ${warmupMs} ms`);

    // (a) ingest
    log(`(a) ingest: ${o.patients} bundles x ${ENTRIES_PER_BUNDLE} resources, ${o.concurrency} clients`);
    const refs: Ref[] = [];
    const patients: Ref[] = [];
    const ingest = await serverIngest(o, client, refs, patients, stop);
    log(`  ${ingest.resourcesPerSec} resources/s (${ingest.bundlesOk} bundles ok, ${ingest.bundlesFailed} failed)`);
    if (refs.length === 0) throw new Error(`no resources were ingested:\n  ${ingest.errorSamples.join('\n  ')}`);

    // (b) read by id
    log(`(b) read by id: ${o.seconds} s, ${o.concurrency} clients over ${refs.length} resources`);
    const read = await serverRead(o, client, refs, stop);
    log(`  ${read.perSec} req/s, ${read.errors} errors`);

    // (c) update with If-Match, then the lost-update check
    log(`(c) update (GET + PUT If-Match): ${o.seconds} s, ${o.concurrency} clients`);
    const update = await serverUpdate(o, client, refs, stop);
    log(`  ${update.perSec} updates/s, ${update.conflicts412} x 412, ${update.otherErrors} other errors`);
    const hotPool = patients.length >= HOT_TARGETS ? patients : refs;
    log(`(c') lost-update check: ${o.concurrency} clients x ${o.hot} increments on ${Math.min(HOT_TARGETS, hotPool.length)} resources`);
    const hot = await serverHot(o, client, hotPool, stop);
    log(`  ${hot.passed ? 'PASS' : 'FAIL'}: ${hot.successfulIncrements} increments, ${hot.lostUpdates} lost, ${hot.conflicts412} x 412 retries`);

    // (c'') plain and conditional creates
    log(`(c'') create Patient: ${o.seconds} s plain, then ${o.seconds} s with If-None-Exist, ${o.concurrency} clients`);
    const create = await serverCreate(o, client, false, stop);
    const conditionalCreate = await serverCreate(o, client, true, stop);
    log(`  ${create.perSec} creates/s plain, ${conditionalCreate.perSec} creates/s conditional`);

    // (d) raw PostgreSQL ceiling
    let raw: RawResult | undefined;
    let rawSkipped: string | undefined;
    let pgVersion: string | undefined;
    if (!o.databaseUrl) {
      rawSkipped = 'embedded PGlite database: the raw PostgreSQL ceiling needs DATABASE_URL';
      log(`(d) raw PostgreSQL ceiling: skipped (${rawSkipped})`);
    } else {
      pgVersion = await postgresVersion(o.databaseUrl);
      const table = `bench_raw_${randomBytes(4).toString('hex')}`;
      log(`(d) raw PostgreSQL ceiling in scratch table ${table}`);
      const candidates = [o.databaseUrl];
      const adminUrl = process.env.DATABASE_ADMIN_URL;
      if (adminUrl && adminUrl !== o.databaseUrl) candidates.push(adminUrl);
      for (const url of candidates) {
        try {
          checkpoint();
          raw = await rawCeiling(o, url, table, (fn) => cleanups.push(fn), interrupted);
          rawSkipped = undefined;
          break;
        } catch (err) {
          checkpoint();
          rawSkipped = `raw phase failed on ${redactUrl(url)}: ${(err as Error).message}`;
          log(`  ${rawSkipped}`);
        }
      }
    }

    // Report
    const problemsSeen = ingest.bundlesFailed > 0 || read.errors > 0 || create.errors > 0 || conditionalCreate.errors > 0 || update.otherErrors > 0 || !hot.passed;
    if (problemsSeen) keepWorkDir = true;
    console.log('');
    console.log(`tenfhir benchmark: ${o.patients} patients (${ingest.resources} resources), ${o.concurrency} clients, ${o.seconds} s per timed phase`);
    console.log(`database: ${dbLabel}${pgVersion ? ` (${pgVersion.split(',')[0]})` : ''}; node ${process.version}; ${os.cpus().length} CPUs`);
    console.log('');
    printTable(
      ['workload', 'server', 'raw ceiling', 'server % of ceiling', 'server p50 / p95 / p99 ms', 'raw p50 / p95 / p99 ms'],
      [
        ['ingest (resources/s)', fmtRate(ingest.resourcesPerSec), fmtRate(raw?.ingest.resourcesPerSec), pct(ingest.resourcesPerSec, raw?.ingest.resourcesPerSec), fmtLatency(ingest.latencyMs), fmtLatency(raw?.ingest.latencyMs)],
        ['read by id (req/s)', fmtRate(read.perSec), fmtRate(raw?.read.perSec), pct(read.perSec, raw?.read.perSec), fmtLatency(read.latencyMs), fmtLatency(raw?.read.latencyMs)],
        ['update GET+PUT (updates/s)', fmtRate(update.perSec), fmtRate(raw?.update.perSec), pct(update.perSec, raw?.update.perSec), fmtLatency(update.cycleLatencyMs), fmtLatency(raw?.update.latencyMs)],
        ['hot counter (increments/s)', fmtRate(hot.perSec), '-', '-', fmtLatency(hot.latencyMs), '-'],
        ['create Patient (creates/s)', fmtRate(create.perSec), '-', '-', fmtLatency(create.latencyMs), '-'],
        ['conditional create (creates/s)', fmtRate(conditionalCreate.perSec), '-', '-', fmtLatency(conditionalCreate.latencyMs), '-'],
      ],
    );
    console.log('');
    console.log(`ingest:  ${ingest.bundlesOk}/${ingest.bundles} bundles ok in ${ingest.seconds} s (${ingest.bundlesPerSec} bundles/s); latency is per bundle`);
    console.log(`read:    ${read.ok} ok, ${read.errors} errors`);
    console.log(`update:  ${update.updated} updated, ${update.conflicts412} x 412 (stale If-Match), ${update.otherErrors} other errors; PUT alone p50/p95/p99 ${fmtLatency(update.putLatencyMs)} ms`);
    console.log(
      `lost-update check: ${hot.passed ? 'PASS' : 'FAIL'} - ${hot.clients} clients x ${hot.incrementsPerClient} increments on ${hot.targets.length} resources: ` +
        `${hot.successfulIncrements} successful, counters grew by ${hot.successfulIncrements - hot.lostUpdates + hot.extraIncrements}, ` +
        `${hot.lostUpdates} lost, ${hot.extraIncrements} unexpected, ${hot.conflicts412} x 412 retries, ${hot.otherErrors} other errors, ${hot.gaveUp} gave up` +
        (hot.versionMismatches ? `, ${hot.versionMismatches} resources whose versionId did not advance once per increment` : ''),
    );
    if (raw) console.log(`raw:     table ${raw.table} (dropped); ${raw.update.conflicts} version conflicts in the raw update phase`);
    else console.log(`raw:     skipped - ${rawSkipped}`);
    for (const [name, samples] of [
      ['ingest', ingest.errorSamples],
      ['read', read.errorSamples],
      ['create', create.errorSamples],
      ['conditional create', conditionalCreate.errorSamples],
      ['update', update.errorSamples],
      ['lost-update check', hot.errorSamples],
    ] as const) {
      if (samples.length) console.log(`\n${name} errors (first ${samples.length}):\n  ${samples.join('\n  ')}`);
    }

    const results = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options: { patients: o.patients, concurrency: o.concurrency, seconds: o.seconds, port: o.port, hot: o.hot, seed: o.seed, token: o.token ? 'BENCH_TOKEN' : 'minted (operator client)' },
      environment: {
        node: process.version,
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        database: o.databaseUrl ? { kind: 'postgres', url: redactUrl(o.databaseUrl), version: pgVersion } : { kind: 'pglite' },
      },
      server: { startupMs, warmupBundleMs: warmupMs, tenant: slug },
      ingest,
      read,
      update,
      lostUpdateCheck: hot,
      create,
      conditionalCreate,
      raw: raw ?? { skipped: rawSkipped },
    };
    const resultsDir = path.join(BENCH_DIR, 'results');
    fs.mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nresults: ${path.relative(process.cwd(), file) || file}`);
    if (problemsSeen) console.log(`server log: ${logPath}`);
    return hot.passed ? 0 : 1;
  } catch (err) {
    const why = interrupted();
    if (why) throw new Interrupted(why);
    keepWorkDir = true; // keep the server log for diagnosis
    throw err;
  } finally {
    await cleanup();
  }
}

runMain(main, 'bench', USAGE);
