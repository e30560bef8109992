// EHR launch (SMART app-launch.html#launch-app-ehr-launch): POST /auth/launch. An authenticated EHR user or backend
// system creates a launch context; the app receives `launch` and `iss` and presents `launch` at the authorize
// endpoint, which takes it once (interactions.ts).
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Deps } from '../core/deps.js';
import { FhirError } from '../core/errors.js';
import { insertLaunch } from '../store/auth-users.js';
import { currentVersion } from '../store/resources.js';
import { recordAuthEvents, tokenAgent } from './audit.js';
import { addressKey } from './sign-in-throttle.js';
import type { Principal } from './verify.js';

/** Roles that may create EHR launch contexts. */
const LAUNCHERS = new Set(['tenant-admin', 'practitioner', 'receptionist', 'lab-technician', 'system']);

/** A launch context lives this long (seconds). */
const LAUNCH_TTL = 300;

export async function createLaunch(deps: Deps, who: Principal, req: Request, res: Response): Promise<void> {
  if (!LAUNCHERS.has(who.claims.role)) throw new FhirError('forbidden', 'This role may not launch apps', { code: 'SCOPE_INSUFFICIENT' });
  const body = (req.body ?? {}) as Record<string, unknown>;
  const patient = typeof body.patient === 'string' ? body.patient.replace(/^Patient\//, '') : undefined;
  const encounter = typeof body.encounter === 'string' ? body.encounter.replace(/^Encounter\//, '') : undefined;
  const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
  if (!patient && !encounter) throw new FhirError('invalid', 'A launch needs a patient (and optionally an encounter)', { code: 'LAUNCH_INVALID' });
  const tenant = who.claims.tenant;
  for (const [type, id] of [['Patient', patient], ['Encounter', encounter]] as const) {
    if (!id) continue;
    // the launcher must be able to read what it puts in context, and it must exist in this tenant
    const d = who.guard.decide({ interaction: 'read', resourceType: type, id });
    if (!d.allow) throw new FhirError('forbidden', `The launcher may not read ${type}/${id}`, { code: 'SCOPE_INSUFFICIENT' });
    const row = await currentVersion(deps.db, tenant, type, id);
    if (!row || row.deleted) throw new FhirError('invalid', `${type}/${id} does not exist in this tenant`, { code: 'LAUNCH_INVALID' });
  }
  const id = randomBytes(18).toString('base64url');
  const expiresAt = new Date(deps.clock().getTime() + LAUNCH_TTL * 1000);
  await insertLaunch(deps.db, { tenantId: tenant, id, clientId: clientId ?? null, patient: patient ?? null, encounter: encounter ?? null, createdBy: who.claims.sub, expiresAt });
  // the EHR user chose this context for an app; the app's authorization later records the grant it went into
  await recordAuthEvents(deps, tenant, {
    category: 'authorization',
    subtype: 'launch-create',
    action: 'C',
    outcome: 0,
    agent: tokenAgent(who, addressKey(req.ip)),
    entities: [...(patient ? [{ ref: `Patient/${patient}` }] : []), ...(encounter ? [{ ref: `Encounter/${encounter}` }] : [])],
    patients: patient ? [patient] : [],
    ...(clientId ? { detail: { client_id: clientId } } : {}),
  });
  res.status(201).setHeader('Cache-Control', 'no-store');
  res.json({ launch: id, iss: who.claims.aud, expires_in: LAUNCH_TTL, ...(patient ? { patient } : {}), ...(encounter ? { encounter } : {}) });
}
