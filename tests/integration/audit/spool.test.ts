// The audit spool (issue 12): a read's record is on disk before the answer goes out and reaches audit_event behind
// it. A server killed before storing its records leaves them in its spool file; the next process on the same DATA_DIR
// stores them, once each, in their own tenants. Damaged or torn lines do not stop the rest of a file.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditRecord } from '../../../src/core/audit.js';
import { createLogger } from '../../../src/platform/log.js';
import { AuditSpool, spoolFileName } from '../../../src/store/audit-spool.js';
import { create, newTenant, randomSlug, startServer, type TestServer, type TestTenant } from '../../helpers/server.js';

type Res = Record<string, any>;
const ROOT = new URL('../../../', import.meta.url).pathname;

let server: TestServer;
let t: TestTenant;
let other: TestTenant;
const dirs: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function auditOf(tenant: TestTenant, query: string): Promise<Res[]> {
  const res = await tenant.api.get(`${tenant.path}/AuditEvent?${query}&_count=200`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: Res) => e.resource);
}

function readRecord(patientId: string, requestId: string): AuditRecord {
  return {
    recorded: new Date().toISOString(),
    category: 'rest',
    subtype: 'read',
    action: 'R',
    outcome: 0,
    agent: { clientId: 'spool-test', role: 'system' },
    entities: [{ ref: `Patient/${patientId}`, version: 1 }],
    patients: [patientId],
    requestId,
  };
}

beforeAll(async () => {
  server = await startServer();
  t = await newTenant(server, 'sp');
  other = await newTenant(server, 'sp2');
});

afterAll(async () => {
  await server.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a spool file left by a process that is gone', () => {
  it('is stored on recovery, each record in its own tenant, and the file is removed', async () => {
    const dir = tempDir('tenfhir-spool-');
    const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Spooled' }] })).id as string;
    const otherPatient = (await create(other, { resourceType: 'Patient', name: [{ family: 'Elsewhere' }] })).id as string;
    const dead = join(dir, spoolFileName(999_999_999, 'abcdef012345', 1));
    const lines = [
      { o: 'abcdef012345.1.1', t: t.slug, r: [readRecord(patient, 'rq-spool-1')] },
      { o: 'abcdef012345.1.2', t: other.slug, r: [readRecord(otherPatient, 'rq-spool-2')] },
      { o: 'abcdef012345.1.3', t: t.slug, r: [readRecord(patient, 'rq-spool-3'), readRecord(patient, 'rq-spool-4')] },
    ];
    writeFileSync(dead, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir);
    try {
      expect(await spool.recover()).toBe(4);
    } finally {
      await spool.close();
    }
    expect(readdirSync(dir)).toEqual([]);
    expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(3);
    expect(await auditOf(t, `entity=Patient/${otherPatient}`)).toHaveLength(0);
    const theirs = await auditOf(other, `entity=Patient/${otherPatient}&subtype=read`);
    expect(theirs).toHaveLength(1);
    expect(await auditOf(other, `entity=Patient/${patient}`)).toHaveLength(0);
  });

  it('stores nothing twice: a file whose records were stored already (the process died before it could say so)', async () => {
    const dir = tempDir('tenfhir-spool-');
    const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Twice' }] })).id as string;
    const live = new AuditSpool(server.deps.db, createLogger('silent'), dir, { shipIntervalMs: 3_600_000 });
    await live.record(t.slug, [readRecord(patient, 'rq-twice-1')]);
    await live.record(t.slug, [readRecord(patient, 'rq-twice-2'), readRecord(patient, 'rq-twice-3')]);
    await live.settle();
    expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(3);
    // the stored file, as a process that died right after its INSERT committed would have left it
    const [own] = readdirSync(dir);
    copyFileSync(join(dir, own), join(dir, spoolFileName(999_999_998, 'bbbbbb000000', 1)));
    copyFileSync(join(dir, own), join(dir, spoolFileName(999_999_997, 'cccccc000000', 1)));
    const recovering = new AuditSpool(server.deps.db, createLogger('silent'), dir);
    try {
      await recovering.recover();
    } finally {
      await recovering.close();
      await live.close();
    }
    expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(3);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('skips a damaged line and a torn last line, and stores the rest', async () => {
    const dir = tempDir('tenfhir-spool-');
    const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Torn' }] })).id as string;
    const good = (n: number) => JSON.stringify({ o: `dddddd000000.1.${n}`, t: t.slug, r: [readRecord(patient, `rq-torn-${n}`)] });
    writeFileSync(join(dir, spoolFileName(999_999_996, 'dddddd000000', 1)), `${good(1)}\n{"o":"dddddd000000.1.2","t":\u0000\u0000garbage\n${good(3)}\n${good(4).slice(0, 40)}`);
    const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir);
    try {
      expect(await spool.recover()).toBe(2);
    } finally {
      await spool.close();
    }
    expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(2);
  });

  it("leaves a live process's file alone, and takes a previous incarnation's with the same pid", async () => {
    const dir = tempDir('tenfhir-spool-');
    const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Alive' }] })).id as string;
    const line = (o: string, rq: string) => `${JSON.stringify({ o, t: t.slug, r: [readRecord(patient, rq)] })}\n`;
    // the parent process (jest's) is alive: its file is not touched
    const alive = join(dir, spoolFileName(process.ppid, 'eeeeee000000', 1));
    writeFileSync(alive, line('eeeeee000000.1.1', 'rq-alive'));
    // this process's pid with a spool instance it does not run: a restarted container reuses its pid
    const earlier = join(dir, spoolFileName(process.pid, 'ffffff000000', 1));
    writeFileSync(earlier, line('ffffff000000.1.1', 'rq-earlier'));
    const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir);
    try {
      expect(await spool.recover()).toBe(1);
      expect(existsSync(alive)).toBe(true);
      expect(existsSync(earlier)).toBe(false);
    } finally {
      await spool.close();
    }
    const reads = await auditOf(t, `entity=Patient/${patient}&subtype=read`);
    expect(reads).toHaveLength(1);
  });
});

