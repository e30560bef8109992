// The platform catalog (docs/catalog.md) as writes meet it: every tenant reads the catalog's Medication, CodeSystem,
// ValueSet, ConceptMap, StructureDefinition and SearchParameter resources alongside its own, and can never change them.
// A write's target is read as the tenant's own row (TenantSession.readCurrent with lock); when the tenant holds no
// row with that id, this decides whether the id is the catalog's.
import { FhirError } from '../core/errors.js';
import type { StoredVersion } from '../store/resources.js';
import type { TenantSession } from '../store/session.js';

export type CatalogWrite = 'update' | 'patch' | 'delete';

/**
 * For a write on type/id where the tenant has no resource of its own: refuses it when the id is the catalog's.
 * A live catalog resource (the one the tenant reads at that URL) -> 403 CATALOG_READ_ONLY, whatever the write; an id
 * the catalog deleted -> an update (create-by-PUT) is 409 CATALOG_ID_TAKEN (the id stays the catalog's, which may
 * restore it), while patch and delete see the deletion as they would their own (410, and 204 with no effect).
 * Returns the catalog's deletion marker in that case, else undefined (not a catalog id: the write goes on).
 */
export async function catalogTarget(s: TenantSession, type: string, id: string, write: CatalogWrite): Promise<StoredVersion | undefined> {
  const entry = await s.catalogEntry(type, id);
  if (!entry) return undefined;
  if (!entry.deleted) {
    throw new FhirError('forbidden', `${type}/${id} belongs to the platform catalog, which every tenant reads and none can change; create a ${type} of your own instead`, {
      code: 'CATALOG_READ_ONLY',
      expression: [type],
    });
  }
  if (write === 'update') {
    throw new FhirError('conflict', `${type}/${id} is an id of the platform catalog (a deleted entry); give your own ${type} another id`, {
      code: 'CATALOG_ID_TAKEN',
      expression: [`${type}.id`],
    });
  }
  return entry;
}
