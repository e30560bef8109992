// Issue 14's targets as ratios to the raw-PostgreSQL ceiling measured in the same run: one tenfhir result file and
// one ceiling result file of the founders' driver (bench/founders.sh --ceiling writes both and runs this).
//
//   node bench/ratios.mjs TENFHIR.json CEILING.json
//
// Prints one line per target with the figures it compares and "met" or "MISSED". A workload missing from either file
// is reported as not measured.
import { readFileSync } from 'node:fs';

const [fhirPath, ceilingPath] = process.argv.slice(2);
if (!fhirPath || !ceilingPath) {
  console.error('usage: node bench/ratios.mjs TENFHIR.json CEILING.json');
  process.exit(2);
}
const fhir = JSON.parse(readFileSync(fhirPath, 'utf8'));
const raw = JSON.parse(readFileSync(ceilingPath, 'utf8'));

const pct = (x) => `${(x * 100).toFixed(1)}%`;
const times = (x) => `${x.toFixed(1)}x`;
const n = (x) => Math.round(x).toLocaleString('en-US');
const rows = [];
/** One target: `ok` decides it; `what` says what was compared. */
const target = (name, measured, ok, what) => rows.push({ name, measured, verdict: measured === undefined ? 'not measured' : ok ? 'met' : 'MISSED', what });

const w1 = fhir.w1?.resourcesPerSec, w1c = raw.w1?.resourcesPerSec;
target('W1 ingest >= 20% of ceiling', w1 && w1c ? pct(w1 / w1c) : undefined, w1 / w1c >= 0.2,
  w1 && w1c ? `${n(w1)} vs ${n(w1c)} resources/s; bundle p95 ${fhir.w1.bundleLatencyMs?.p95} vs ${raw.w1.bundleLatencyMs?.p95} ms` : '');

const w2 = fhir.w2?.reqPerSec, w2c = raw.w2?.reqPerSec;
const p95 = fhir.w2?.latencyMs?.p95, p95c = raw.w2?.latencyMs?.p95;
target('W2 read >= 25% of ceiling', w2 && w2c ? pct(w2 / w2c) : undefined, w2 / w2c >= 0.25, w2 && w2c ? `${n(w2)} vs ${n(w2c)} req/s` : '');
target('W2 p95 <= 3x ceiling p95', p95 && p95c ? times(p95 / p95c) : undefined, p95 / p95c <= 3, p95 && p95c ? `${p95} vs ${p95c} ms` : '');

const w3 = fhir.w3?.reqPerSec;
target('W3 search >= 5% of ceiling W2 rate', w3 && w2c ? pct(w3 / w2c) : undefined, w3 / w2c >= 0.05, w3 && w2c ? `${n(w3)} searches/s vs ${n(w2c)} reads/s` : '');
for (const [name, q] of Object.entries(fhir.w3?.queries ?? {})) {
  const qp95 = q.latencyMs?.p95;
  target(`W3 ${name} p95 <= 10x ceiling W2 p95`, qp95 && p95c ? times(qp95 / p95c) : undefined, qp95 / p95c <= 10,
    qp95 && p95c ? `${qp95} vs ${p95c} ms (p50 ${q.latencyMs?.p50} ms, ${q.matchesMean} matches, ${q.errors} errors)` : '');
}

const w4 = fhir.w4?.uniform?.updatesPerSec, w4c = raw.w4?.uniform?.updatesPerSec;
target('W4 update >= 20% of ceiling', w4 && w4c ? pct(w4 / w4c) : undefined, w4 / w4c >= 0.2,
  w4 && w4c ? `${n(w4)} vs ${n(w4c)} updates/s; PUT p95 ${fhir.w4.uniform.putLatencyMs?.p95} vs ${raw.w4.uniform.putLatencyMs?.p95} ms; ${fhir.w4.uniform.errors} errors` : '');

const width = Math.max(...rows.map((r) => r.name.length));
for (const r of rows) console.log(`${r.name.padEnd(width)}  ${String(r.measured ?? '-').padStart(7)}  ${r.verdict.padEnd(12)}  ${r.what}`);
const rss = fhir.rss ?? fhir.meta?.rss;
if (rss) console.log(`server RSS: ${JSON.stringify(rss)}`);