describe('a server killed right after answering', () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const origin = `http://127.0.0.1:${port}`;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let proc: ChildProcess | undefined;

  function startProcess(extra: NodeJS.ProcessEnv = {}): Promise<void> {
    let out = '';
    const p = spawn(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/main.ts'], { cwd: ROOT, env: { ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      const timer = setInterval(() => {
        if (out.includes(`listening on ${origin}`)) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
      p.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`server exited with ${code}: ${out}`));
      });
    });
  }

  function cli(...args: string[]) {
    const r = spawnSync(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/index.ts', ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`cli ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  }

  beforeAll(() => {
    dataDir = tempDir('tenfhir-spool-proc-');
    env = { ...process.env, PORT: String(port), PUBLIC_BASE_URL: origin, DATA_DIR: dataDir, LOG_LEVEL: 'warn', DEMO_TENANT: 'false', DATABASE_URL: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL ?? '' };
    if (!env.DATABASE_URL) delete env.DATABASE_URL;
    delete env.REDIS_URL;
  });

  afterAll(() => {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  });

  it('loses no record: the next server on its DATA_DIR stores every read it answered, once', async () => {
    // records are not shipped for an hour: when the process dies they exist only in its spool file
    await startProcess({ AUDIT_SHIP_INTERVAL_MS: '3600000' });
    const slug = randomSlug('spk');
    cli('tenant', 'create', slug, '--name', 'Spool Kill Clinic');
    const token = cli('token', slug, '--client', `${slug}-cli`, '--scope', 'system/*.cruds', '--ttl', '600');
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };
    const made = await fetch(`${origin}/fhir/${slug}/Patient`, { method: 'POST', headers: h, body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Killed' }] }) });
    expect(made.status).toBe(201);
    const id = ((await made.json()) as { id: string }).id;
    for (let i = 0; i < 5; i++) expect((await fetch(`${origin}/fhir/${slug}/Patient/${id}`, { headers: h })).status).toBe(200);
    expect((await fetch(`${origin}/fhir/${slug}/Patient?_id=${id}`, { headers: h })).status).toBe(200);

    const spoolDir = join(dataDir, 'audit-spool');
    const spooled = readdirSync(spoolDir).map((f) => readFileSync(join(spoolDir, f), 'utf8')).join('');
    expect(spooled.split('\n').filter((l) => l.includes(`Patient/${id}`) && l.includes('"subtype":"read"'))).toHaveLength(5);
    proc!.kill('SIGKILL');
    await new Promise((r) => proc!.once('exit', r));

    await startProcess();
    const token2 = cli('token', slug, '--client', `${slug}-cli`, '--scope', 'system/*.cruds', '--ttl', '600');
    // the new server ships the dead one's file as it starts: wait for it (a few seconds at most)
    const expected = ['create', 'read', 'read', 'read', 'read', 'read', 'search-type'];
    let events: string[] = [];
    for (let i = 0; i < 50 && events.length < expected.length; i++) {
      if (i) await new Promise((r) => setTimeout(r, 200));
      const res = await fetch(`${origin}/fhir/${slug}/AuditEvent?entity=Patient/${id}&_count=100`, { headers: { authorization: `Bearer ${token2}` } });
      expect(res.status).toBe(200);
      events = (((await res.json()) as Res).entry ?? []).map((e: Res) => e.resource.subtype[0].code as string).sort();
    }
    // the create (stored with the write), five reads and the search, each once
    expect(events).toEqual(expected);
    expect(readdirSync(spoolDir).filter((f) => !f.includes(`.${proc!.pid}.`))).toEqual([]);
    proc!.kill('SIGTERM');
    await new Promise((r) => proc!.once('exit', r));
  }, 120_000);
});

// the shipper keeps unshipped lines in memory; past its bound it reads them back from the file, then returns to memory
it('stores every record once when more lines wait than it keeps in memory, and after it has caught up', async () => {
  const dir = tempDir('tenfhir-spool-');
  const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir, { shipIntervalMs: 3_600_000, memoryLines: 2 });
  const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Overflow' }] })).id as string;
  try {
    for (let i = 0; i < 5; i++) await spool.record(t.slug, [readRecord(patient, `rq-over-${i}`)]);
    await spool.settle();
    expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(5);
    for (let i = 5; i < 7; i++) await spool.record(t.slug, [readRecord(patient, `rq-over-${i}`)]);
    await spool.settle();
  } finally {
    await spool.close();
  }
  expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(7);
  expect(readdirSync(dir)).toEqual([]);
});

