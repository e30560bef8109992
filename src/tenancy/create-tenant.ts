// Tenant creation: the tenant row plus its root Organization (ARCHITECTURE.md "Tenancy"), whose id is the slug.
import type { Deps, FhirContext } from '../fhir/context.js';
import { FhirError } from '../fhir/errors.js';
import { prepareUpdate, writeOne } from '../fhir/write.js';
import { insertTenant, TENANT_SLUG } from '../store/tenants.js';

export const RESERVED_SLUGS = new Set(['metadata', 'admin', 'auth', 'shared', 'platform', 'fhir', 'healthz', 'readyz']);

export async function createTenant(deps: Deps, slug: string, name: string): Promise<{ baseUrl: string }> {
  if (!TENANT_SLUG.test(slug) || RESERVED_SLUGS.has(slug)) {
    throw new FhirError('invalid', `Tenant slug '${slug}' must be 1-63 characters of a-z, 0-9 and '-', start with a letter or digit, and not be reserved`, { code: 'TENANT_SLUG_INVALID' });
  }
  if (!name.trim()) throw new FhirError('invalid', 'A tenant needs a name', { code: 'TENANT_NAME_MISSING' });
  if (!(await insertTenant(deps.db, slug, name))) throw new FhirError('conflict', `Tenant '${slug}' already exists`, { code: 'TENANT_EXISTS' });
  const baseUrl = `${deps.config.publicBaseUrl}/fhir/${slug}`;
  const ctx: FhirContext = {
    deps,
    tenant: { id: slug, name, status: 'active', settings: {} },
    baseUrl,
    registry: deps.registry,
    requestId: 'tenant-create',
    log: deps.log,
  };
  await writeOne(ctx, (q) => prepareUpdate(ctx, q, 'Organization', slug, { resourceType: 'Organization', id: slug, active: true, name }));
  return { baseUrl };
}