// the directory a spool writes to is made on first use
it('a spool creates its directory on its first record', async () => {
  const dir = join(tempDir('tenfhir-spool-'), 'nested', 'audit-spool');
  const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir);
  const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Nested' }] })).id as string;
  await spool.record(t.slug, [readRecord(patient, 'rq-nested')]);
  expect(readdirSync(dir)).toHaveLength(1);
  await spool.close();
  expect(readdirSync(dir)).toHaveLength(0);
  expect(await auditOf(t, `entity=Patient/${patient}&subtype=read`)).toHaveLength(1);
});

// every field of a spooled record reaches its column and comes back through the API; text PostgreSQL refuses in a
// string (NUL, half a surrogate pair) would otherwise fail its batch again and again
it('stores every field of a spooled record, and text PostgreSQL would refuse (a NUL, half a surrogate pair) made well-formed', async () => {
  const dir = tempDir('tenfhir-spool-');
  const spool = new AuditSpool(server.deps.db, createLogger('silent'), dir, { shipIntervalMs: 3_600_000 });
  const patient = (await create(t, { resourceType: 'Patient', name: [{ family: 'Fields' }] })).id as string;
  const rec: AuditRecord = {
    recorded: new Date().toISOString(),
    category: 'rest',
    subtype: 'search-type',
    action: 'E',
    outcome: 4,
    outcomeDesc: 'bad \u0000 value \ud800 here',
    agent: { clientId: 'spool-fields', role: 'system', userRef: 'Practitioner/pr-1', userSub: 'alice', address: '10.1.2.3', purposeOfUse: ['TREAT', 'urn:tenfhir:policy:x'] },
    entities: [{ ref: `Patient/${patient}`, version: 3 }, { ref: 'Observation/ob-9' }],
    patients: [patient],
    query: 'name=\udc00x',
    requestId: 'rq-fields',
  };
  try {
    await spool.record(t.slug, [rec]);
    await spool.settle();
  } finally {
    await spool.close();
  }
  const [ev] = await auditOf(t, `entity=Patient/${patient}&subtype=search-type`);
  expect(ev.outcome).toBe('4');
  expect(ev.outcomeDesc).toBe('bad \ufffd value \ufffd here');
  expect(ev.action).toBe('E');
  const user = ev.agent.find((a: Res) => a.requestor);
  expect(user.who.reference).toBe('Practitioner/pr-1');
  expect(user.altId).toBe('alice');
  expect(user.network.address).toBe('10.1.2.3');
  expect(user.purposeOfUse.map((p: Res) => p.coding[0].code)).toEqual(['TREAT']);
  expect(user.policy).toEqual(['urn:tenfhir:policy:x']);
  expect(ev.agent.some((a: Res) => a.who?.identifier?.value === 'spool-fields' || a.who?.display === 'spool-fields' || JSON.stringify(a).includes('spool-fields'))).toBe(true);
  const what = ev.entity.map((e: Res) => e.what?.reference).filter(Boolean);
  expect(what).toEqual(expect.arrayContaining([`Patient/${patient}/_history/3`, 'Observation/ob-9']));
  expect(JSON.stringify(ev)).toContain('name=\ufffdx');
});
